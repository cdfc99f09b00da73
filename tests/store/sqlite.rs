//! The contract on SQLite: a fresh database file per test.

use std::sync::Arc;

use async_trait::async_trait;
use cachet_store::sqlite::SqliteEventStore;
use cachet_store::EventStore;
use sqlx::{Connection, Executor, SqliteConnection};

use crate::contract::{Harness, WriteLock};

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
    async fn read_db(&self) -> cachet_projections::db::ReadDb {
        cachet_projections::db::ReadDb::connect_sqlite(&self.path()).await.unwrap()
    }

    fn commit_durability_sql(&self) -> &'static str {
        "SELECT CAST(synchronous AS TEXT) FROM pragma_synchronous"
    }

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

    fn poison_trigger_sql(&self) -> String {
        // RAISE(ROLLBACK) undoes the whole transaction, not only the statement.
        "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_type = 'Poison' \
         BEGIN SELECT RAISE(ROLLBACK, 'poison'); END;"
            .to_owned()
    }

    async fn lock_writes(&self) -> Box<dyn WriteLock> {
        let mut conn = self.raw().await;
        conn.execute("BEGIN IMMEDIATE").await.unwrap();
        Box::new(SqliteLock(conn))
    }
}

struct SqliteLock(SqliteConnection);

#[async_trait]
impl WriteLock for SqliteLock {
    async fn release(mut self: Box<Self>) {
        self.0.execute("COMMIT").await.unwrap();
    }
}

crate::contract_tests!(SqliteHarness::new);
