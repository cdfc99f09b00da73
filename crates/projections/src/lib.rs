//! Read models folded from the global order of events, the runner that keeps them up to date,
//! and the queries that read them.
//!
//! Architecture invariant: a read model holds no rule. It folds the facts that events carry
//! (verdicts, missing pieces, rejection reasons) with the domain's own `evolve`, so rebuilding
//! it from position 0 always gives the same rows.
//!
//! Architecture invariant: read-model tables belong to their projection, not to the migrations.
//! Each projection creates its tables from its own portable DDL and records a version in
//! `checkpoints`; a projection whose version changed is rebuilt from position 0.

pub mod db;
pub mod dossiers;
pub mod fold;
pub mod notifications;
pub mod queries;
pub mod replay;
mod rows;
pub mod runner;
pub mod status;

use std::sync::Arc;

use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] cachet_store::StoreError),
    #[error("read-model database error")]
    Database(#[source] Arc<sqlx::Error>),
    #[error("corrupt read-model row: {0}")]
    Corrupt(String),
    #[error("events out of order: expected position {expected}, got {found}")]
    OutOfOrder { expected: i64, found: i64 },
}

impl From<sqlx::Error> for ProjectionError {
    fn from(e: sqlx::Error) -> Self {
        ProjectionError::Database(Arc::new(e))
    }
}
