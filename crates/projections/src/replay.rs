//! Rebuilding a read model from position 0 beside the live one (blue/green), then comparing the
//! two row by row, or swapping the rebuilt copy in.
//!
//! The live runner may move the live checkpoint on while the rebuild runs. So the comparison and
//! the swap each take the live checkpoint's lock in their transaction (the row lock on
//! PostgreSQL, the write lock on SQLite), which stops the runner, and first bring the rebuild up
//! to it there: both copies are then compared at the same position, and the swapped-in rows are
//! never behind the live checkpoint.

use cachet_store::{Backend, EventStore};
use sqlx::{AnyConnection, Row};

use crate::db::ReadDb;
use crate::runner::{catch_up, create_indexes, prepare_rebuild_tables, Projection, Target, BATCH};
use crate::ProjectionError;

/// A row that differs between the live read model and its rebuild.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub table: String,
    /// The row's first column (its key).
    pub key: String,
    pub kind: DifferenceKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DifferenceKind {
    /// The row exists in both, with different values.
    Changed,
    /// Only in the live read model.
    OnlyLive,
    /// Only in the rebuild.
    OnlyRebuilt,
}

/// Builds the projection from position 0 into its rebuild tables, up to `until`, then indexes
/// them.
pub async fn rebuild_beside(
    store: &dyn EventStore,
    db: &ReadDb,
    projection: &dyn Projection,
    until: i64,
    progress: impl FnMut(i64),
) -> Result<i64, ProjectionError> {
    prepare_rebuild_tables(db, projection).await?;
    let reached = catch_up(store, db, projection, Target::Rebuild, until, progress).await?;
    create_indexes(db, projection, Target::Rebuild).await?;
    Ok(reached)
}

/// Reads a checkpoint in the caller's transaction, locking its row where the backend can.
async fn locked_checkpoint(
    conn: &mut AnyConnection,
    db: &ReadDb,
    projection: &dyn Projection,
    target: Target,
) -> Result<i64, ProjectionError> {
    let position: Option<i64> =
        sqlx::query_scalar(&format!("SELECT position FROM checkpoints WHERE name = $1{}", db.for_update()))
            .bind(target.table(projection.name()))
            .fetch_optional(&mut *conn)
            .await?;
    Ok(position.unwrap_or(0))
}

