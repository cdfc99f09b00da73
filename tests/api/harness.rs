//! The test harness: the real server on a free port, over a fresh database of either backend,
//! and a typed client whose methods read as the domain (`app.record_postal_receipt(..)`).
//!
//! Time: the service reads the real clock, so sessions are opened with deadlines relative to
//! today (Paris). A dossier pre-registered before a deadline that has now passed cannot be
//! created through the API any more; [`TestApp::pre_registered_on`] writes the event the API
//! appended at the time ("given these past events") and waits for the read models to show it.

use std::time::Duration;

use cachet_api::{App, AppState, Database, Settings};
use cachet_domain::demo::source_session;
use cachet_domain::dossier::DossierEvent;
use cachet_domain::ids::{CandidateId, DossierId, SessionId, UserCode};
use cachet_domain::session::SessionConfig;
use cachet_domain::time::{paris_date, paris_to_utc, PARIS};
use cachet_domain::Actor;
use cachet_store::typed::{append_request, Metadata};
use cachet_store::ExpectedVersion;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::support::pg::PgTestDb;

/// The upload limit of the test server: small, so the oversized upload is cheap to send.
pub const MAX_UPLOAD_BYTES: u64 = 64 * 1024;

/// A small valid PDF.
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Who sends a request, as the interim `X-Cachet-Actor` header says.
#[derive(Clone, Copy, Debug)]
pub enum Caller {
    Candidate(Uuid),
    Staff,
    Admin,
    Auditor,
    /// No identity header at all.
    Anonymous,
}

impl Caller {
    fn header(self) -> Option<String> {
        match self {
            Caller::Candidate(id) => Some(format!("candidate:{id}")),
            Caller::Staff => Some("staff:agent.concours".to_owned()),
            Caller::Admin => Some("admin:responsable".to_owned()),
            Caller::Auditor => Some("auditor:controle".to_owned()),
            Caller::Anonymous => None,
        }
    }
}

/// A new candidate.
pub fn candidate() -> Caller {
    Caller::Candidate(Uuid::new_v4())
}

/// The civil date in Paris, today.
pub fn today() -> NaiveDate {
    paris_date(Utc::now())
}

pub fn days_from_today(days: i64) -> NaiveDate {
    let today = today();
    if days >= 0 {
        today.checked_add_days(Days::new(days.unsigned_abs())).expect("date in range")
    } else {
        today.checked_sub_days(Days::new(days.unsigned_abs())).expect("date in range")
    }
}

/// The most recent weekday strictly before today (Paris), so any time of it is in the past.
pub fn last_weekday() -> NaiveDate {
    let mut day = today().pred_opt().expect("date in range");
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.pred_opt().expect("date in range");
    }
    day
}

