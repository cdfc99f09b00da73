//! The back office's dashboard and search on a generated session of 50,000 dossiers: the real
//! server on SQLite (or PostgreSQL with `CACHET_BENCH_DATABASE_URL`), a signed-in staff account,
//! and timed HTTP requests for a queue's first and last pages, a sort, and searches by name, code
//! utilisateur and dossier number. Prints a table of p50/p99 per request.
//!
//! `cargo run --release -p cachet-bench --bin dashboard [-- DOSSIERS]`, or part of the suite.

use std::time::{Duration, Instant};

use cachet_api::accounts::{self, CandidateAccount, Identity, StaffAccount};
use cachet_api::{App, Database, Settings};
use cachet_domain::demo::source_session;
use cachet_domain::dossier::DossierEvent;
use cachet_domain::event::{Actor, StaffRole};
use cachet_domain::ids::{CandidateId, DossierId, SessionId};
use cachet_domain::session::{SessionConfig, SessionEvent};
use cachet_store::typed::{append_request, Metadata};
use cachet_store::ExpectedVersion;
use chrono::{Duration as Days, NaiveDate, TimeZone, Utc};
use futures::StreamExt;
use uuid::Uuid;

const NAMES: [&str; 20] = [
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
    "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
];

fn metadata(actor: Actor) -> Metadata {
    let command_id = Uuid::new_v4();
    Metadata { actor, command_id, correlation_id: command_id, causation_id: None }
}

use crate::measure::percentile;

/// One timed request: its label, p50 and p99.
pub struct Timing {
    pub label: &'static str,
    pub p50: Duration,
    pub p99: Duration,
}

