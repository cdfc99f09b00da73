//! Store errors. A conflict and a reused command id are answers the caller acts on; everything
//! else is infrastructure, logged once where it is handled.

use std::sync::Arc;

use thiserror::Error;
use uuid::Uuid;

use crate::ExpectedVersion;

#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("version conflict on stream {stream_id}: expected {expected}, found {actual}")]
    Conflict { stream_id: Uuid, expected: ExpectedVersion, actual: i64 },

    #[error("command id {command_id} was already applied to another stream ({stream_id})")]
    CommandIdReused { command_id: Uuid, stream_id: Uuid },

    #[error("the event store is shut down")]
    Closed,

    #[error("database error")]
    Database(#[source] Arc<sqlx::Error>),

    #[error("migration failed")]
    Migrate(#[source] Arc<sqlx::migrate::MigrateError>),

    #[error("corrupt data in the store: {detail}")]
    Corrupt { detail: String },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(Arc::new(e))
    }
}