/// Applies the events after `from` up to `to` to `target`, in the caller's transaction, and moves
/// its checkpoint.
async fn advance(
    conn: &mut AnyConnection,
    store: &dyn EventStore,
    projection: &dyn Projection,
    target: Target,
    from: i64,
    to: i64,
) -> Result<(), ProjectionError> {
    let mut position = from;
    while position < to {
        let mut batch = store.read_all(position, BATCH.min(to - position)).await?;
        batch.retain(|e| e.position <= to);
        match batch.first() {
            Some(first) if first.position == position + 1 => {}
            Some(first) => return Err(ProjectionError::OutOfOrder { expected: position + 1, found: first.position }),
            None => return Err(ProjectionError::Corrupt(format!("the store ends before position {to}"))),
        }
        projection.apply(&mut *conn, target, &batch).await?;
        position = batch.last().map_or(position, |e| e.position);
    }
    sqlx::query("UPDATE checkpoints SET position = $1 WHERE name = $2")
        .bind(position)
        .bind(target.table(projection.name()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Locks the live checkpoint in the caller's transaction and brings the rebuild up to it. Returns
/// the live and rebuilt positions (the rebuild may be further on, never behind).
async fn catch_up_with_live(
    conn: &mut AnyConnection,
    store: &dyn EventStore,
    db: &ReadDb,
    projection: &dyn Projection,
) -> Result<(i64, i64), ProjectionError> {
    let live = locked_checkpoint(conn, db, projection, Target::Live).await?;
    let rebuilt = locked_checkpoint(conn, db, projection, Target::Rebuild).await?;
    if rebuilt >= live {
        return Ok((live, rebuilt));
    }
    advance(conn, store, projection, Target::Rebuild, rebuilt, live).await?;
    Ok((live, live))
}

async fn keys(conn: &mut AnyConnection, from: &str, minus: &str) -> Result<Vec<String>, ProjectionError> {
    let rows = sqlx::query(&format!("SELECT * FROM (SELECT * FROM {from} EXCEPT SELECT * FROM {minus}) AS d"))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let first: String = row.try_get(0)?;
            let second: Option<String> = row.try_get(1).ok();
            Ok(match second {
                Some(second) if from.starts_with("dossier_pieces") => format!("{first} / {second}"),
                _ => first,
            })
        })
        .collect()
}

/// Every row that differs between the live tables and the rebuild tables, as they are: the live
/// runner may have moved the live tables past the rebuild. [`compare_at_live`] compares both at
/// the same position.
pub async fn compare(db: &ReadDb, projection: &dyn Projection) -> Result<Vec<Difference>, ProjectionError> {
    let mut conn = db.pool.acquire().await?;
    differences(&mut conn, projection).await
}

/// Compares the live tables and the rebuild at the same position: in one transaction that locks
/// the live checkpoint, the rebuild is first brought up to it (and, should the rebuild be further
/// on, the live tables up to the rebuild, as the runner would). Returns that position and every
/// row that differs.
pub async fn compare_at_live(
    store: &dyn EventStore,
    db: &ReadDb,
    projection: &dyn Projection,
) -> Result<(i64, Vec<Difference>), ProjectionError> {
    let mut tx = db.begin_write().await?;
    let (live, rebuilt) = catch_up_with_live(&mut tx, store, db, projection).await?;
    if live < rebuilt {
        advance(&mut tx, store, projection, Target::Live, live, rebuilt).await?;
    }
    let differences = differences(&mut tx, projection).await?;
    tx.commit().await?;
    Ok((rebuilt, differences))
}

async fn differences(
    conn: &mut AnyConnection,
    projection: &dyn Projection,
) -> Result<Vec<Difference>, ProjectionError> {
    let mut differences = Vec::new();
    for table in projection.tables() {
        let (live, rebuilt) = (Target::Live.table(table), Target::Rebuild.table(table));
        let only_live = keys(conn, &live, &rebuilt).await?;
        let only_rebuilt = keys(conn, &rebuilt, &live).await?;
        for key in &only_live {
            let kind = if only_rebuilt.contains(key) { DifferenceKind::Changed } else { DifferenceKind::OnlyLive };
            differences.push(Difference { table: (*table).to_owned(), key: key.clone(), kind });
        }
        for key in only_rebuilt.into_iter().filter(|k| !only_live.contains(k)) {
            differences.push(Difference { table: (*table).to_owned(), key, kind: DifferenceKind::OnlyRebuilt });
        }
    }
    Ok(differences)
}

/// Replaces the live rows and checkpoint with the rebuild's, in one transaction, and drops the
/// rebuild tables. The transaction locks the live checkpoint and first brings the rebuild up to
/// it, so the rows swapped in are never behind what the live runner had applied. Returns the
/// position of the rows now live.
pub async fn swap(store: &dyn EventStore, db: &ReadDb, projection: &dyn Projection) -> Result<i64, ProjectionError> {
    let mut tx = db.begin_write().await?;
    let (_, rebuilt) = catch_up_with_live(&mut tx, store, db, projection).await?;
    for table in projection.tables() {
        let (live, rebuild) = (Target::Live.table(table), Target::Rebuild.table(table));
        match db.backend {
            // The rebuilt table takes the live one's place, and its indexes their names: no
            // row is copied (copying 1M events' rows took 3 s). Readers wait for the commit.
            Backend::Postgres => {
                sqlx::query(&format!("DROP TABLE {live}")).execute(&mut *tx).await?;
                sqlx::query(&format!("ALTER TABLE {rebuild} RENAME TO {live}")).execute(&mut *tx).await?;
                let indexes: Vec<String> = sqlx::query_scalar(
                    "SELECT indexname::text FROM pg_indexes \
                     WHERE schemaname = current_schema() AND tablename::text = $1",
                )
                .bind(&live)
                .fetch_all(&mut *tx)
                .await?;
                for index in indexes {
                    if let Some(suffix) = index.strip_prefix(rebuild.as_str()) {
                        sqlx::query(&format!("ALTER INDEX {index} RENAME TO {live}{suffix}")).execute(&mut *tx).await?;
                    }
                }
            }
            // SQLite cannot rename an index: the rebuilt table's would keep their names, and the
            // next rebuild would find them taken. The rows are copied.
            Backend::Sqlite => {
                sqlx::query(&format!("DELETE FROM {live}")).execute(&mut *tx).await?;
                sqlx::query(&format!("INSERT INTO {live} SELECT * FROM {rebuild}")).execute(&mut *tx).await?;
                sqlx::query(&format!("DROP TABLE {rebuild}")).execute(&mut *tx).await?;
            }
        }
    }
    sqlx::query("UPDATE checkpoints SET position = $1 WHERE name = $2")
        .bind(rebuilt)
        .bind(Target::Live.table(projection.name()))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM checkpoints WHERE name = $1")
        .bind(Target::Rebuild.table(projection.name()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rebuilt)
}

/// Drops the rebuild tables (after a check).
pub async fn drop_rebuild(db: &ReadDb, projection: &dyn Projection) -> Result<(), ProjectionError> {
    let mut tx = db.begin_write().await?;
    for table in projection.tables() {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", Target::Rebuild.table(table))).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM checkpoints WHERE name = $1")
        .bind(Target::Rebuild.table(projection.name()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use cachet_domain::demo::source_session;
    use cachet_domain::dossier::DossierEvent;
    use cachet_domain::event::{DomainEvent, StaffRole};
    use cachet_domain::ids::{CandidateId, DossierId, SessionId, UserCode};
    use cachet_domain::session::SessionEvent;
    use cachet_domain::Actor;
    use cachet_store::sqlite::SqliteEventStore;
    use cachet_store::typed::{append_request, Metadata};
    use cachet_store::{EventStore, ExpectedVersion};
    use chrono::Utc;
    use uuid::Uuid;

    use super::{compare, compare_at_live, drop_rebuild, rebuild_beside, swap, DifferenceKind};
    use crate::db::ReadDb;
    use crate::dossiers::{DossiersProjection, STATUS};
    use crate::runner::{catch_up, prepare, read_checkpoint, Target};

    /// A store, its read models with the live runner's part played by hand, and a session.
    struct World {
        store: SqliteEventStore,
        db: ReadDb,
        session: SessionId,
        _dir: tempfile::TempDir,
    }

    async fn append<E: DomainEvent>(store: &SqliteEventStore, stream: Uuid, actor: Actor, event: E) {
        let command_id = Uuid::new_v4();
        let metadata = Metadata { actor, command_id, correlation_id: command_id, causation_id: None };
        let request = append_request(stream, ExpectedVersion::Exact(0), &metadata, Utc::now(), &[event]);
        store.append(request).await.expect("append");
    }

    impl World {
        async fn new() -> Self {
            let dir = tempfile::tempdir().expect("temporary folder");
            let path = dir.path().join("cachet.sqlite");
            let store = SqliteEventStore::open(path.clone()).await.expect("store");
            let db = ReadDb::connect_sqlite(&path).await.expect("read models");
            let session = SessionId::from_uuid(Uuid::new_v4());
            let admin = Actor::Staff { account: "admin".to_owned(), role: StaffRole::Admin };
            let opened = SessionEvent::SessionOpened { session_id: session, config: source_session() };
            append(&store, session.as_uuid(), admin, opened).await;
            prepare(&db, &DossiersProjection::default(), Target::Live).await.expect("live tables");
            Self { store, db, session, _dir: dir }
        }

        async fn pre_register(&self) -> DossierId {
            let candidate_id = CandidateId::from_uuid(Uuid::new_v4());
            let dossier_id = DossierId::from_uuid(Uuid::new_v4());
            let mut code = [0_u8; UserCode::LEN];
            code.copy_from_slice(&Uuid::new_v4().as_bytes()[..UserCode::LEN]);
            let event = DossierEvent::PreRegistered {
                dossier_id,
                session_id: self.session,
                candidate_id,
                user_code: UserCode::from_random_bytes(code),
                registered_at: Utc::now(),
            };
            append(&self.store, dossier_id.as_uuid(), Actor::Candidate { candidate_id }, event).await;
            dossier_id
        }

        /// Appends the office's `event` to a dossier at `version`.
        async fn office(&self, dossier: DossierId, version: i64, event: DossierEvent) {
            let command_id = Uuid::new_v4();
            let actor = Actor::Staff { account: "agent".to_owned(), role: StaffRole::Staff };
            let metadata = Metadata { actor, command_id, correlation_id: command_id, causation_id: None };
            let request =
                append_request(dossier.as_uuid(), ExpectedVersion::Exact(version), &metadata, Utc::now(), &[event]);
            self.store.append(request).await.expect("append");
        }

        /// What the live runner of one process does, with its kept states.
        async fn run_live_as(&self, process: &DossiersProjection) -> i64 {
            let head = self.store.head().await.expect("head").position;
            catch_up(&self.store, &self.db, process, Target::Live, head, |_| {}).await.expect("live")
        }

        /// What the live runner does: applies every event to the live tables.
        async fn run_live(&self) -> i64 {
            let head = self.store.head().await.expect("head").position;
            catch_up(&self.store, &self.db, &DossiersProjection::default(), Target::Live, head, |_| {})
                .await
                .expect("live")
        }

        async fn rebuild(&self) -> i64 {
            let until =
                read_checkpoint(&self.db, &DossiersProjection::default(), Target::Live).await.expect("checkpoint");
            rebuild_beside(&self.store, &self.db, &DossiersProjection::default(), until, |_| {}).await.expect("rebuild")
        }

        async fn live_dossiers(&self) -> i64 {
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {STATUS}")).fetch_one(&self.db.pool).await.expect("count")
        }
    }

    #[tokio::test]
    async fn a_swap_brings_the_rebuild_up_to_where_the_live_runner_went_meanwhile() {
        let world = World::new().await;
        world.pre_register().await;
        world.pre_register().await;
        world.run_live().await;
        let rebuilt = world.rebuild().await;
        // The live runner goes on while the rebuild waits to be swapped in.
        world.pre_register().await;
        let live = world.run_live().await;
        assert!(rebuilt < live);

        let swapped = swap(&world.store, &world.db, &DossiersProjection::default()).await.expect("swap");
        assert_eq!(swapped, live, "the rows swapped in are those of the live checkpoint");
        let checkpoint =
            read_checkpoint(&world.db, &DossiersProjection::default(), Target::Live).await.expect("checkpoint");
        assert_eq!(checkpoint, live);
        assert_eq!(world.live_dossiers().await, 3, "the dossier pre-registered meanwhile is still shown");

        world.rebuild().await;
        assert_eq!(compare(&world.db, &DossiersProjection::default()).await.expect("compare"), []);
        drop_rebuild(&world.db, &DossiersProjection::default()).await.expect("drop");
    }

    /// Two processes' runners on one database: the one that wrote a dossier first keeps its
    /// state, the other writes the next event, and the first must then fold onto the row, not
    /// onto the state it kept.
    #[tokio::test]
    async fn a_live_runner_reads_again_a_state_another_process_wrote_since() {
        let world = World::new().await;
        let dossier = world.pre_register().await;
        let (first, second) = (DossiersProjection::default(), DossiersProjection::default());
        world.run_live_as(&first).await;
        let postmark = chrono::NaiveDate::from_ymd_opt(2023, 7, 5).expect("a date");
        let deadline = source_session().deposit_deadline;
        let receipt = DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: postmark,
            incident: None,
            verdict: cachet_domain::deadline::judge_postmark(postmark, deadline),
        };
        world.office(dossier, 1, receipt).await;
        world.run_live_as(&second).await;
        world.office(dossier, 2, DossierEvent::Transferred).await;
        let live = world.run_live_as(&first).await;

        let status: String = sqlx::query_scalar(&format!("SELECT status FROM {STATUS} WHERE dossier_id = $1"))
            .bind(dossier.to_string())
            .fetch_one(&world.db.pool)
            .await
            .expect("the row");
        assert_eq!(status, "under_review");
        world.rebuild().await;
        let (position, differences) =
            compare_at_live(&world.store, &world.db, &DossiersProjection::default()).await.expect("compare at live");
        assert_eq!((position, differences), (live, vec![]));
        drop_rebuild(&world.db, &DossiersProjection::default()).await.expect("drop");
    }

    /// A dossier the batch found no status row of is inserted without `ON CONFLICT`. Rows and
    /// checkpoint commit together, so a batch applied again never finds the rows it wrote; were
    /// some there after all (here the checkpoint moved back by hand and the status row deleted,
    /// the piece rows left), the batch fails and moves nothing rather than overwrite them.
    #[tokio::test]
    async fn rows_a_batch_did_not_expect_fail_it_rather_than_being_overwritten() {
        let world = World::new().await;
        let opened = world.run_live().await;
        let dossier = world.pre_register().await;
        world.run_live().await;
        sqlx::query(&format!("DELETE FROM {STATUS} WHERE dossier_id = $1"))
            .bind(dossier.to_string())
            .execute(&world.db.pool)
            .await
            .expect("the status row deleted");
        sqlx::query("UPDATE checkpoints SET position = $1 WHERE name = 'dossiers'")
            .bind(opened)
            .execute(&world.db.pool)
            .await
            .expect("the checkpoint moved back");

        let head = world.store.head().await.expect("head").position;
        let applied =
            catch_up(&world.store, &world.db, &DossiersProjection::default(), Target::Live, head, |_| {}).await;
        assert!(applied.is_err(), "the batch must fail: {applied:?}");
        let checkpoint =
            read_checkpoint(&world.db, &DossiersProjection::default(), Target::Live).await.expect("checkpoint");
        assert_eq!(checkpoint, opened, "the failed batch moves nothing");
        assert_eq!(world.live_dossiers().await, 0, "the status row is not written either");
    }

    #[tokio::test]
    async fn a_check_compares_both_copies_at_the_same_position() {
        let world = World::new().await;
        world.pre_register().await;
        world.run_live().await;
        world.rebuild().await;
        world.pre_register().await;
        let live = world.run_live().await;

        // Compared as they stand, the copies differ only because the live one went on.
        let raw = compare(&world.db, &DossiersProjection::default()).await.expect("compare");
        assert!(raw.iter().any(|d| d.kind == DifferenceKind::OnlyLive), "{raw:?}");
        let (position, differences) =
            compare_at_live(&world.store, &world.db, &DossiersProjection::default()).await.expect("compare at live");
        assert_eq!((position, differences), (live, vec![]));
        drop_rebuild(&world.db, &DossiersProjection::default()).await.expect("drop");
    }
}
