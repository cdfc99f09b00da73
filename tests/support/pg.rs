//! Throw-away PostgreSQL databases, one per test.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};
use std::str::FromStr;
use uuid::Uuid;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct PgTestDb {
    pub url: String,
    name: String,
    admin: PgConnectOptions,
}

fn admin_url() -> String {
    std::env::var("CACHET_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl PgTestDb {
    /// A new empty database, or `None` (with a message) when PostgreSQL is unreachable outside CI.
    pub async fn create() -> Option<Self> {
        let admin = PgConnectOptions::from_str(&admin_url()).expect("CACHET_TEST_DATABASE_URL is not a valid URL");
        let mut conn = match admin.connect().await {
            Ok(conn) => conn,
            Err(e) if !in_ci() => {
                eprintln!("PostgreSQL unreachable at {} ({e}): PostgreSQL test skipped", admin_url());
                return None;
            }
            Err(e) => panic!("CI=true and PostgreSQL is unreachable at {}: {e}", admin_url()),
        };
        let name = format!("cachet_test_{}", Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
        conn.close().await.ok();
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        Some(Self { url, name, admin })
    }

    /// Drops the database (tests call it at the end; a failed test leaves its database for
    /// inspection).
    pub async fn drop_db(self) {
        if let Ok(mut conn) = self.admin.connect().await {
            let _ = conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str()).await;
        }
    }
}
