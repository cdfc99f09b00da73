//! `cachet backup` taken while `cachet serve` is under load, restored elsewhere: the hash chain
//! verifies and the read models equal their rebuild, on SQLite and on PostgreSQL.

#[path = "../../../tests/support/pg.rs"]
mod pg;
#[path = "support/server.rs"]
mod server;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use server::{cachet, events_verified, Server};

fn serve(args: &[&str]) -> Server {
    let mut args = args.to_vec();
    args.push("--dev-identity");
    Server::start(&args)
}

/// Opens a session, then keeps eight clients pre-registering and recording receipts until
/// `stop`; returns the session and the number of commands acknowledged.
async fn load(base: String, stop: Arc<AtomicBool>) -> usize {
    let client = reqwest::Client::new();
    let today = chrono::Utc::now().date_naive();
    let session = server::open_session(&client, &base).await;
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (client, base, session, stop, acknowledged) =
            (client.clone(), base.clone(), session.clone(), stop.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let candidate = uuid::Uuid::new_v4();
                let reply = client
                    .post(format!("{base}/api/sessions/{session}/dossiers"))
                    .header("X-Cachet-Actor", format!("candidate:{candidate}"))
                    .send()
                    .await
                    .expect("pre-register");
                assert_eq!(reply.status(), 201);
                let body: Value = reply.json().await.expect("JSON");
                let dossier = body["dossier_id"].as_str().expect("a dossier").to_owned();
                let reply = client
                    .post(format!("{base}/api/dossiers/{dossier}/postal-receipts"))
                    .header("X-Cachet-Actor", "staff:agent")
                    .json(&json!({"postmark_date": today.to_string(), "arrival_date": today.to_string()}))
                    .send()
                    .await
                    .expect("a receipt");
                assert_eq!(reply.status(), 200);
                acknowledged.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    for client in clients {
        client.await.expect("a client");
    }
    acknowledged.load(Ordering::Relaxed)
}

/// Runs the load, takes the backup in its middle, and returns what `cachet backup` printed.
async fn backup_under_load(base: &str, backup_args: Vec<String>) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(base.to_owned(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, out) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = backup_args.iter().map(String::as_str).collect();
        cachet(&args)
    })
    .await
    .expect("the backup");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = running.await.expect("the load");
    assert!(acknowledged > 20, "the load ran: {acknowledged} commands");
    assert_eq!(code, 0, "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_under_load_restores_verified_and_equal_to_its_rebuild() {
    let dir = tempfile::tempdir().expect("a folder");
    let data = dir.path().join("data");
    let backup = dir.path().join("sauvegarde");
    let server = serve(&["--data-dir", data.to_str().expect("a path")]);
    let out = backup_under_load(
        &server.base,
        vec![
            "backup".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--to".into(),
            backup.display().to_string(),
        ],
    )
    .await;
    assert!(out.contains("Base SQLite sauvegardée"), "{out}");
    drop(server);

    // Restored: the copied file in a data folder of its own.
    let restored = dir.path().join("restauree");
    std::fs::create_dir_all(&restored).expect("a folder");
    std::fs::copy(backup.join("cachet.sqlite"), restored.join("cachet.sqlite")).expect("restore");
    let restored = restored.to_str().expect("a path");
    let (code, out) = cachet(&["verify", "--data-dir", restored]);
    assert_eq!(code, 0, "{out}");
    let (_, live) = cachet(&["verify", "--data-dir", data.to_str().expect("a path")]);
    let (in_backup, in_live) = (events_verified(&out), events_verified(&live));
    assert!(0 < in_backup && in_backup < in_live, "a snapshot taken midway: {in_backup} of {in_live} events");
    let (code, out) = cachet(&["replay", "--check", "--data-dir", restored]);
    assert_eq!(code, 0, "{out}");

    // A second backup into the same folder is refused rather than mixed with the first.
    let (code, out) = cachet(&["backup", "--data-dir", restored, "--to", backup.to_str().expect("a path")]);
    assert_ne!(code, 0);
    assert!(out.contains("n'est pas vide"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_taken_under_load_restores_verified_and_equal_to_its_rebuild() {
    let Some(db) = pg::PgTestDb::create().await else { return };
    let Some(copy) = pg::PgTestDb::create().await else { return };
    let dir = tempfile::tempdir().expect("a folder");
    let data = dir.path().to_str().expect("a path").to_owned();
    let backup = dir.path().join("sauvegarde");
    let server = serve(&["--database-url", &db.url, "--data-dir", &data]);
    let out = backup_under_load(
        &server.base,
        vec![
            "backup".into(),
            "--database-url".into(),
            db.url.clone(),
            "--data-dir".into(),
            data.clone(),
            "--to".into(),
            backup.display().to_string(),
        ],
    )
    .await;
    assert!(out.contains("Base PostgreSQL sauvegardée"), "{out}");
    drop(server);

    let status = Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", copy.url.split('?').next().unwrap_or_default()])
        .arg(backup.join("cachet.dump"))
        .status()
        .expect("pg_restore");
    assert!(status.success(), "pg_restore: {status}");
    let (code, out) = cachet(&["verify", "--database-url", &copy.url]);
    assert_eq!(code, 0, "{out}");
    let (_, live) = cachet(&["verify", "--database-url", &db.url]);
    let (in_backup, in_live) = (events_verified(&out), events_verified(&live));
    assert!(0 < in_backup && in_backup < in_live, "a snapshot taken midway: {in_backup} of {in_live} events");
    let (code, out) = cachet(&["replay", "--check", "--database-url", &copy.url]);
    assert_eq!(code, 0, "{out}");
    copy.drop_db().await;
    db.drop_db().await;
}
