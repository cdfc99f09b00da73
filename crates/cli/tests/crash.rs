//! Crash consistency: the real `cachet serve`, driven by 64 concurrent clients, killed with
//! SIGKILL at pseudo-random moments (20 times a run) and restarted on the same database. Afterwards every
//! acknowledged command is in the store exactly once (a retry with its Idempotency-Key appends
//! nothing), `cachet verify` finds the hash chain intact, and `cachet replay --check` finds every
//! read model equal to its rebuild. On SQLite and on PostgreSQL.

#[path = "../../../tests/support/pg.rs"]
mod pg;
#[path = "support/server.rs"]
mod server;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{json, Value};
use server::{cachet, events_verified, Server};

const CLIENTS: usize = 64;
const KILLS: usize = 20;

fn serve(database: &[String]) -> Server {
    let mut args = database.to_vec();
    args.push("--dev-identity".to_owned());
    Server::start_quiet(&args)
}

/// A command the server acknowledged: its idempotency key, its dossier, and what it was.
#[derive(Clone, Debug)]
struct Acked {
    key: String,
    dossier: String,
    receipt: bool,
}

/// One client: pre-registers, then records the postal receipt, each with its own key; keeps
/// what was acknowledged. A request that fails (the server was killed) is simply not counted.
async fn client(
    http: reqwest::Client,
    base: Arc<RwLock<String>>,
    session: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) {
    let today = chrono::Utc::now().date_naive().to_string();
    let mut dossier: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let url = base.read().expect("the base").clone();
        let key = uuid::Uuid::new_v4().to_string();
        let (request, receipt) = match &dossier {
            None => (
                http.post(format!("{url}/api/sessions/{session}/dossiers"))
                    .header("X-Cachet-Actor", format!("candidate:{}", uuid::Uuid::new_v4())),
                false,
            ),
            Some(id) => (
                http.post(format!("{url}/api/dossiers/{id}/postal-receipts"))
                    .header("X-Cachet-Actor", "staff:agent")
                    .json(&json!({"postmark_date": today, "arrival_date": today})),
                true,
            ),
        };
        let Ok(reply) = request.header("Idempotency-Key", &key).send().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let status = reply.status().as_u16();
        let Ok(body) = reply.json::<Value>().await else { continue };
        match (status, &dossier) {
            (201, None) => {
                let id = body["dossier_id"].as_str().expect("a dossier id").to_owned();
                acked.lock().expect("acked").push(Acked { key, dossier: id.clone(), receipt: false });
                dossier = Some(id);
            }
            (200, Some(id)) => {
                acked.lock().expect("acked").push(Acked { key, dossier: id.clone(), receipt });
                dossier = None;
            }
            (409, Some(_)) => dossier = None, // the receipt was applied but its answer was lost
            (status, _) if status >= 500 => {}
            (status, _) => panic!("unexpected answer {status}: {body}"),
        }
    }
}

