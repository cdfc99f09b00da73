//! Rebuilding a read model from position 0 beside the live one (blue/green), then comparing the
//! two row by row, or swapping the rebuilt copy in.

use cachet_store::EventStore;
use sqlx::Row;

use crate::db::ReadDb;
use crate::runner::{catch_up, prepare, read_checkpoint, Projection, Target};
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

/// Builds the projection from position 0 into its rebuild tables, up to `until`.
pub async fn rebuild_beside(
    store: &dyn EventStore,
    db: &ReadDb,
    projection: &dyn Projection,
    until: i64,
    progress: impl FnMut(i64),
) -> Result<i64, ProjectionError> {
    prepare(db, projection, Target::Rebuild).await?;
    catch_up(store, db, projection, Target::Rebuild, until, progress).await
}

async fn keys(db: &ReadDb, from: &str, minus: &str) -> Result<Vec<String>, ProjectionError> {
    let rows = sqlx::query(&format!("SELECT * FROM (SELECT * FROM {from} EXCEPT SELECT * FROM {minus}) AS d"))
        .fetch_all(&db.pool)
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

/// Every row that differs between the live tables and the rebuild tables.
pub async fn compare(db: &ReadDb, projection: &dyn Projection) -> Result<Vec<Difference>, ProjectionError> {
    let mut differences = Vec::new();
    for table in projection.tables() {
        let (live, rebuilt) = (Target::Live.table(table), Target::Rebuild.table(table));
        let only_live = keys(db, &live, &rebuilt).await?;
        let only_rebuilt = keys(db, &rebuilt, &live).await?;
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
/// rebuild tables.
pub async fn swap(db: &ReadDb, projection: &dyn Projection) -> Result<i64, ProjectionError> {
    let rebuilt = read_checkpoint(db, projection, Target::Rebuild).await?;
    let mut tx = db.begin_write().await?;
    for table in projection.tables() {
        let (live, rebuild) = (Target::Live.table(table), Target::Rebuild.table(table));
        sqlx::query(&format!("DELETE FROM {live}")).execute(&mut *tx).await?;
        sqlx::query(&format!("INSERT INTO {live} SELECT * FROM {rebuild}")).execute(&mut *tx).await?;
        sqlx::query(&format!("DROP TABLE {rebuild}")).execute(&mut *tx).await?;
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
