//! Three `cachet serve` processes on one PostgreSQL under conflicting load: candidates
//! pre-register through the pages of all three, the three race to record each dossier's postal
//! receipt, and afterwards no event is lost or duplicated, each candidate got each mail once (the
//! three processes' senders share one outbox), and the read models equal their rebuild.

#[path = "../../../tests/support/pg.rs"]
mod pg;
#[path = "support/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use server::{cachet, Server};

const CANDIDATES: usize = 18;

fn serve(url: &str, data: &Path) -> Server {
    let data = data.display().to_string();
    Server::start_quiet(&["--dev-identity", "--database-url", url, "--data-dir", &data])
}

fn between(html: &str, start: &str, end: &str) -> Option<String> {
    let from = html.find(start)? + start.len();
    Some(html[from..].split(end).next()?.to_owned())
}

/// Pre-registers through the page, as a browser would; returns the dossier.
async fn pre_register(base: &str, session: &str, n: usize) -> String {
    let client = reqwest::Client::builder().cookie_store(true).build().expect("a client");
    let page = format!("{base}/sessions/{session}/preinscription");
    let form = client.get(&page).send().await.expect("the form").text().await.expect("HTML");
    let mut fields = vec![("csrf".to_owned(), between(&form, "name=\"csrf\" value=\"", "\"").expect("a CSRF token"))];
    if let Some(nonce) = between(&form, "name=\"jeton\" value=\"", "\"") {
        fields.push(("jeton".to_owned(), nonce));
    }
    for (name, value) in [
        ("nom", format!("Candidat{n}")),
        ("prenom", "Camille".to_owned()),
        ("date_naissance", "1985-03-14".to_owned()),
        ("adresse", "12 rue des Lilas, 61000 Alençon".to_owned()),
        ("courriel", format!("candidat{n}@exemple.fr")),
        ("telephone", "02 33 80 48 00".to_owned()),
        ("q_grade", "Adjoint technique territorial".to_owned()),
        ("q_employeur", "Commune d'Alençon".to_owned()),
        ("mot_de_passe", "un-mot-de-passe-solide".to_owned()),
        ("confirmation", "un-mot-de-passe-solide".to_owned()),
    ] {
        fields.push((name.to_owned(), value));
    }
    let reply = client.post(&page).form(&fields).send().await.expect("pre-register");
    assert_eq!(reply.status(), 200);
    reply.url().path().strip_prefix("/dossiers/").expect("landed on the dossier").to_owned()
}

/// The recipients of the mails written to the three processes' outbox folders.
fn recipients(folders: &[&Path]) -> Vec<String> {
    let mut to = Vec::new();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(folder.join("outbox")) else { continue };
        for entry in entries.map_while(Result::ok) {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            // A file still being written has no recipient yet: read it at the next look.
            if let Some(line) = text.lines().find(|l| l.starts_with("To: ")) {
                to.push(line.trim_start_matches("To: ").trim().to_owned());
            }
        }
    }
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_on_one_postgres_lose_nothing_duplicate_nothing_and_mail_once() {
    let Some(db) = pg::PgTestDb::create().await else { return };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("a folder")).collect();
    let servers: Vec<Server> = dirs.iter().map(|d| serve(&db.url, d.path())).collect();
    let http = reqwest::Client::new();
    let today = chrono::Utc::now().date_naive();
    let session = server::open_session(&http, &servers[0].base).await;

    let registrations: Vec<_> = (0..CANDIDATES).map(|n| pre_register(&servers[n % 3].base, &session, n)).collect();
    let dossiers = futures::future::join_all(registrations).await;

    // The three race to record each dossier's receipt: one applies, two are told why not.
    let mut races = Vec::new();
    for dossier in &dossiers {
        let attempts: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                http.post(format!("{}/api/dossiers/{dossier}/postal-receipts", server.base))
                    .header("X-Cachet-Actor", format!("staff:agent{i}"))
                    .json(&json!({"postmark_date": today.to_string(), "arrival_date": today.to_string()}))
                    .send()
            })
            .collect();
        races.push(futures::future::join_all(attempts));
    }
    for race in futures::future::join_all(races).await {
        let statuses: Vec<u16> = race.into_iter().map(|r| r.expect("an answer").status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 2, "{statuses:?}");
    }

    // Each candidate: the confirmation and « dossier reçu », once each, whichever process sent them.
    let folders: Vec<&Path> = dirs.iter().map(|d| d.path()).collect();
    let expected = 2 * CANDIDATES;
    for _ in 0..300 {
        if recipients(&folders).len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for to in recipients(&folders) {
        *per_recipient.entry(to).or_default() += 1;
    }
    assert_eq!(per_recipient.len(), CANDIDATES, "{per_recipient:?}");
    assert!(per_recipient.values().all(|n| *n == 2), "each candidate gets two mails: {per_recipient:?}");
    let senders = folders.iter().filter(|f| std::fs::read_dir(f.join("outbox")).is_ok_and(|d| d.count() > 0)).count();
    println!("{} mails, written by {senders} of the 3 processes", 2 * CANDIDATES);

    // Every dossier: its pre-registration and one receipt, nothing lost or doubled.
    for dossier in &dossiers {
        let history: Vec<Value> = http
            .get(format!("{}/api/dossiers/{dossier}/history", servers[2].base))
            .header("X-Cachet-Actor", "auditor:audit")
            .send()
            .await
            .expect("a history")
            .json()
            .await
            .expect("JSON");
        let kinds: Vec<&str> = history.iter().filter_map(|e| e["event_type"].as_str()).collect();
        assert_eq!(kinds, ["PreRegistered", "PostalReceiptRecorded"], "{dossier}");
    }
    drop(servers);
    let (code, out) = cachet(&["verify", "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cachet(&["replay", "--check", "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}");
    db.drop_db().await;
}
