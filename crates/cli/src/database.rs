//! Which database a command works on: PostgreSQL when a URL is given, otherwise the embedded
//! SQLite file in the data folder.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use cachet_api::Database;
use cachet_projections::db::ReadDb;
use cachet_store::postgres::PgEventStore;
use cachet_store::sqlite::SqliteEventStore;
use cachet_store::EventStore;

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseOpts {
    /// Dossier des données locales (base SQLite embarquée, fichiers déposés).
    #[arg(long, env = "CACHET_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Base PostgreSQL (postgres://…) ; sans elle, la base SQLite du dossier des données.
    #[arg(long, env = "CACHET_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DatabaseOpts {
    /// Opens the store, creating and migrating the database if needed.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let store = PgEventStore::connect(url).await.context("failed to open the PostgreSQL database")?;
                Ok(Arc::new(store))
            }
            Some(url) => {
                let store = SqliteEventStore::open_url(url).await.context("failed to open the SQLite database")?;
                Ok(Arc::new(store))
            }
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .with_context(|| format!("failed to create the data folder {}", self.data_dir.display()))?;
                let path = self.data_dir.join("cachet.sqlite");
                let store = SqliteEventStore::open(&path)
                    .await
                    .with_context(|| format!("failed to open the SQLite database {}", path.display()))?;
                Ok(Arc::new(store))
            }
        }
    }

    /// The database as the service's settings name it.
    pub fn database(&self) -> anyhow::Result<Database> {
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Database::Postgres(url.clone()))
            }
            Some(url) => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                Ok(Database::Sqlite(PathBuf::from(path)))
            }
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .with_context(|| format!("failed to create the data folder {}", self.data_dir.display()))?;
                Ok(Database::Sqlite(self.data_dir.join("cachet.sqlite")))
            }
        }
    }

    /// The read-model database (the same database, through the portable driver).
    pub async fn open_read_db(&self) -> anyhow::Result<ReadDb> {
        let url = match self.database()? {
            Database::Postgres(url) => url,
            Database::Sqlite(path) => ReadDb::sqlite_url(&path),
        };
        ReadDb::connect(&url).await.context("failed to open the read models")
    }

    /// Where the data lives, for messages.
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(url) if url.contains('@') => {
                // Do not print credentials.
                let host = url.rsplit('@').next().unwrap_or_default();
                format!("PostgreSQL ({host})")
            }
            Some(url) => url.clone(),
            None => self.data_dir.join("cachet.sqlite").display().to_string(),
        }
    }
}
