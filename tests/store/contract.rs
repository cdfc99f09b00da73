//! The store contract, written once against [`Harness`] and instantiated per backend.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cachet_store::verify::{verify_chain, BreakKind};
use cachet_store::{
    stream_all, AppendOutcome, AppendRequest, EventStore, ExpectedVersion, NewEvent, ReadGuard, StoreError,
};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use uuid::Uuid;

/// What a backend provides to the contract: its store, and raw SQL as a superuser would run it.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A new store instance on the test database (as a restarted process would open it).
    async fn open(&self) -> Arc<dyn EventStore>;
    /// Runs SQL directly, with the append-only protection still on.
    async fn exec(&self, sql: &str) -> Result<(), String>;
    /// Removes the append-only protection, as a superuser could.
    async fn unprotect(&self);
    /// SQL that alters the payload bytes of the event at a position.
    fn alter_payload_sql(&self, position: i64) -> String;
    /// SQL that inserts a forged copy of the event at `position` right after it, at the end.
    fn forge_after_sql(&self, position: i64) -> String;
    /// SQL installing a trigger that makes inserting an event of type `Poison` fail with an error
    /// that is not a constraint violation (on SQLite, one that rolls back the whole transaction).
    fn poison_trigger_sql(&self) -> String;
    /// Takes the lock every append transaction needs, from another connection, until released.
    async fn lock_writes(&self) -> Box<dyn WriteLock>;
    /// The read models' database, the same one as the store's.
    async fn read_db(&self) -> cachet_projections::db::ReadDb;
    /// SQL answering, in one text column, whether this connection's commits wait for the disk.
    fn commit_durability_sql(&self) -> &'static str;
}

/// The append lock, held by the test.
#[async_trait]
pub trait WriteLock: Send {
    async fn release(self: Box<Self>);
}

/// Submits every request while the test holds the append lock, so the requests share batches
/// deterministically: the appender, stuck on the lock with the first batch it took, finds all
/// the others waiting in its channel and writes them together in the next one. A request in
/// the middle therefore shares its batch with at least half of the others.
pub async fn append_in_shared_batches(
    h: &dyn Harness,
    store: &dyn EventStore,
    requests: Vec<AppendRequest>,
) -> Vec<Result<AppendOutcome, StoreError>> {
    assert!(requests.len() <= 32, "one poll per request must fit in tokio's cooperative budget");
    let lock = h.lock_writes().await;
    let mut pending: Vec<_> = requests.into_iter().map(|r| store.append(r)).collect();
    for append in &mut pending {
        // One poll hands the request to the appender, which cannot answer while the lock is held.
        assert!(futures::poll!(append.as_mut()).is_pending());
    }
    lock.release().await;
    futures::future::join_all(pending).await
}

pub fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "TestHappened".to_owned(),
        schema_version: 1,
        payload: format!(r#"{{"type":"TestHappened","n":{n},"text":"cachet de la poste"}}"#).into_bytes(),
        metadata: br#"{"actor":{"kind":"system","component":"test"}}"#.to_vec(),
        occurred_at: Utc::now(),
    }
}

pub fn request(stream_id: Uuid, expected: ExpectedVersion, events: usize) -> AppendRequest {
    AppendRequest {
        stream_id,
        stream_type: "test".to_owned(),
        expected,
        command_id: Uuid::new_v4(),
        events: (0..events).map(event).collect(),
        read_guards: Vec::new(),
    }
}

async fn assert_chain_valid(store: &dyn EventStore) {
    let report = verify_chain(store, |_| {}).await.unwrap();
    assert_eq!(report.first_break, None, "chain should verify");
    assert_eq!(report.checked as i64, report.head.position);
}

async fn all_positions(store: &dyn EventStore) -> Vec<i64> {
    stream_all(store, 0).map_ok(|e| e.position).try_collect().await.unwrap()
}