/// Generates a session of `dossiers` dossiers in `database`, serves it, and times each page of
/// the dashboard and search 100 times (after 10 of warm-up). Prints a table and returns it.
pub async fn run(dossiers: usize, database: Database) -> Vec<Timing> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let backend = match &database {
        Database::Sqlite(_) => "SQLite",
        Database::Postgres(_) => "PostgreSQL",
    };
    let app = App::build(Settings::new(database, dir.path().join("files"))).await.expect("the service starts");
    let state = app.state().clone();

    // A session whose deadline has passed, and its dossiers: pre-registered, three in four
    // deposited by post (one in ten of those late).
    let started = Instant::now();
    let session = SessionId::from_uuid(Uuid::new_v4());
    let deadline = NaiveDate::from_ymd_opt(2023, 7, 6).expect("a date");
    let config = SessionConfig { deposit_deadline: deadline, ..source_session() };
    let admin = Actor::Staff { account: "admin".to_owned(), role: StaffRole::Admin };
    let opened = [SessionEvent::SessionOpened { session_id: session, config }];
    let at = Utc.with_ymd_and_hms(2023, 5, 2, 7, 0, 0).single().expect("an instant");
    state
        .store
        .append(append_request(session.as_uuid(), ExpectedVersion::Exact(0), &metadata(admin), at, &opened))
        .await
        .expect("open the session");
    let hash = accounts::hash_password("bench-password-2024".to_owned()).await.expect("a hash");
    let codes: Vec<(Uuid, String)> = futures::stream::iter(0..dossiers)
        .map(|n| {
            let state = state.clone();
            let hash = hash.clone();
            async move {
                let dossier = DossierId::from_uuid(Uuid::new_v4());
                let candidate_id = CandidateId::from_uuid(Uuid::new_v4());
                let user_code = cachet_api::service::user_code_for(dossier);
                let registered = at + Days::minutes(n as i64);
                let mut events = vec![DossierEvent::PreRegistered {
                    dossier_id: dossier,
                    session_id: session,
                    candidate_id,
                    user_code: user_code.clone(),
                    registered_at: registered,
                }];
                if n % 4 != 0 {
                    let postmark = deadline + Days::days(if n % 10 == 0 { 1 } else { -1 });
                    let verdict = cachet_domain::deadline::judge_postmark(postmark, deadline);
                    events.push(DossierEvent::PostalReceiptRecorded {
                        postmark_date: postmark,
                        arrival_date: deadline + Days::days(3),
                        incident: None,
                        verdict,
                    });
                    if !verdict.on_time {
                        events.push(DossierEvent::Rejected {
                            reason: cachet_domain::dossier::RejectionReason::Late { verdict },
                        });
                    }
                }
                let actor = Actor::Candidate { candidate_id };
                let request =
                    append_request(dossier.as_uuid(), ExpectedVersion::Exact(0), &metadata(actor), registered, &events);
                state.store.append(request).await.expect("append a dossier");
                let account = CandidateAccount {
                    user_code: user_code.to_string(),
                    candidate_id: candidate_id.as_uuid(),
                    dossier_id: dossier.as_uuid(),
                    session_id: session.as_uuid(),
                    identity: Identity {
                        last_name: format!("{}{}", NAMES[n % NAMES.len()], n / NAMES.len()),
                        first_name: "Camille".to_owned(),
                        birth_date: NaiveDate::from_ymd_opt(1980, 1, 1).expect("a date"),
                        address: "1 rue de la Paix".to_owned(),
                        email: format!("c{n}@exemple.fr"),
                        phone: "0233000000".to_owned(),
                        answers: Default::default(),
                    },
                    password_hash: hash,
                    created_at: registered,
                };
                accounts::create_candidate(&state.db, &account).await.expect("an account");
                (dossier.as_uuid(), user_code.to_string())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let head = state.store.head().await.expect("the head").position;
    assert!(state.runner.wait_for(head, Duration::from_secs(3600)).await, "the read models catch up");
    if backend == "PostgreSQL" {
        // What autovacuum does after a bulk load (PostgreSQL 13 and later vacuum after inserts
        // too): statistics, without which the planner guesses, and the visibility map, without
        // which a queue's page picked on its index alone still reads every skipped row.
        sqlx::query("VACUUM ANALYZE").execute(&state.db.pool).await.expect("vacuum analyze");
    }
    println!(
        "Generated {dossiers} dossiers ({head} events) on {backend} in {:.1} s, read models included.",
        started.elapsed().as_secs_f64()
    );

    let staff = StaffAccount {
        account: "agent".to_owned(),
        role: StaffRole::Staff,
        display_name: "Agent".to_owned(),
        password_hash: accounts::hash_password("bench-password-2024".to_owned()).await.expect("a hash"),
    };
    accounts::upsert_staff(&state.db, &staff, Utc::now()).await.expect("a staff account");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder().cookie_store(true).build().expect("a client");
    let form = client.get(format!("{base}/bureau/connexion")).send().await.expect("the login page");
    let html = form.text().await.expect("its text");
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF token") + 19;
    let token = html[start..start + 64].to_owned();
    let login = client
        .post(format!("{base}/bureau/connexion"))
        .form(&[("csrf", token.as_str()), ("compte", "agent"), ("mot_de_passe", "bench-password-2024")])
        .send()
        .await
        .expect("sign in");
    assert_eq!(login.url().path(), "/bureau", "signed in");

    let (dossier, code) = codes[codes.len() / 2].clone();
    let counts = cachet_projections::queries::status_counts(&state.db, session.as_uuid()).await.expect("counts");
    let to_transfer = counts.get("deposited").copied().unwrap_or(0);
    let last_page = (to_transfer + 49) / 50;
    let middle_page = (last_page + 1) / 2;
    let requests = [
        ("file « à transférer », page 1", format!("/bureau/sessions/{session}?file=to_transfer")),
        (
            "file « à transférer », dernière page",
            format!("/bureau/sessions/{session}?file=to_transfer&page={last_page}"),
        ),
        (
            "file « à transférer », page du milieu",
            format!("/bureau/sessions/{session}?file=to_transfer&page={middle_page}"),
        ),
        (
            "file « à transférer », plus récents d'abord",
            format!("/bureau/sessions/{session}?file=to_transfer&tri=recents"),
        ),
        ("file « en attente de dépôt », page 1", format!("/bureau/sessions/{session}?file=awaiting_deposit")),
        ("recherche par nom (« Moreau12 »)", format!("/bureau/sessions/{session}?q=Moreau12")),
        ("recherche par début de nom (« Mor »)", format!("/bureau/sessions/{session}?q=Mor")),
        ("recherche par prénom, toute la session (« Camille »)", format!("/bureau/sessions/{session}?q=Camille")),
        ("recherche par code utilisateur", format!("/bureau/sessions/{session}?q={code}")),
        ("recherche par numéro de dossier", format!("/bureau/sessions/{session}?q={dossier}")),
        ("page d'un dossier", format!("/bureau/dossiers/{dossier}")),
        ("statistiques de la session", format!("/bureau/sessions/{session}/statistiques")),
    ];
    // The searches must find what they look for, or their times mean nothing.
    for (path, expected) in [
        (format!("/bureau/sessions/{session}?q={code}"), code.clone()),
        (format!("/bureau/sessions/{session}?q={dossier}"), code.clone()),
        (format!("/bureau/sessions/{session}?q=moreau12"), "MOREAU12 Camille".to_owned()),
        (
            format!("/bureau/sessions/{session}?file=to_transfer&page={last_page}"),
            format!("Page {last_page} sur {last_page}"),
        ),
        (
            format!("/bureau/sessions/{session}?q=Camille"),
            if dossiers > 1000 { "plus de 1 000 dossiers".to_owned() } else { format!("{dossiers} dossier(s)") },
        ),
    ] {
        let body = client.get(format!("{base}{path}")).send().await.expect("a page").text().await.expect("a body");
        assert!(body.contains(&expected), "{path} finds {expected}: {}", body.split("<main").nth(1).unwrap_or(&body));
    }
    println!("\n| requête ({dossiers} dossiers, {backend}) | p50 | p99 |\n|---|---|---|");
    let mut timings = Vec::new();
    for (label, path) in requests {
        let mut times = Vec::with_capacity(100);
        for i in 0..110 {
            let started = Instant::now();
            let response = client.get(format!("{base}{path}")).send().await.expect("a page");
            assert!(response.status().is_success(), "{path}: {}", response.status());
            response.bytes().await.expect("the body");
            if i >= 10 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        let timing = Timing { label, p50: percentile(&times, 0.5), p99: percentile(&times, 0.99) };
        println!(
            "| {label} | {:.1} ms | {:.1} ms |",
            timing.p50.as_secs_f64() * 1000.0,
            timing.p99.as_secs_f64() * 1000.0
        );
        timings.push(timing);
    }
    let _ = stop.send(());
    let _ = server.await;
    timings
}