async fn run(database: Vec<String>) {
    let mut server = serve(&database);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("a client");
    let today = chrono::Utc::now().date_naive();
    let session = server::open_session(&http, &server.base).await;

    let base = Arc::new(RwLock::new(server.base.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(http.clone(), base.clone(), session.clone(), stop.clone(), acked.clone())))
        .collect();

    // Kill at random moments, restart on the same database.
    let kills = AtomicUsize::new(0);
    let mut seed: u64 = 0x5EED_CAC4;
    for _ in 0..KILLS {
        // Let the clients get a few answers from this server, however slow the machine, then
        // wait a pseudo-random while longer, and kill it in the middle of their requests.
        let answered = acked.lock().expect("acked").len();
        let waiting = std::time::Instant::now();
        while acked.lock().expect("acked").len() < answered + 10 && waiting.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let pause = (seed >> 33) % 400;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill();
        kills.fetch_add(1, Ordering::Relaxed);
        server = tokio::task::spawn_blocking({
            let database = database.clone();
            move || serve(&database)
        })
        .await
        .expect("a restart");
        *base.write().expect("the base") = server.base.clone();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client");
    }
    let acked = acked.lock().expect("acked").clone();
    assert_eq!(kills.load(Ordering::Relaxed), KILLS);
    assert!(acked.len() >= 10 * KILLS, "the clients got answers between kills: {}", acked.len());
    println!(
        "{KILLS} SIGKILL, {CLIENTS} clients: {} commands acknowledged ({} receipts)",
        acked.len(),
        acked.iter().filter(|a| a.receipt).count()
    );

    // Every acknowledged command is there, once.
    let url = server.base.clone();
    let ready = |http: reqwest::Client| async move {
        for _ in 0..200 {
            if let Ok(reply) = http.get(format!("{url}/readyz")).send().await {
                if let Ok(body) = reply.json::<Value>().await {
                    if body["projections"].as_array().is_some_and(|p| p.iter().all(|p| p["lag"] == 0)) {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the read models did not catch up");
    };
    ready(http.clone()).await;
    let mut by_dossier: std::collections::BTreeMap<String, Vec<Acked>> = Default::default();
    for a in &acked {
        by_dossier.entry(a.dossier.clone()).or_default().push(a.clone());
    }
    for (dossier, commands) in &by_dossier {
        let history: Vec<Value> = http
            .get(format!("{}/api/dossiers/{dossier}/history", server.base))
            .header("X-Cachet-Actor", "auditor:audit")
            .send()
            .await
            .expect("a history")
            .json()
            .await
            .expect("JSON");
        let count = |kind: &str| history.iter().filter(|e| e["event_type"] == kind).count();
        assert_eq!(count("PreRegistered"), 1, "{dossier}: {history:?}");
        if commands.iter().any(|c| c.receipt) {
            assert_eq!(count("PostalReceiptRecorded"), 1, "{dossier}: {history:?}");
        }
    }
    // A retry of an acknowledged command, after all those restarts, appends nothing.
    let head_before = cachet_head(&database);
    for a in acked.iter().filter(|a| a.receipt).take(20) {
        let reply = http
            .post(format!("{}/api/dossiers/{}/postal-receipts", server.base, a.dossier))
            .header("X-Cachet-Actor", "staff:agent")
            .header("Idempotency-Key", &a.key)
            .json(&json!({"postmark_date": today.to_string(), "arrival_date": today.to_string()}))
            .send()
            .await
            .expect("a retry");
        assert_eq!(reply.status(), 200, "the first answer, again");
    }
    drop(server);
    assert_eq!(cachet_head(&database), head_before, "retries appended nothing");

    let mut verify = vec!["verify".to_owned()];
    verify.extend(database.iter().cloned());
    let (code, out) = cachet(&verify);
    assert_eq!(code, 0, "{out}");
    let mut check = vec!["replay".to_owned(), "--check".to_owned()];
    check.extend(database.iter().cloned());
    let (code, out) = cachet(&check);
    assert_eq!(code, 0, "{out}");
}

/// The number of events, as `cachet verify` counts them.
fn cachet_head(database: &[String]) -> i64 {
    let mut args = vec!["verify".to_owned()];
    args.extend(database.iter().cloned());
    let (code, out) = cachet(&args);
    assert_eq!(code, 0, "{out}");
    events_verified(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_twenty_kills_under_sixty_four_clients() {
    let dir = tempfile::tempdir().expect("a folder");
    run(vec!["--data-dir".to_owned(), dir.path().display().to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_twenty_kills_under_sixty_four_clients() {
    let Some(db) = pg::PgTestDb::create().await else { return };
    let dir = tempfile::tempdir().expect("a folder");
    run(vec!["--database-url".to_owned(), db.url.clone(), "--data-dir".to_owned(), dir.path().display().to_string()])
        .await;
    db.drop_db().await;
}
