//! End to end through HTTP: the real server (axum, the store, the projection runner, and the
//! read-your-writes wait before each answer), on a loopback port, driven by clients in the same
//! process. The command is the workload's piece review through the API; the queries are a
//! dossier's status through the API and the candidate's status page.

use std::sync::Arc;
use std::time::Duration;

use cachet_api::accounts::{self, CandidateAccount, Identity};
use cachet_api::{App, Database, Settings};
use cachet_domain::ids::SessionId;
use chrono::{NaiveDate, Utc};
use uuid::Uuid;

use crate::commands::seed;
use cachet_bench::measure::{closed_loop, Load};

pub struct Http {
    pub commands: Vec<Load>,
    /// (what, load) at each number of clients.
    pub queries: Vec<(&'static str, Load)>,
}

const PASSWORD: &str = "bench-password-2024";

async fn sign_in(base: &str, code: &str) -> reqwest::Client {
    let client = reqwest::Client::builder().cookie_store(true).build().expect("a client");
    let html =
        client.get(format!("{base}/connexion")).send().await.expect("the login page").text().await.expect("text");
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF token") + 19;
    let token = html[start..start + 64].to_owned();
    let answer = client
        .post(format!("{base}/connexion"))
        .form(&[("csrf", token.as_str()), ("code", code), ("mot_de_passe", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert!(answer.status().is_success(), "signed in: {}", answer.status());
    client
}

pub async fn run(
    database: Database,
    dossiers: usize,
    command_clients: &[usize],
    query_clients: &[usize],
    duration: Duration,
) -> Http {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut settings = Settings::new(database, dir.path().join("files"));
    settings.dev_identity = true;
    settings.send_mail = false;
    let app = App::build(settings).await.expect("the service starts");
    let state = app.state().clone();
    let session = SessionId::from_uuid(Uuid::new_v4());
    let seeded = seed(&*state.store, session, dossiers).await;
    let head = state.store.head().await.expect("the head").position;
    assert!(state.runner.wait_for(head, Duration::from_secs(3600)).await, "the read models catch up");
    if state.db.backend == cachet_store::Backend::Postgres {
        // What autovacuum does after a bulk load; it is off on the benchmark machine.
        sqlx::query("ANALYZE").execute(&state.db.pool).await.expect("statistics");
    }

    // A candidate account, for the status page.
    let (dossier, candidate) = seeded[0];
    let code = cachet_api::service::user_code_for(dossier).to_string();
    let account = CandidateAccount {
        user_code: code.clone(),
        candidate_id: candidate.as_uuid(),
        dossier_id: dossier.as_uuid(),
        session_id: session.as_uuid(),
        identity: Identity {
            last_name: "Martin".to_owned(),
            first_name: "Camille".to_owned(),
            birth_date: NaiveDate::from_ymd_opt(1980, 1, 1).expect("a date"),
            address: "1 rue de la Paix".to_owned(),
            email: "camille.martin@exemple.fr".to_owned(),
            phone: "0233000000".to_owned(),
            answers: Default::default(),
        },
        password_hash: accounts::hash_password(PASSWORD.to_owned()).await.expect("a hash"),
        created_at: Utc::now(),
    };
    accounts::create_candidate(&state.db, &account).await.expect("an account");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let base = Arc::new(base);
    let ids: Arc<Vec<Uuid>> = Arc::new(seeded.iter().map(|(d, _)| d.as_uuid()).collect());
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("a client");

    let mut commands = Vec::new();
    for &n in command_clients {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        commands.push(
            closed_loop(n, Duration::from_millis(500), duration, move |c, i| {
                let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
                async move {
                    let dossier = crate::workload::mine(&ids, c, n, i);
                    let answer = client
                        .post(format!("{base}/api/dossiers/{dossier}/piece-reviews"))
                        .header("x-cachet-actor", "staff:agent")
                        .json(&serde_json::json!({ "piece": "etat-services", "outcome": "accepted" }))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if answer.status() != 200 {
                        return Err(format!("{}: {}", answer.status(), answer.text().await.unwrap_or_default()));
                    }
                    answer.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                }
            })
            .await,
        );
    }

    let candidate_client = sign_in(&base, &code).await;
    let page = Arc::new(format!("{base}/dossiers/{dossier}"));
    let mut queries = Vec::new();
    for &n in query_clients {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        let load = closed_loop(n, Duration::from_millis(300), duration, move |c, i| {
            let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
            async move {
                let dossier = crate::workload::mine(&ids, c, n, i);
                let answer = client
                    .get(format!("{base}/api/dossiers/{dossier}"))
                    .header("x-cachet-actor", "staff:agent")
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if answer.status() != 200 {
                    return Err(answer.status().to_string());
                }
                answer.bytes().await.map(|_| ()).map_err(|e| e.to_string())
            }
        })
        .await;
        queries.push(("statut d'un dossier, API", load));
    }
    for &n in query_clients {
        let (client, page) = (candidate_client.clone(), page.clone());
        let load = closed_loop(n, Duration::from_millis(300), duration, move |_, _| {
            let (client, page) = (client.clone(), page.clone());
            async move {
                let answer = client.get(page.as_str()).send().await.map_err(|e| e.to_string())?;
                if answer.status() != 200 {
                    return Err(answer.status().to_string());
                }
                let body = answer.text().await.map_err(|e| e.to_string())?;
                if !body.contains("il est en cours d") {
                    return Err("the status page does not show the dossier's status".to_owned());
                }
                Ok(())
            }
        })
        .await;
        queries.push(("page de statut du candidat", load));
    }
    let _ = stop.send(());
    let _ = server.await;
    Http { commands, queries }
}
