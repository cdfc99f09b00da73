//! The contract on PostgreSQL: a fresh database per test; and what only PostgreSQL has: several
//! processes on one database, and transactions that commit late.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cachet_store::postgres::PgEventStore;
use cachet_store::verify::verify_chain;
use cachet_store::{EventStore, ExpectedVersion};
use futures::TryStreamExt;
use sqlx::{Connection, Executor};
use uuid::Uuid;

use crate::contract::{request, Harness, WriteLock};
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
    async fn read_db(&self) -> cachet_projections::db::ReadDb {
        cachet_projections::db::ReadDb::connect(&self.db.url).await.unwrap()
    }

    fn commit_durability_sql(&self) -> &'static str {
        "SELECT current_setting('synchronous_commit')"
    }

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

    fn poison_trigger_sql(&self) -> String {
        // A plain exception: not a constraint violation, so it fails the whole batch.
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'poison'; END $$; \
         CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW \
         WHEN (NEW.event_type = 'Poison') EXECUTE FUNCTION poison();"
            .to_owned()
    }

    async fn lock_writes(&self) -> Box<dyn WriteLock> {
        let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        conn.execute("SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE").await.unwrap();
        Box::new(PgLock(conn))
    }
}

struct PgLock(sqlx::PgConnection);

#[async_trait]
impl WriteLock for PgLock {
    async fn release(mut self: Box<Self>) {
        self.0.execute("COMMIT").await.unwrap();
    }
}

/// The test database's URL, connecting with an application name (to find a store's sessions in
/// `pg_stat_activity`).
fn named(url: &str, application_name: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={application_name}")
}

/// Polls a query until it returns `expected` (sessions end asynchronously), for at most 10 s.
async fn eventually(url: &str, sql: &str, expected: i64) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
        if found == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sql}: {found}, expected {expected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
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

/// A process whose LISTEN connection is killed listens again and still learns of the appends
/// another process made while it was not listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_listen_connection_drops_still_learns_of_new_events() {
    let Some(h) = PgHarness::new().await else { return };
    let a = h.connect().await;
    let b = PgEventStore::connect(&named(&h.db.url, "cachet_b")).await.unwrap();
    let mut woken = b.subscribe();

    // Take every connection of B's pool but the listener's, and queue for that one too: once the
    // listener loses its connection, it cannot listen again until the test lets go.
    let mut held = Vec::new();
    for _ in 1..b.pool().options().get_max_connections() {
        held.push(b.pool().acquire().await.unwrap());
    }
    let mut queued = Box::pin(b.pool().acquire());
    assert!(futures::poll!(queued.as_mut()).is_pending(), "B's pool is full");
    let queued = tokio::spawn(queued);
    h.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'cachet_b' AND query LIKE 'LISTEN%'",
    )
    .await
    .unwrap();
    // The queued acquire gets the listener's slot: the listener saw its connection die.
    held.push(tokio::time::timeout(Duration::from_secs(5), queued).await.unwrap().unwrap().unwrap());

    // B is not listening: this notification is lost for it.
    a.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    assert_eq!(*woken.borrow_and_update(), 0);
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), woken.wait_for(|p| *p >= 1)).await.unwrap().unwrap();
    // And it listens again.
    a.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.wait_for(|p| *p >= 2)).await.unwrap().unwrap();
    h.finish().await;
}

/// Dropping a store and its subscribers ends its LISTEN task: no session of it is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_leaves_no_session_behind() {
    let Some(h) = PgHarness::new().await else { return };
    let store = PgEventStore::connect(&named(&h.db.url, "cachet_gone")).await.unwrap();
    let sessions = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cachet_gone'";
    let subscriber = store.subscribe();
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    drop(store);
    drop(subscriber);
    eventually(&h.db.url, sessions, 0).await;
    h.finish().await;
}

/// The writer's session is set by the store, not by the server's defaults: here the database
/// defaults to REPEATABLE READ (a writer waiting for the lock would fail to serialise),
/// asynchronous commits (acknowledged appends could be lost) and no idle timeout (a frozen
/// process would hold the lock for ever). A trigger records the session of every insert: by the
/// appender, by a held append, and by the appender after it reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_session_does_not_depend_on_server_defaults() {
    let Some(h) = PgHarness::new().await else { return };
    drop(h.connect().await); // migrates
    h.exec(
        "CREATE TABLE writer_sessions (n SERIAL, pid INT, isolation TEXT, synchronous_commit TEXT, idle_timeout TEXT); \
         CREATE FUNCTION record_writer_session() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           INSERT INTO writer_sessions (pid, isolation, synchronous_commit, idle_timeout) VALUES (pg_backend_pid(), \
             current_setting('transaction_isolation'), current_setting('synchronous_commit'), \
             current_setting('idle_in_transaction_session_timeout')); \
           RETURN NEW; END $$; \
         CREATE TRIGGER record_writer_session AFTER INSERT ON events FOR EACH ROW \
           EXECUTE FUNCTION record_writer_session(); \
         DO $$ BEGIN \
           EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', current_database(), 'repeatable read'); \
           EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); \
           EXECUTE format('ALTER DATABASE %I SET idle_in_transaction_session_timeout = 0', current_database()); \
         END $$;",
    )
    .await
    .unwrap();
    let store = h.connect().await;
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    let held = store.begin_held_append(vec![request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)]).await.unwrap();
    held.commit().await.unwrap().remove(0).unwrap();
    // Kill the appender's connection (waiting until it is gone): it must reconnect.
    h.exec("SELECT pg_terminate_backend((SELECT pid FROM writer_sessions ORDER BY n LIMIT 1), 5000)").await.unwrap();
    let _ = store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await;
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();

    let mut conn = sqlx::PgConnection::connect(&h.db.url).await.unwrap();
    let sessions: Vec<(String, String, String)> =
        sqlx::query_as("SELECT DISTINCT isolation, synchronous_commit, idle_timeout FROM writer_sessions")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(sessions, vec![("read committed".to_owned(), "on".to_owned(), "1min".to_owned())]);
    let writers: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT pid) FROM writer_sessions").fetch_one(&mut conn).await.unwrap();
    assert_eq!(writers, 3, "the appender, the held append, the appender reconnected");
    conn.close().await.unwrap();
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_stopped_in_the_middle_of_its_copy_leaves_the_store_usable() {
    let Some(h) = PgHarness::new().await else { return };
    let store = h.connect().await;
    // Enough events for the COPY to be cut off while the server still has rows to send.
    let total = cachet_store::REPLAY_CHUNK * 8;
    for _ in 0..total / 1_000 {
        store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1_000)).await.unwrap();
    }
    for _ in 0..20 {
        let mut replay = store.replay_from(0);
        let first = replay.try_next().await.unwrap().expect("a first chunk");
        assert_eq!(first.first().map(|e| e.position), Some(1));
        drop(replay);
    }
    // Every connection of the pool still answers, and a whole replay still reads everything.
    for _ in 0..32 {
        store.head().await.unwrap();
    }
    let positions: Vec<i64> = store.replay_from(0).map_ok(|c| c.len() as i64).try_collect().await.unwrap();
    assert_eq!(positions.iter().sum::<i64>(), (total / 1_000 * 1_000) as i64);
    h.finish().await;
}