pub async fn appends_and_reads_back_a_stream_in_order(h: &dyn Harness) {
    let store = h.open().await;
    let stream = Uuid::new_v4();
    let first = store.append(request(stream, ExpectedVersion::Exact(0), 2)).await.unwrap();
    assert_eq!((first.stream_version, first.first_position, first.last_position), (2, Some(1), Some(2)));
    let second = store.append(request(stream, ExpectedVersion::Exact(2), 1)).await.unwrap();
    assert_eq!((second.stream_version, second.first_position), (3, Some(3)));
    let events = store.read_stream(stream).await.unwrap();
    assert_eq!(events.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(events.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at), "recorded times never decrease");
    assert_eq!(events[0].payload, event(0).payload, "payload bytes are stored exactly");
    // The command path's read gives the same events, reduced to what a fold needs; a stream
    // without events reads empty.
    let to_fold = store.read_stream_to_fold(stream).await.unwrap();
    assert_eq!(to_fold, events.iter().cloned().map(cachet_store::ReplayEvent::from).collect::<Vec<_>>());
    assert!(store.read_stream_to_fold(Uuid::new_v4()).await.unwrap().is_empty());
    assert_chain_valid(&*store).await;
}

/// A command that decided with another stream's state (a dossier's with its session's) appends
/// only if that stream has not moved since it was read; otherwise it is a conflict on that
/// stream, and nothing is appended.
pub async fn a_read_guard_on_a_stream_that_moved_is_a_conflict_and_appends_nothing(h: &dyn Harness) {
    let store = h.open().await;
    let (session, dossier) = (Uuid::new_v4(), Uuid::new_v4());
    let guarded = |version: i64, expected: i64| AppendRequest {
        read_guards: vec![ReadGuard { stream_id: session, version }],
        ..request(dossier, ExpectedVersion::Exact(expected), 1)
    };
    // A stream that does not exist is at version 0.
    let err = store.append(guarded(1, 0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { stream_id, actual: 0, .. } if stream_id == session), "{err:?}");
    store.append(guarded(0, 0)).await.unwrap();
    store.append(request(session, ExpectedVersion::Exact(0), 1)).await.unwrap();
    store.append(guarded(1, 1)).await.unwrap();

    store.append(request(session, ExpectedVersion::Exact(1), 1)).await.unwrap();
    let err = store.append(guarded(1, 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { stream_id, actual: 2, .. } if stream_id == session), "{err:?}");
    assert_eq!(store.read_stream(dossier).await.unwrap().len(), 2, "nothing appended");

    // Sent together (one batch, or two), a guarded command and a move of the stream it read: the
    // guarded one is appended only if it comes first in the log.
    let (moved, guarded) =
        tokio::join!(store.append(request(session, ExpectedVersion::Exact(2), 1)), store.append(guarded(2, 2)),);
    let moved = moved.unwrap().first_position.unwrap();
    match guarded {
        Ok(outcome) => assert!(outcome.first_position.unwrap() < moved, "the guarded command came first"),
        Err(err) => assert!(matches!(err, StoreError::Conflict { stream_id, actual: 3, .. } if stream_id == session)),
    }
    assert_chain_valid(&*store).await;
}

pub async fn a_stale_expected_version_is_a_conflict_and_appends_nothing(h: &dyn Harness) {
    let store = h.open().await;
    let stream = Uuid::new_v4();
    store.append(request(stream, ExpectedVersion::Exact(0), 1)).await.unwrap();
    let err = store.append(request(stream, ExpectedVersion::Exact(0), 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { actual: 1, .. }), "{err:?}");
    assert_eq!(store.head().await.unwrap().position, 1);
    assert_eq!(store.read_stream(stream).await.unwrap().len(), 1);
}

pub async fn thirty_two_tasks_racing_on_one_stream_have_exactly_one_winner_per_version(h: &dyn Harness) {
    let store = h.open().await;
    let stream = Uuid::new_v4();
    for version in 0..5 {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.append(request(stream, ExpectedVersion::Exact(version), 1)).await })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(outcome) => {
                    winners += 1;
                    assert_eq!(outcome.stream_version, version + 1);
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
        assert_eq!(winners, 1, "exactly one winner for version {version}");
    }
    let versions: Vec<i64> = store.read_stream(stream).await.unwrap().iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    assert_chain_valid(&*store).await;
}

