//! The contract on SQLite: a fresh database file per test.

use std::sync::Arc;

use async_trait::async_trait;
use cachet_store::sqlite::SqliteEventStore;
use cachet_store::EventStore;
use sqlx::{Connection, Executor, SqliteConnection};

use crate::contract::Harness;

pub struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl SqliteHarness {
    pub async fn new() -> Option<Self> {
        Some(Self { dir: tempfile::tempdir().unwrap() })
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("cachet.sqlite")
    }

    pub async fn finish(self) {}

    async fn raw(&self) -> SqliteConnection {
        SqliteConnection::connect(&format!("sqlite://{}", self.path().display())).await.unwrap()
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    async fn open(&self) -> Arc<dyn EventStore> {
        Arc::new(SqliteEventStore::open(self.path()).await.unwrap())
    }

    async fn exec(&self, sql: &str) -> Result<(), String> {
        let mut conn = self.raw().await;
        conn.execute(sql).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn unprotect(&self) {
        for trigger in ["events_no_update", "events_no_delete", "commands_no_update", "commands_no_delete"] {
            self.exec(&format!("DROP TRIGGER {trigger}")).await.unwrap();
        }
    }

    fn alter_payload_sql(&self, position: i64) -> String {
        format!(
            "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), 'poste', 'Poste') AS BLOB) \
             WHERE position = {position}"
        )
    }

    fn forge_after_sql(&self, position: i64) -> String {
        format!(
            "INSERT INTO events (position, event_id, stream_id, stream_type, stream_version, event_type, \
             schema_version, payload, metadata, command_id, occurred_at_us, recorded_at_us, prev_hash, hash) \
             SELECT position + 1, randomblob(16), stream_id, stream_type, stream_version + 1000, event_type, \
             schema_version, payload, metadata, command_id, occurred_at_us, recorded_at_us, hash, hash \
             FROM events WHERE position = {position}"
        )
    }
}

crate::contract_tests!(SqliteHarness::new);

/// An error that makes SQLite roll back the whole transaction (here a trigger raising
/// `ROLLBACK` for one request of a batch) fails that request only: the others are retried alone
/// and committed, and the log stays gap-free with a valid chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_rolls_back_the_whole_transaction_fails_alone() {
    use cachet_store::verify::verify_chain;
    use cachet_store::ExpectedVersion;
    use futures::TryStreamExt;

    let harness = SqliteHarness::new().await.unwrap();
    let store = harness.open().await;
    harness
        .exec(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_type = 'Poison' \
             BEGIN SELECT RAISE(ROLLBACK, 'poison'); END",
        )
        .await
        .unwrap();
    // Submitted together, so that they share batches with the poisoned one.
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let store = store.clone();
            let mut req = crate::contract::request(uuid::Uuid::new_v4(), ExpectedVersion::Exact(0), 2);
            if i == 13 {
                req.events[1].event_type = "Poison".to_owned();
            }
            tokio::spawn(async move { (i, store.append(req).await) })
        })
        .collect();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        assert_eq!(result.is_err(), i == 13, "request {i}: {result:?}");
    }
    let positions: Vec<i64> = cachet_store::stream_all(&*store, 0).map_ok(|e| e.position).try_collect().await.unwrap();
    assert_eq!(positions, (1..=58).collect::<Vec<_>>());
    assert_eq!(verify_chain(&*store, |_| {}).await.unwrap().first_break, None);
    harness.finish().await;
}
