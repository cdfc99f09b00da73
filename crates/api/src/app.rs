//! The application as a library value: built from settings, it opens the store, starts the
//! projections and exposes its router; `cachet serve` and the tests start it the same way.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cachet_projections::db::ReadDb;
use cachet_projections::dossiers::DossiersProjection;
use cachet_projections::runner::{self, Projection, RunnerHandle};
use cachet_store::postgres::PgEventStore;
use cachet_store::sqlite::SqliteEventStore;
use cachet_store::EventStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::files::FileStore;
use crate::mail::{MailSettings, Mailer};
use crate::metrics::Metrics;

/// Which database holds the events and the read models.
#[derive(Clone, Debug)]
pub enum Database {
    /// The embedded default: one file.
    Sqlite(PathBuf),
    /// `postgres://…`: production, several server processes.
    Postgres(String),
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database: Database,
    /// Where deposited files are kept.
    pub files_dir: PathBuf,
    /// Another file storage: `file:///path` or `s3://bucket/prefix` (credentials from the `AWS_*`
    /// variables); `None` for `files_dir`.
    pub files_url: Option<String>,
    /// Accept the `X-Cachet-Actor` identity header (development and demo only).
    pub dev_identity: bool,
    pub max_upload_bytes: u64,
    /// How long a command waits for the read models to show it.
    pub read_your_writes_timeout: Duration,
    /// `/readyz` fails when a projection is further behind than this.
    pub max_projection_lag: i64,
    /// The address candidates reach the service at, for links in e-mails.
    pub public_url: String,
    /// Mark session cookies `Secure` (on when `public_url` is `https://`).
    pub secure_cookies: bool,
    /// Where mails go: an SMTP relay, or by default the `outbox` folder beside the files.
    pub mail: MailSettings,
    /// The sender of every mail.
    pub mail_from: String,
    /// How often the mail sender looks for due mails when it found none.
    pub outbox_poll: Duration,
    /// The first retry's delay of a mail not sent; each next one doubles.
    pub mail_retry: Duration,
    /// Attempts before a mail is `failed` and waits for the office to re-send it.
    pub mail_max_attempts: i64,
    /// How long a client has to send a request's headers before its connection is closed.
    pub header_read_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for login throttling per address).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Run the mail sender. Off for one-shot commands (`cachet session …`): the server sends;
    /// a process that exits at once must not claim mails and leave them half sent.
    pub send_mail: bool,
}

impl Settings {
    pub fn new(database: Database, files_dir: PathBuf) -> Self {
        let outbox = files_dir.with_file_name("outbox");
        Self {
            database,
            files_dir,
            files_url: None,
            dev_identity: false,
            max_upload_bytes: 10 * 1024 * 1024,
            read_your_writes_timeout: crate::service::READ_YOUR_WRITES,
            max_projection_lag: 1_000,
            public_url: "http://127.0.0.1:8080".to_owned(),
            secure_cookies: false,
            mail: MailSettings::Outbox(outbox),
            mail_from: "Cachet – service concours <concours@cachet.invalid>".to_owned(),
            outbox_poll: crate::outbox::POLL,
            mail_retry: crate::outbox::RETRY,
            mail_max_attempts: crate::outbox::MAX_ATTEMPTS,
            header_read_timeout: Duration::from_secs(10),
            send_mail: true,
            trusted_proxies: Vec::new(),
        }
    }
}

/// What every handler gets: one shared [`Services`], cloned with a single reference count.
/// axum clones the state for each extractor of each request; cloning every field's own
/// reference counts instead showed up in profiles of the HTTP commands (about 3 % of the CPU).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The service's parts, shared by every request.
pub struct Services {
    /// The event store (the system of record).
    pub store: Arc<dyn EventStore>,
    /// The read models.
    pub db: ReadDb,
    /// The projections' progress, for read-your-writes and health.
    pub runner: RunnerHandle,
    /// Deposited files.
    pub files: FileStore,
    pub metrics: Metrics,
    /// Sends mails (SMTP or the local outbox).
    pub mailer: Mailer,
    pub settings: Arc<Settings>,
    /// The sessions' states this process decides dossier commands with.
    pub sessions: crate::service::Sessions,
}