/// An instant given as a Paris wall-clock time.
pub fn paris(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    paris_to_utc(date.and_time(NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time")))
}

/// The source document's session, with another deposit deadline.
pub fn session_until(deadline: NaiveDate) -> SessionConfig {
    SessionConfig { deposit_deadline: deadline, ..source_session() }
}

/// A problem document (RFC 9457).
#[derive(Debug, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// What a command answered.
#[derive(Debug, Deserialize)]
pub struct Outcome {
    pub id: Uuid,
    pub version: i64,
    pub position: Option<i64>,
    pub replayed: bool,
}

#[derive(Debug, Deserialize)]
pub struct PreRegistration {
    pub dossier_id: Uuid,
    pub user_code: String,
    pub version: i64,
    pub replayed: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Deposit {
    pub channel: String,
    pub on_time: bool,
    pub explanation: String,
}

/// What `GET /api/dossiers/{id}` shows.
#[derive(Debug, Clone, Deserialize)]
pub struct DossierView {
    pub dossier_id: Uuid,
    pub session_id: Uuid,
    pub user_code: String,
    pub status: String,
    pub status_label: String,
    pub message: String,
    pub missing: Vec<String>,
    pub deposit: Option<Deposit>,
    pub rejection: Option<String>,
    pub version: i64,
    pub registered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PieceView {
    pub code: String,
    pub red_dot: bool,
    pub state: String,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

impl DossierView {
    /// « Votre préinscription a été enregistrée le … à …, le Centre de Gestion est en attente de
    /// votre dossier. », at the Paris time of the pre-registration.
    pub fn awaiting_message(&self) -> String {
        let at = self.registered_at.with_timezone(&PARIS);
        format!(
            "Votre préinscription a été enregistrée le {} à {}, le Centre de Gestion est en attente de votre dossier.",
            at.format("%d/%m/%Y"),
            at.format("%Hh%M")
        )
    }
}

/// An HTTP answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer {} is not the expected JSON ({e}): {}", self.status, self.text()))
    }

    /// Asserts a 2xx answer and decodes it.
    pub fn ok<T: DeserializeOwned>(self) -> T {
        assert!(self.status.is_success(), "expected success, got {}: {}", self.status, self.text());
        self.json()
    }

    /// Asserts a command succeeded and that its `ETag` is its version.
    pub fn done(self) -> Outcome {
        let etag = self.header("etag");
        let outcome: Outcome = self.ok();
        assert_eq!(etag, Some(format!("\"{}\"", outcome.version)), "ETag of a command");
        outcome
    }

    /// Asserts a problem document with this status (a 4xx, never a 500) and returns it.
    pub fn problem(self, status: u16) -> Problem {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text());
        assert!(self.status.is_client_error(), "a problem of the client's making is a 4xx");
        assert_eq!(self.header("content-type").as_deref(), Some("application/problem+json"));
        let problem: Problem = self.json();
        assert_eq!(problem.status, status);
        assert!(problem.kind.starts_with("/problemes/"), "{problem:?}");
        assert!(!problem.title.is_empty());
        problem
    }
}

/// The backend a test runs on.
pub enum Backend {
    Sqlite,
    Postgres(Box<PgTestDb>),
}

impl Backend {
    pub async fn sqlite() -> Option<Self> {
        Some(Backend::Sqlite)
    }

    /// A fresh PostgreSQL database, or `None` (skipped, with a message) when unreachable
    /// outside CI.
    pub async fn postgres() -> Option<Self> {
        PgTestDb::create().await.map(|db| Backend::Postgres(Box::new(db)))
    }
}

/// A running server and its client.
pub struct TestApp {
    pub base: String,
    client: reqwest::Client,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    pg: Option<PgTestDb>,
    /// Holds the SQLite file and the deposited files.
    pub dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let (database, pg) = match backend {
            Backend::Sqlite => (Database::Sqlite(dir.path().join("cachet.sqlite")), None),
            Backend::Postgres(db) => (Database::Postgres(db.url.clone()), Some(*db)),
        };
        Self::serve(database, pg, dir).await
    }

    /// A second server on this one's PostgreSQL database, as another process would be: its own
    /// store handle, appender and projection runner. The first server drops the database.
    pub async fn second_server(&self) -> Self {
        let url = self.pg.as_ref().expect("a second server needs PostgreSQL").url.clone();
        Self::serve(Database::Postgres(url), None, tempfile::tempdir().expect("temporary folder")).await
    }

    async fn serve(database: Database, pg: Option<PgTestDb>, dir: tempfile::TempDir) -> Self {
        let settings = Settings {
            dev_identity: true,
            max_upload_bytes: MAX_UPLOAD_BYTES,
            ..Settings::new(database, dir.path().join("files"))
        };
        let app = App::build(settings).await.expect("the application starts");
        let state = app.state().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self { base, client: reqwest::Client::new(), state, stop: Some(stop), server: Some(server), pg, dir }
    }

    /// Checks nothing is left behind (the read models have applied the last event), stops the
    /// server, and drops the PostgreSQL database.
    pub async fn finish(mut self) {
        let head = self.state.store.head().await.expect("store head").position;
        assert!(
            self.state.runner.position() >= head,
            "the read models are behind the store at the end of the test ({} < {head})",
            self.state.runner.position()
        );
        let statuses = self.state.runner.statuses();
        assert!(statuses.values().all(|s| s.error.is_none()), "a projection failed: {statuses:?}");
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stops cleanly");
        }
        let pg = self.pg.take();
        drop(self);
        if let Some(pg) = pg {
            pg.drop_db().await;
        }
    }

    /// Waits until this server's read models have applied the store's head. A second server's
    /// runner learns that the other one applied an event when it next tries to apply it.
    pub async fn wait_for_read_models(&self) {
        let head = self.state.store.head().await.expect("store head").position;
        assert!(self.state.runner.wait_for(head, Duration::from_secs(10)).await, "the read models catch up");
    }

    /// The read-model database, for a test that holds one of its locks.
    pub fn read_db(&self) -> &cachet_projections::db::ReadDb {
        &self.state.db
    }

    /// The event store the server appends to.
    pub fn store(&self) -> &dyn cachet_store::EventStore {
        &*self.state.store
    }

    /// Whether the server runs on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The events of one stream in the store, for counting what a command appended.
    pub async fn stream_length(&self, stream: Uuid) -> usize {
        self.state.store.read_stream(stream).await.expect("read stream").len()
    }

    // --- Raw requests ------------------------------------------------------------------------

    pub fn request(&self, method: Method, path: &str, caller: Caller) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match caller.header() {
            Some(value) => builder.header("x-cachet-actor", value),
            None => builder,
        }
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the answer is read").to_vec();
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "a 500: {}", String::from_utf8_lossy(&body));
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, caller: Caller) -> Reply {
        self.send(self.request(Method::GET, path, caller)).await
    }

    pub async fn post_json(&self, path: &str, caller: Caller, body: Value) -> Reply {
        self.send(self.request(Method::POST, path, caller).json(&body)).await
    }

    pub async fn post_empty(&self, path: &str, caller: Caller) -> Reply {
        self.send(self.request(Method::POST, path, caller)).await
    }

    // --- Sessions ----------------------------------------------------------------------------

    /// Opens a session as an admin; answers its id.
    pub async fn open_session(&self, config: &SessionConfig) -> Uuid {
        let reply = self.post_json("/api/sessions", Caller::Admin, serde_json::to_value(config).expect("config")).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let location = reply.header("location").expect("Location of the session");
        let outcome: Outcome = reply.ok();
        assert_eq!(location, format!("/api/sessions/{}", outcome.id));
        outcome.id
    }

    /// Opens the source session with this deadline.
    pub async fn session_until(&self, deadline: NaiveDate) -> Uuid {
        self.open_session(&session_until(deadline)).await
    }

    pub async fn extend_deadline(&self, session: Uuid, new_deadline: NaiveDate, reason: &str) -> Reply {
        let body = json!({ "new_deadline": new_deadline, "reason": reason });
        self.post_json(&format!("/api/sessions/{session}/deadline-extensions"), Caller::Admin, body).await
    }

    pub async fn statistics(&self, session: Uuid) -> Value {
        self.get(&format!("/api/sessions/{session}/statistics"), Caller::Staff).await.ok()
    }

    /// The ids in a work queue, and its total.
    pub async fn queue(&self, session: Uuid, queue: &str) -> (i64, Vec<Uuid>) {
        let page: Value = self.get(&format!("/api/sessions/{session}/queues/{queue}"), Caller::Staff).await.ok();
        let ids = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["dossier_id"].as_str().and_then(|s| Uuid::parse_str(s).ok()).expect("dossier id"))
            .collect();
        (page["total"].as_i64().expect("total"), ids)
    }

    // --- Dossiers: the candidate -------------------------------------------------------------

    pub async fn pre_register_reply(&self, session: Uuid, candidate: Caller) -> Reply {
        self.post_empty(&format!("/api/sessions/{session}/dossiers"), candidate).await
    }

    /// Pre-registers a candidate; answers the dossier id.
    pub async fn pre_register(&self, session: Uuid, candidate: Caller) -> Uuid {
        let reply = self.pre_register_reply(session, candidate).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let registration: PreRegistration = reply.ok();
        assert_eq!(registration.user_code.len(), 8);
        registration.dossier_id
    }

    /// Given a dossier pre-registered at `at`, before a deadline that has passed since: appends
    /// the event the API appended then, and waits until the read models show it.
    pub async fn pre_registered_on(&self, session: Uuid, candidate: Caller, at: DateTime<Utc>) -> Uuid {
        let Caller::Candidate(candidate_id) = candidate else { panic!("only a candidate pre-registers") };
        let candidate_id = CandidateId::from_uuid(candidate_id);
        let dossier_id = DossierId::from_uuid(Uuid::new_v4());
        let mut code = [0_u8; UserCode::LEN];
        code.copy_from_slice(&Uuid::new_v4().as_bytes()[..UserCode::LEN]);
        let event = DossierEvent::PreRegistered {
            dossier_id,
            session_id: SessionId::from_uuid(session),
            candidate_id,
            user_code: UserCode::from_random_bytes(code),
            registered_at: at,
        };
        let command_id = Uuid::new_v4();
        let metadata = Metadata {
            actor: Actor::Candidate { candidate_id },
            command_id,
            correlation_id: command_id,
            causation_id: None,
        };
        let request = append_request(dossier_id.as_uuid(), ExpectedVersion::Exact(0), &metadata, at, &[event]);
        let outcome = self.state.store.append(request).await.expect("append the past pre-registration");
        let position = outcome.last_position.expect("a position");
        assert!(
            self.state.runner.wait_for(position, Duration::from_secs(10)).await,
            "the read models show the past pre-registration"
        );
        dossier_id.as_uuid()
    }

    pub async fn upload_named(&self, candidate: Caller, dossier: Uuid, piece: &str, name: &str, bytes: &[u8]) -> Reply {
        let builder = self
            .request(Method::PUT, &format!("/api/dossiers/{dossier}/pieces/{piece}"), candidate)
            .header("x-filename", name)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec());
        self.send(builder).await
    }

    pub async fn upload(&self, candidate: Caller, dossier: Uuid, piece: &str, bytes: &[u8]) -> Reply {
        self.upload_named(candidate, dossier, piece, &format!("{piece}.pdf"), bytes).await
    }

    pub async fn close(&self, candidate: Caller, dossier: Uuid) -> Reply {
        self.post_empty(&format!("/api/dossiers/{dossier}/closure"), candidate).await
    }

    /// Uploads the registration form and closes the registration online.
    pub async fn deposit_online(&self, candidate: Caller, dossier: Uuid) {
        self.upload(candidate, dossier, "dossier-preinscription", PDF).await.done();
        self.close(candidate, dossier).await.done();
    }

    pub async fn upload_missing(&self, candidate: Caller, dossier: Uuid, piece: &str, bytes: &[u8]) -> Reply {
        let builder = self
            .request(Method::PUT, &format!("/api/dossiers/{dossier}/missing-pieces/{piece}"), candidate)
            .header("x-filename", format!("{piece}.pdf"))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec());
        self.send(builder).await
    }

    pub async fn withdraw(&self, caller: Caller, dossier: Uuid) -> Reply {
        self.post_json(&format!("/api/dossiers/{dossier}/withdrawal"), caller, json!({ "reason": "mutation" })).await
    }

    /// The dossier as the exam office reads it.
    pub async fn status(&self, dossier: Uuid) -> DossierView {
        let reply = self.get(&format!("/api/dossiers/{dossier}"), Caller::Staff).await;
        let etag = reply.header("etag");
        let view: DossierView = reply.ok();
        assert_eq!(etag, Some(format!("\"{}\"", view.version)), "ETag of a dossier");
        view
    }

    pub async fn pieces(&self, dossier: Uuid) -> Vec<PieceView> {
        self.get(&format!("/api/dossiers/{dossier}/pieces"), Caller::Staff).await.ok()
    }

    // --- Dossiers: the exam office -----------------------------------------------------------

    pub async fn record_postal_receipt(&self, dossier: Uuid, postmark: NaiveDate, arrival: NaiveDate) -> Reply {
        let body = json!({ "postmark_date": postmark, "arrival_date": arrival });
        self.post_json(&format!("/api/dossiers/{dossier}/postal-receipts"), Caller::Staff, body).await
    }

    pub async fn record_postal_incident(
        &self,
        dossier: Uuid,
        postmark: NaiveDate,
        arrival: NaiveDate,
        incident: &str,
    ) -> Reply {
        let body = json!({ "postmark_date": postmark, "arrival_date": arrival, "incident": incident });
        self.post_json(&format!("/api/dossiers/{dossier}/postal-receipts"), Caller::Staff, body).await
    }

    /// Sends the instant with its Paris offset, as the counter's clock shows it.
    pub async fn record_counter_receipt(&self, dossier: Uuid, at: DateTime<Utc>) -> Reply {
        let body = json!({ "received_at": at.with_timezone(&PARIS).to_rfc3339() });
        self.post_json(&format!("/api/dossiers/{dossier}/counter-receipts"), Caller::Staff, body).await
    }

    pub async fn record_refused_intake(&self, dossier: Uuid, form: &str, received_on: NaiveDate) -> Reply {
        let body = json!({ "form": form, "received_on": received_on });
        self.post_json(&format!("/api/dossiers/{dossier}/refused-intakes"), Caller::Staff, body).await
    }

    pub async fn transfer_as(&self, caller: Caller, dossier: Uuid) -> Reply {
        self.post_empty(&format!("/api/dossiers/{dossier}/transfer"), caller).await
    }

    pub async fn transfer(&self, dossier: Uuid) -> Reply {
        self.transfer_as(Caller::Staff, dossier).await
    }

    pub async fn accept_piece(&self, dossier: Uuid, piece: &str) -> Reply {
        let body = json!({ "piece": piece, "outcome": "accepted" });
        self.post_json(&format!("/api/dossiers/{dossier}/piece-reviews"), Caller::Staff, body).await
    }

    pub async fn mark_piece_missing(&self, dossier: Uuid, piece: &str) -> Reply {
        let body = json!({ "piece": piece, "outcome": "missing" });
        self.post_json(&format!("/api/dossiers/{dossier}/piece-reviews"), Caller::Staff, body).await
    }

    pub async fn refuse_piece(&self, dossier: Uuid, piece: &str, reason: &str) -> Reply {
        let body = json!({ "piece": piece, "outcome": "refused", "reason": reason });
        self.post_json(&format!("/api/dossiers/{dossier}/piece-reviews"), Caller::Staff, body).await
    }

    pub async fn conclude_review(&self, dossier: Uuid) -> Reply {
        self.post_empty(&format!("/api/dossiers/{dossier}/review-conclusion"), Caller::Staff).await
    }

    pub async fn receive_missing_piece_by_post(
        &self,
        dossier: Uuid,
        piece: &str,
        postmark: NaiveDate,
        arrival: NaiveDate,
    ) -> Reply {
        let body = json!({ "channel": "post", "piece": piece, "postmark_date": postmark, "arrival_date": arrival });
        self.post_json(&format!("/api/dossiers/{dossier}/missing-piece-receipts"), Caller::Staff, body).await
    }

    pub async fn reject(&self, dossier: Uuid, detail: &str) -> Reply {
        self.post_json(&format!("/api/dossiers/{dossier}/rejection"), Caller::Staff, json!({ "detail": detail })).await
    }

    pub async fn lapse(&self, dossier: Uuid) -> Reply {
        self.post_empty(&format!("/api/dossiers/{dossier}/lapse"), Caller::Staff).await
    }
}

/// Instantiates each scenario of a module on SQLite and on PostgreSQL: `module::sqlite::name`
/// and `module::postgres::name`.
#[macro_export]
macro_rules! api_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = $crate::harness::Backend::sqlite().await else { return };
                    let app = $crate::harness::TestApp::start(backend).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = $crate::harness::Backend::postgres().await else { return };
                    let app = $crate::harness::TestApp::start(backend).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
    };
}
