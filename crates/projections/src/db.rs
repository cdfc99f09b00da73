//! The read-model database: the same database as the event store, reached through sqlx's `Any`
//! driver so that one portable SQL text serves SQLite and PostgreSQL (both accept `$1`
//! placeholders, `TEXT`/`BIGINT` columns and `ON CONFLICT … DO UPDATE`).

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};
use std::str::FromStr;

use cachet_store::Backend;

use crate::ProjectionError;

#[derive(Clone, Debug)]
pub struct ReadDb {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl ReadDb {
    /// Connects to a `postgres://` URL or a `sqlite://` URL.
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new().max_connections(8).connect_with(options).await?;
        Ok(Self { pool, backend })
    }

    /// The URL of a SQLite database file, for [`ReadDb::connect`].
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}", path.display())
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads then writes fails at once when another writer committed.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, ProjectionError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// `FOR UPDATE` where the backend has row locks; SQLite's write lock already excludes others.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}