pub struct App {
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to open the event store")]
    Store(#[from] cachet_store::StoreError),
    #[error("failed to start the read models")]
    Projections(#[from] cachet_projections::ProjectionError),
    #[error("failed to register the metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("failed to open the file storage: {0}")]
    Files(String),
    #[error("failed to set up the mail sender")]
    Mail(#[from] crate::mail::MailError),
    #[error("failed to index the candidates' names: {0}")]
    Accounts(String),
}

/// Every read model the service keeps.
pub fn projections() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(DossiersProjection::default())]
}

/// Every ten minutes, deletes expired web sessions, reset links and login counters.
fn spawn_sweeper(db: ReadDb, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match crate::accounts::sweep(&db, chrono::Utc::now()).await {
                Ok(swept) if swept != crate::accounts::Swept::default() => {
                    tracing::info!(?swept, "swept expired sessions, reset links and login counters")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(?error, "could not sweep expired sessions"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

impl App {
    /// Opens (creating and migrating) the database and starts the projections.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let files =
            FileStore::open(settings.files_dir.clone(), settings.files_url.as_deref(), settings.max_upload_bytes)
                .map_err(|e| StartError::Files(e.to_string()))?;
        let mailer = Mailer::new(settings.mail.clone(), &settings.mail_from)?;
        let (store, db): (Arc<dyn EventStore>, ReadDb) = match &settings.database {
            Database::Sqlite(path) => {
                let store = SqliteEventStore::open(path).await?;
                (Arc::new(store), ReadDb::connect(&ReadDb::sqlite_url(path)).await?)
            }
            Database::Postgres(url) => (Arc::new(PgEventStore::connect(url).await?), ReadDb::connect(url).await?),
        };
        let indexed =
            crate::accounts::backfill_name_keys(&db).await.map_err(|e| StartError::Accounts(format!("{e:?}")))?;
        if indexed > 0 {
            tracing::info!(accounts = indexed, "indexed the names of existing candidate accounts for search");
        }
        let (stop, stopped) = watch::channel(false);
        let (runner, tasks) = runner::spawn(store.clone(), db.clone(), projections(), stopped).await?;
        let state = AppState(Arc::new(Services {
            store,
            db,
            runner,
            files,
            metrics: Metrics::new()?,
            mailer,
            settings: Arc::new(settings),
            sessions: Default::default(),
        }));
        let mut tasks = tasks;
        if state.settings.send_mail {
            tasks.push(crate::outbox::spawn(state.clone(), stop.subscribe()));
        }
        tasks.push(spawn_sweeper(state.db.clone(), stop.subscribe()));
        Ok(Self { state, stop, tasks })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn router(&self) -> Router {
        crate::routes::router(self.state.clone())
    }

    /// Serves until `shutdown` completes, then drains requests in flight and stops the
    /// projections. Appends already submitted finish before their requests answer.
    ///
    /// HTTP/1.1 connections are served by hyper directly (as `axum::serve` does) so that a client
    /// gets `settings.header_read_timeout` to send a request's headers: a client that trickles
    /// them (slowloris) loses its connection instead of holding it. Each request then has the
    /// router's own time limit (408).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use tower::ServiceExt;

        let router = self.router();
        let header_timeout = self.state.settings.header_read_timeout;
        // Connections hold a receiver of `draining`; `closed()` resolves once all are gone.
        let (draining, drained) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, address) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(%error, "could not accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let router = router.clone();
            let mut drain = drained.clone();
            tokio::spawn(async move {
                // The client address feeds login throttling, as `ConnectInfo`.
                let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(axum::extract::ConnectInfo(address));
                    router.clone().oneshot(request.map(axum::body::Body::new))
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
                let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = drain.changed() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            });
        }
        drop(listener);
        let _ = draining.send(true);
        drop(drained);
        draining.closed().await;
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        Ok(())
    }
}
