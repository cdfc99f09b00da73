//! The read-model database: the same database as the event store, reached through sqlx's `Any`
//! driver so that one portable SQL text serves SQLite and PostgreSQL (both accept `$1`
//! placeholders, `TEXT`/`BIGINT` columns and `ON CONFLICT … DO UPDATE`).

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};

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
    ///
    /// sqlx's `Any` driver connects from a URL only: an `AnyConnectOptions` is a URL, and sqlx
    /// 0.8 has no conversion from `SqliteConnectOptions` (whose own `to_url_lossy` leaves `%`
    /// unescaped). So the file name of the options is percent-encoded byte by byte, every byte but
    /// the unreserved ones: sqlx decodes the path whole, and `?`, `#`, `%` or a space stay part of
    /// the file name instead of starting a query or a fragment.
    pub fn sqlite_url(path: &Path) -> String {
        let options = SqliteConnectOptions::new().filename(path);
        let mut url = String::from("sqlite:");
        for &byte in options.get_filename().as_os_str().as_encoded_bytes() {
            if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
                url.push(char::from(byte));
            } else {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
        url
    }

    /// Connects to a SQLite database file, whatever characters its path holds.
    pub async fn connect_sqlite(path: &Path) -> Result<Self, ProjectionError> {
        Self::connect(&Self::sqlite_url(path)).await
    }

    /// A connection of its own, outside the pool, with the pool's options.
    pub async fn own_connection(&self) -> Result<AnyConnection, ProjectionError> {
        Ok(AnyConnection::connect_with(&self.pool.connect_options()).await?)
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

#[cfg(test)]
mod tests {
    use super::ReadDb;

    #[tokio::test]
    async fn a_sqlite_path_with_url_characters_names_that_very_file() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let folder = dir.path().join("a?b%c#d");
        std::fs::create_dir(&folder).expect("a folder named like a URL");
        let file = folder.join("cachet %41 é.sqlite");
        std::fs::File::create(&file).expect("an empty database file");

        let db = ReadDb::connect_sqlite(&file).await.expect("the read models open");
        sqlx::query("CREATE TABLE probe (x TEXT)").execute(&db.pool).await.expect("a table");
        db.pool.close().await;

        assert!(std::fs::metadata(&file).expect("the file").len() > 0, "the table is in that file");
        let names = |dir: &std::path::Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .expect("list")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(dir.path()), ["a?b%c#d"], "no file beside the folder");
        assert!(names(&folder).iter().all(|n| n.starts_with("cachet %41 é.sqlite")), "{:?}", names(&folder));
    }
}