pub async fn thirty_two_tasks_racing_on_many_streams_keep_positions_contiguous_and_the_chain_valid(h: &dyn Harness) {
    let store = h.open().await;
    let shared = Uuid::new_v4();
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let own = Uuid::new_v4();
                let (mut appended, mut version) = (0_i64, 0_i64);
                for _ in 0..10 {
                    let outcome =
                        store.append(request(own, ExpectedVersion::Exact(version), 1 + task % 3)).await.unwrap();
                    appended += outcome.last_position.unwrap() - outcome.first_position.unwrap() + 1;
                    version = outcome.stream_version;
                    // Everyone also races on one shared stream, retrying on conflict.
                    loop {
                        let version = store.read_stream(shared).await.unwrap().len() as i64;
                        match store.append(request(shared, ExpectedVersion::Exact(version), 1)).await {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    appended += 1;
                }
                appended
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let positions = all_positions(&*store).await;
    assert_eq!(positions, (1..=total).collect::<Vec<_>>(), "positions are gap-free and ordered");
    let recorded: Vec<_> = stream_all(&*store, 0).map_ok(|e| e.recorded_at).try_collect().await.unwrap();
    assert!(recorded.windows(2).all(|w| w[0] <= w[1]), "recorded times never decrease along the log");
    assert_eq!(store.read_stream(shared).await.unwrap().len(), 320);
    assert_chain_valid(&*store).await;
}

pub async fn a_retried_command_appends_nothing_and_returns_the_first_outcome_even_after_reopening(h: &dyn Harness) {
    let store = h.open().await;
    let stream = Uuid::new_v4();
    let command = request(stream, ExpectedVersion::Exact(0), 2);
    let first = store.append(command.clone()).await.unwrap();
    assert!(!first.replayed);
    store.append(request(stream, ExpectedVersion::Exact(2), 1)).await.unwrap();

    // The retry carries a now-stale expected version: it must still answer the first outcome.
    let retried = store.append(command.clone()).await.unwrap();
    assert!(retried.replayed);
    assert_eq!((retried.stream_version, retried.first_position, retried.last_position), (2, Some(1), Some(2)));
    assert_eq!(store.head().await.unwrap().position, 3);

    drop(store);
    let reopened = h.open().await;
    let again = reopened.append(command.clone()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.first_position, Some(1));
    assert_eq!(reopened.command_outcome(command.command_id).await.unwrap().map(|o| o.stream_version), Some(2));
    assert_eq!(reopened.head().await.unwrap().position, 3);
}

pub async fn concurrent_retries_of_one_command_append_it_once(h: &dyn Harness) {
    let store = h.open().await;
    let command = request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, command) = (store.clone(), command.clone());
            tokio::spawn(async move { store.append(command).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        assert_eq!(outcome.first_position, Some(1));
        fresh += usize::from(!outcome.replayed);
    }
    assert_eq!(fresh, 1);
    assert_eq!(store.head().await.unwrap().position, 1);
}

pub async fn a_command_id_reused_on_another_stream_is_refused(h: &dyn Harness) {
    let store = h.open().await;
    let command = request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1);
    store.append(command.clone()).await.unwrap();
    let elsewhere = AppendRequest { stream_id: Uuid::new_v4(), ..command };
    let err = store.append(elsewhere).await.unwrap_err();
    assert!(matches!(err, StoreError::CommandIdReused { .. }), "{err:?}");
    assert_eq!(store.head().await.unwrap().position, 1);
}

pub async fn a_failed_request_in_a_batch_leaves_the_others_committed(h: &dyn Harness) {
    let store = h.open().await;
    let taken = event(0);
    store
        .append(AppendRequest { events: vec![taken.clone()], ..request(Uuid::new_v4(), ExpectedVersion::Any, 0) })
        .await
        .unwrap();
    // Requests sharing a batch; one reuses an event id already stored: the database refuses the
    // batch's insert, and the appender retries each request alone, so only that one fails.
    let requests = (0..20)
        .map(|i| {
            let mut req = request(Uuid::new_v4(), ExpectedVersion::Exact(0), 2);
            if i == 10 {
                req.events[1] = taken.clone();
            }
            req
        })
        .collect();
    for (i, result) in append_in_shared_batches(h, &*store, requests).await.into_iter().enumerate() {
        assert_eq!(result.is_err(), i == 10, "request {i}: {result:?}");
    }
    assert_eq!(all_positions(&*store).await, (1..=39).collect::<Vec<_>>());
    assert_chain_valid(&*store).await;
}

pub async fn a_request_that_breaks_the_whole_transaction_fails_alone(h: &dyn Harness) {
    let store = h.open().await;
    h.exec(&h.poison_trigger_sql()).await.unwrap();
    let requests: Vec<AppendRequest> = (0..30)
        .map(|i| {
            let mut req = request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1);
            if i == 15 {
                req.events[0].event_type = "Poison".to_owned();
            }
            req
        })
        .collect();
    let results = append_in_shared_batches(h, &*store, requests.clone()).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), i == 15, "request {i}: {result:?}");
    }
    let stored = store.read_all(0, 100).await.unwrap();
    assert_eq!(stored.iter().map(|e| e.position).collect::<Vec<_>>(), (1..=29).collect::<Vec<_>>());
    // Every caller was told where its event is, and it is there.
    for (req, result) in requests.iter().zip(&results) {
        if let Ok(outcome) = result {
            let at = &stored[outcome.first_position.unwrap() as usize - 1];
            assert_eq!((at.command_id, at.event_id), (Some(req.command_id), req.events[0].event_id));
        }
    }
    assert!(stored.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
    assert_chain_valid(&*store).await;
    // The store goes on.
    let next = store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    assert_eq!(next.first_position, Some(30));
    assert_chain_valid(&*store).await;
}

