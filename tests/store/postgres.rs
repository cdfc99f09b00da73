//! The contract on PostgreSQL: a fresh database per test; and what only PostgreSQL has: several
//! processes on one database, and transactions that commit late.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cachet_store::postgres::PgEventStore;
use cachet_store::verify::verify_chain;
use cachet_store::{EventStore, ExpectedVersion};
use sqlx::{Connection, Executor};
use uuid::Uuid;

use crate::contract::{request, Harness};
use crate::support::pg::PgTestDb;

pub struct PgHarness {
    db: PgTestDb,
}

impl PgHarness {
    pub async fn new() -> Option<Self> {
        PgTestDb::create().await.map(|db| Self { db })
    }

    pub async fn finish(self) {
        self.db.drop_db().await;
    }

    async fn connect(&self) -> PgEventStore {
        PgEventStore::connect(&self.db.url).await.unwrap()
    }
}

#[async_trait]
impl Harness for PgHarness {
    async fn open(&self) -> Arc<dyn EventStore> {
        Arc::new(self.connect().await)
    }

    async fn exec(&self, sql: &str) -> Result<(), String> {
        let mut conn = sqlx::PgConnection::connect(&self.db.url).await.map_err(|e| e.to_string())?;
        conn.execute(sql).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn unprotect(&self) {
        self.exec("ALTER TABLE events DISABLE TRIGGER USER").await.unwrap();
        self.exec("ALTER TABLE commands DISABLE TRIGGER USER").await.unwrap();
    }

    fn alter_payload_sql(&self, position: i64) -> String {
        format!(
            "UPDATE events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), 'poste', 'Poste'), 'UTF8') \
             WHERE position = {position}"
        )
    }

    fn forge_after_sql(&self, position: i64) -> String {
        format!(
            "INSERT INTO events (position, event_id, stream_id, stream_type, stream_version, event_type, \
             schema_version, payload, metadata, command_id, occurred_at_us, recorded_at_us, prev_hash, hash) \
             SELECT position + 1, gen_random_uuid(), stream_id, stream_type, stream_version + 1000, event_type, \
             schema_version, payload, metadata, command_id, occurred_at_us, recorded_at_us, hash, hash \
             FROM events WHERE position = {position}"
        )
    }
}

crate::contract_tests!(PgHarness::new);

/// A transaction that took its position first but commits last is seen by a reader following
/// `position > checkpoint`, in order, with nothing skipped: the classic gap of sequence-based
/// stores (taken at insert, visible at commit) cannot happen here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_skips_an_event_whose_transaction_committed_late() {
    let Some(h) = PgHarness::new().await else { return };
    let store = Arc::new(h.connect().await);
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 2)).await.unwrap();

    // A reader follows the log from its checkpoint for the whole test.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut checkpoint, mut seen) = (0_i64, Vec::new());
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while checkpoint < 2 + 3 + 8 && tokio::time::Instant::now() < deadline {
                for event in store.read_all(checkpoint, 100).await.unwrap() {
                    seen.push(event.position);
                    checkpoint = event.position;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        })
    };

    // One append transaction takes the next positions and stays open…
    let held = store.begin_held_append(vec![request(Uuid::new_v4(), ExpectedVersion::Exact(0), 3)]).await.unwrap();
    // …while others are submitted and try to commit.
    let others: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.read_all(2, 100).await.unwrap().len(), 0, "nothing after the held transaction is visible");
    assert!(others.iter().all(|t| !t.is_finished()), "later appends wait for the held transaction");

    let held_outcome = held.commit().await.unwrap().remove(0).unwrap();
    assert_eq!((held_outcome.first_position, held_outcome.last_position), (Some(3), Some(5)));
    for task in others {
        let outcome = task.await.unwrap().unwrap();
        assert!(outcome.first_position.unwrap() > 5);
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen, (1..=13).collect::<Vec<_>>(), "the reader saw every event once, in order");
    assert_eq!(verify_chain(&*store, |_| {}).await.unwrap().first_break, None);
    h.finish().await;
}

/// Two server processes on one database: appends interleave into one gap-free chain, and each
/// is woken by the other's commits through LISTEN/NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_gap_free_chain_and_wake_each_other() {
    let Some(h) = PgHarness::new().await else { return };
    let (a, b) = (Arc::new(h.connect().await), Arc::new(h.connect().await));
    let mut woken = b.subscribe();
    a.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.wait_for(|p| *p >= 1)).await.unwrap().unwrap();

    let shared = Uuid::new_v4();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store: Arc<dyn EventStore> = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                for _ in 0..5 {
                    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 2)).await.unwrap();
                    loop {
                        let version = store.read_stream(shared).await.unwrap().len() as i64;
                        if store.append(request(shared, ExpectedVersion::Exact(version), 1)).await.is_ok() {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = 1 + 32 * 5 * 3;
    let positions: Vec<i64> = a.read_all(0, 10_000).await.unwrap().iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=total).collect::<Vec<_>>());
    let versions: Vec<i64> = b.read_stream(shared).await.unwrap().iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=160).collect::<Vec<_>>());
    assert_eq!(verify_chain(&*b, |_| {}).await.unwrap().first_break, None);
    h.finish().await;
}

/// A process whose LISTEN connection is killed reconnects and still learns of appends made by
/// another process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_listen_connection_drops_still_learns_of_new_events() {
    let Some(h) = PgHarness::new().await else { return };
    let (a, b) = (Arc::new(h.connect().await), Arc::new(h.connect().await));
    let mut woken = b.subscribe();
    h.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .await
    .unwrap();
    a.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken.wait_for(|p| *p >= 1)).await.unwrap().unwrap();
    a.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken.wait_for(|p| *p >= 2)).await.unwrap().unwrap();
    h.finish().await;
}