pub async fn recorded_times_never_go_back_even_when_the_clock_does(h: &dyn Harness) {
    let store = h.open().await;
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    // The last commit came from a process whose clock is an hour ahead (or this clock stepped
    // back by an hour).
    let ahead = DateTime::from_timestamp_micros((Utc::now() + chrono::Duration::hours(1)).timestamp_micros()).unwrap();
    h.exec(&format!("UPDATE log_head SET recorded_at_us = {}", ahead.timestamp_micros())).await.unwrap();
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 2)).await.unwrap();
    let events = store.read_all(0, 10).await.unwrap();
    assert_eq!(events.len(), 3);
    assert!(events[0].recorded_at < ahead);
    assert!(events[1..].iter().all(|e| e.recorded_at == ahead), "{events:?}");
    assert_chain_valid(&*store).await;
}

pub async fn the_database_refuses_to_update_or_delete_events(h: &dyn Harness) {
    let store = h.open().await;
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 2)).await.unwrap();
    let update = h.exec("UPDATE events SET event_type = 'Forged' WHERE position = 1").await;
    assert!(update.unwrap_err().contains("append-only"));
    let delete = h.exec("DELETE FROM events WHERE position = 2").await;
    assert!(delete.unwrap_err().contains("append-only"));
    let command = h.exec("DELETE FROM commands").await;
    assert!(command.unwrap_err().contains("append-only"));
    assert_chain_valid(&*store).await;
}

async fn ten_events(h: &dyn Harness) -> Arc<dyn EventStore> {
    let store = h.open().await;
    for _ in 0..5 {
        store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 2)).await.unwrap();
    }
    assert_chain_valid(&*store).await;
    h.unprotect().await;
    store
}

async fn first_break(store: &dyn EventStore) -> cachet_store::verify::ChainBreak {
    verify_chain(store, |_| {}).await.unwrap().first_break.expect("tampering must be detected")
}

pub async fn an_altered_payload_is_detected_at_its_position(h: &dyn Harness) {
    let store = ten_events(h).await;
    h.exec(&h.alter_payload_sql(4)).await.unwrap();
    let broken = first_break(&*store).await;
    assert_eq!((broken.position, broken.kind), (4, BreakKind::HashMismatch));
    let stored = store.read_all(3, 1).await.unwrap().remove(0);
    assert_eq!((broken.stream_id, broken.event_id), (Some(stored.stream_id), Some(stored.event_id)));
}

pub async fn a_deleted_event_is_detected_at_its_position(h: &dyn Harness) {
    let store = ten_events(h).await;
    h.exec("DELETE FROM events WHERE position = 6").await.unwrap();
    let broken = first_break(&*store).await;
    assert_eq!((broken.position, broken.kind), (6, BreakKind::Gap { found: 7 }));
}

pub async fn two_swapped_positions_are_detected_at_the_first(h: &dyn Harness) {
    let store = ten_events(h).await;
    for sql in [
        "UPDATE events SET position = -3 WHERE position = 3",
        "UPDATE events SET position = 3 WHERE position = 8",
        "UPDATE events SET position = 8 WHERE position = -3",
    ] {
        h.exec(sql).await.unwrap();
    }
    let broken = first_break(&*store).await;
    assert_eq!(broken.position, 3);
    assert!(matches!(broken.kind, BreakKind::PrevHashMismatch | BreakKind::HashMismatch));
}

pub async fn a_forged_event_is_detected_at_its_position(h: &dyn Harness) {
    let store = ten_events(h).await;
    h.exec(&h.forge_after_sql(10)).await.unwrap();
    // The forger also moves the head, so only the hash can tell.
    h.exec("UPDATE log_head SET position = 11").await.unwrap();
    let broken = first_break(&*store).await;
    assert_eq!((broken.position, broken.kind), (11, BreakKind::HashMismatch));
}

pub async fn a_truncated_tail_is_detected(h: &dyn Harness) {
    let store = ten_events(h).await;
    h.exec("DELETE FROM events WHERE position > 8").await.unwrap();
    let broken = first_break(&*store).await;
    assert_eq!((broken.position, broken.kind), (9, BreakKind::HeadMismatch { head_position: 10, last_position: 8 }));
}

pub async fn subscribers_are_woken_by_appends(h: &dyn Harness) {
    let store = h.open().await;
    let mut positions = store.subscribe();
    let initial = *positions.borrow_and_update();
    assert_eq!(initial, 0);
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 3)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), positions.wait_for(|p| *p >= 3)).await.unwrap().unwrap();
}

/// A read model that records how the transactions it is applied in commit.
struct DurabilityProbe {
    sql: &'static str,
    seen: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl cachet_projections::runner::Projection for DurabilityProbe {
    fn name(&self) -> &'static str {
        "durability_probe"
    }
    fn version(&self) -> i64 {
        1
    }
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
    fn schema(&self, _: cachet_projections::runner::Target) -> Vec<String> {
        Vec::new()
    }
    async fn apply(
        &self,
        conn: &mut sqlx::AnyConnection,
        _: cachet_projections::runner::Target,
        _: &[cachet_store::StoredEvent],
    ) -> Result<(), cachet_projections::ProjectionError> {
        let seen: String = sqlx::query_scalar(self.sql).fetch_one(conn).await?;
        self.seen.lock().unwrap().push(seen);
        Ok(())
    }
}

/// The read models' commits do not wait for the disk (they are folded again from durable events
/// after a crash); every other write still does.
pub async fn the_runner_commits_read_models_without_waiting_for_the_disk_and_other_writers_still_wait(h: &dyn Harness) {
    let store = h.open().await;
    let db = h.read_db().await;
    let probe = Arc::new(DurabilityProbe { sql: h.commit_durability_sql(), seen: Default::default() });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (runner, tasks) =
        cachet_projections::runner::spawn(store.clone(), db.clone(), vec![probe.clone()], shutdown).await.unwrap();
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 2)).await.unwrap();
    assert!(runner.wait_for(2, Duration::from_secs(10)).await, "the runner applies the events");
    // A rebuild's catch-up runs on the pool's connections, in transactions of the same kind.
    cachet_projections::runner::prepare(&db, &*probe, cachet_projections::runner::Target::Rebuild).await.unwrap();
    cachet_projections::runner::catch_up(&*store, &db, &*probe, cachet_projections::runner::Target::Rebuild, 2, |_| {})
        .await
        .unwrap();
    let seen = probe.seen.lock().unwrap().clone();
    let relaxed = if db.backend == cachet_store::Backend::Postgres { "off" } else { "1" };
    let full = if db.backend == cachet_store::Backend::Postgres { "on" } else { "2" };
    assert_eq!(seen.first().map(String::as_str), Some(relaxed), "the live runner: {seen:?}");
    // On SQLite the setting belongs to a connection, and the pool's stay durable.
    let rebuild = if db.backend == cachet_store::Backend::Postgres { relaxed } else { full };
    assert_eq!(seen.last().map(String::as_str), Some(rebuild), "the rebuild: {seen:?}");
    // Other writers' transactions, on the pool, still wait for the disk.
    for _ in 0..8 {
        let mut tx = db.begin_write().await.unwrap();
        let other: String = sqlx::query_scalar(h.commit_durability_sql()).fetch_one(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(other, full);
    }
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
}

pub async fn reading_everything_streams_in_batches_in_order(h: &dyn Harness) {
    let store = h.open().await;
    let total = cachet_store::READ_BATCH * 2 + 17;
    let mut appended = 0;
    while appended < total {
        let n = (total - appended).min(100) as usize;
        store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), n)).await.unwrap();
        appended += n as i64;
    }
    assert_eq!(all_positions(&*store).await, (1..=total).collect::<Vec<_>>());
    let after: BTreeSet<i64> = stream_all(&*store, total - 5).map_ok(|e| e.position).try_collect().await.unwrap();
    assert_eq!(after, (total - 4..=total).collect());
    // The backend's streamed read gives exactly what the batched reads give, field for field.
    let streamed: Vec<_> = store.stream_from(10).try_collect().await.unwrap();
    let batched: Vec<_> = cachet_store::stream_batched(&*store, 10).try_collect().await.unwrap();
    assert_eq!(streamed.len() as i64, total - 10);
    assert_eq!(streamed, batched);
    // A replay's read gives the same events, reduced, in chunks.
    let chunks: Vec<Vec<cachet_store::ReplayEvent>> = store.replay_from(10).try_collect().await.unwrap();
    assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= cachet_store::REPLAY_CHUNK));
    let replayed: Vec<_> = chunks.into_iter().flatten().collect();
    assert_eq!(replayed, streamed.iter().cloned().map(cachet_store::ReplayEvent::from).collect::<Vec<_>>());
    // A reader that stops early lets the store go on.
    let mut partial = store.stream_from(0);
    assert_eq!(partial.try_next().await.unwrap().map(|e| e.position), Some(1));
    drop(partial);
    store.append(request(Uuid::new_v4(), ExpectedVersion::Exact(0), 1)).await.unwrap();
    assert_eq!(store.stream_from(total).try_collect::<Vec<_>>().await.unwrap().len(), 1);
    assert_chain_valid(&*store).await;
}

/// Instantiates every contract test for one backend, given an async fn building its harness.
#[macro_export]
macro_rules! contract_tests {
    ($harness:path) => {
        $crate::contract_tests!(@each $harness;
            appends_and_reads_back_a_stream_in_order,
            a_stale_expected_version_is_a_conflict_and_appends_nothing,
            a_read_guard_on_a_stream_that_moved_is_a_conflict_and_appends_nothing,
            thirty_two_tasks_racing_on_one_stream_have_exactly_one_winner_per_version,
            thirty_two_tasks_racing_on_many_streams_keep_positions_contiguous_and_the_chain_valid,
            a_retried_command_appends_nothing_and_returns_the_first_outcome_even_after_reopening,
            concurrent_retries_of_one_command_append_it_once,
            a_command_id_reused_on_another_stream_is_refused,
            a_failed_request_in_a_batch_leaves_the_others_committed,
            a_request_that_breaks_the_whole_transaction_fails_alone,
            recorded_times_never_go_back_even_when_the_clock_does,
            the_database_refuses_to_update_or_delete_events,
            an_altered_payload_is_detected_at_its_position,
            a_deleted_event_is_detected_at_its_position,
            two_swapped_positions_are_detected_at_the_first,
            a_forged_event_is_detected_at_its_position,
            a_truncated_tail_is_detected,
            subscribers_are_woken_by_appends,
            reading_everything_streams_in_batches_in_order,
            the_runner_commits_read_models_without_waiting_for_the_disk_and_other_writers_still_wait,
        );
    };
    (@each $harness:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(harness) = $harness().await else { return };
                $crate::contract::$name(&harness).await;
                harness.finish().await;
            }
        )*
    };
}
