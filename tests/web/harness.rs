//! The server under test, with an SMTP sink for its mails, and a cookie-keeping HTTP client that
//! reads forms the way a browser without JavaScript would.

use std::time::Duration;

use cachet_api::mail::MailSettings;
use cachet_api::{App, AppState, Database, Settings};
use cachet_domain::demo::source_session;
use cachet_domain::session::SessionConfig;
use chrono::{NaiveDate, Utc};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::smtp::SmtpSink;
use crate::support::pg::PgTestDb;

pub const PASSWORD: &str = "motdepasse-solide-2024";
pub const MAX_UPLOAD_BYTES: u64 = 256 * 1024;

pub enum Backend {
    Sqlite,
    Postgres(Box<PgTestDb>),
}

impl Backend {
    pub async fn sqlite() -> Option<Self> {
        Some(Backend::Sqlite)
    }

    pub async fn postgres() -> Option<Self> {
        PgTestDb::create().await.map(|db| Backend::Postgres(Box::new(db)))
    }
}

pub struct WebApp {
    pub base: String,
    pub state: AppState,
    pub smtp: SmtpSink,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    pg: Option<PgTestDb>,
    pub dir: tempfile::TempDir,
}

pub fn today() -> NaiveDate {
    cachet_domain::time::paris_date(Utc::now())
}

pub fn days_from_today(days: i64) -> NaiveDate {
    today() + chrono::Duration::days(days)
}

impl WebApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with settings changed by `tweak` (after the defaults of the tests are set).
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let (database, pg) = match backend {
            Backend::Sqlite => (Database::Sqlite(dir.path().join("cachet.sqlite")), None),
            Backend::Postgres(db) => (Database::Postgres(db.url.clone()), Some(*db)),
        };
        Self::launch(database, dir, pg, SmtpSink::start().await, tweak).await
    }

    async fn launch(
        database: Database,
        dir: tempfile::TempDir,
        pg: Option<PgTestDb>,
        smtp: SmtpSink,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound address"));
        let mut settings = Settings {
            dev_identity: true,
            max_upload_bytes: MAX_UPLOAD_BYTES,
            public_url: base.clone(),
            mail: MailSettings::Smtp {
                host: "127.0.0.1".to_owned(),
                port: smtp.port,
                username: None,
                password: None,
                tls: false,
            },
            outbox_poll: Duration::from_millis(50),
            mail_retry: Duration::from_millis(100),
            ..Settings::new(database, dir.path().join("files"))
        };
        tweak(&mut settings);
        let app = App::build(settings).await.expect("the application starts");
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self { base, state, smtp, stop: Some(stop), server: Some(server), pg, dir }
    }

    /// Stops the server as SIGTERM would (requests drained, tasks stopped) and starts another on
    /// the same database, files and SMTP sink: a restart.
    pub async fn restart(mut self, tweak: impl FnOnce(&mut Settings)) -> Self {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stops cleanly");
        }
        let database = self.state.settings.database.clone();
        let (dir, pg, smtp) = (self.dir, self.pg, self.smtp);
        Self::launch(database, dir, pg, smtp, tweak).await
    }

    /// A second server on the same database (another process, in production), sending its mails
    /// to the same SMTP sink. Its own folder holds its files.
    pub async fn second_server(&self, tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = self.smtp.port;
        Self::launch(self.state.settings.database.clone(), dir, None, SmtpSink::start().await, move |settings| {
            settings.mail =
                MailSettings::Smtp { host: "127.0.0.1".to_owned(), port, username: None, password: None, tls: false };
            tweak(settings);
        })
        .await
    }

    pub async fn finish(mut self) {
        let head = self.state.store.head().await.expect("store head").position;
        assert!(self.state.runner.wait_for(head, Duration::from_secs(10)).await, "the read models caught up");
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens a session through the admin API, and waits until its pages show it.
    pub async fn open_session(&self, config: &SessionConfig) -> Uuid {
        let reply = reqwest::Client::new()
            .post(self.url("/api/sessions"))
            .header("x-cachet-actor", "admin:admin")
            .json(config)
            .send()
            .await
            .expect("open a session");
        assert_eq!(reply.status(), 201, "the session opens");
        let body: Value = reply.json().await.expect("JSON");
        Uuid::parse_str(body["id"].as_str().expect("an id")).expect("a UUID")
    }

    /// Runs an office command on a dossier through the API (`POST /api/dossiers/{id}/{route}`),
    /// as a staff member, and checks it was accepted.
    pub async fn staff_command(&self, dossier: Uuid, route: &str, body: Value) {
        let reply = reqwest::Client::new()
            .post(self.url(&format!("/api/dossiers/{dossier}/{route}")))
            .header("x-cachet-actor", "staff:agent")
            .json(&body)
            .send()
            .await
            .expect("a command");
        let status = reply.status();
        assert!(status.is_success(), "{route}: {status} {}", reply.text().await.unwrap_or_default());
    }

    /// The source document's session, with a deadline some days from today.
    pub async fn session_until(&self, deadline: NaiveDate) -> Uuid {
        self.open_session(&SessionConfig { deposit_deadline: deadline, ..source_session() }).await
    }

    /// A client with its own cookies, like a second browser.
    pub fn client(&self) -> WebClient {
        WebClient {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .expect("HTTP client"),
        }
    }

    /// Pre-registers a candidate through the pages, returning the signed-in client, the dossier
    /// and the code utilisateur.
    pub async fn pre_registered_candidate(&self, session: Uuid, name: &str) -> (WebClient, Uuid, String) {
        let client = self.client();
        let form = client.get(&format!("/sessions/{session}/preinscription")).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let reply = client
            .post_form(
                &format!("/sessions/{session}/preinscription"),
                &form,
                &[
                    ("nom", name),
                    ("prenom", "Camille"),
                    ("date_naissance", "1985-03-14"),
                    ("adresse", "12 rue des Lilas, 61000 Alençon"),
                    ("courriel", &format!("{}@exemple.fr", name.to_lowercase())),
                    ("telephone", "02 33 80 48 00"),
                    ("q_grade", "Adjoint technique territorial"),
                    ("q_employeur", "Commune d'Alençon"),
                    ("mot_de_passe", PASSWORD),
                    ("confirmation", PASSWORD),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let dossier = reply.path.strip_prefix("/dossiers/").expect("landed on the dossier").to_owned();
        let code = reply.between("Votre code utilisateur est ", " : notez-le").expect("the code is shown");
        (client, Uuid::parse_str(&dossier).expect("a dossier id"), code)
    }
}

impl WebApp {
    /// An exam-office account with a password.
    pub async fn staff_account(&self, account: &str, role: cachet_domain::event::StaffRole) {
        let hash = cachet_api::accounts::hash_password(PASSWORD.to_owned()).await.expect("hash");
        let staff = cachet_api::accounts::StaffAccount {
            account: account.to_owned(),
            role,
            display_name: account.to_owned(),
            password_hash: hash,
        };
        cachet_api::accounts::upsert_staff(&self.state.db, &staff, Utc::now()).await.expect("staff account");
    }

    /// A dossier pre-registered ten days ago (before a deadline that may since have passed),
    /// with its candidate account; returns the dossier and its code utilisateur.
    pub async fn registered_ten_days_ago(&self, session: Uuid, last_name: &str) -> (Uuid, String) {
        use cachet_domain::dossier::DossierEvent;
        use cachet_domain::event::Actor;
        use cachet_domain::ids::{CandidateId, DossierId, SessionId};
        use cachet_store::typed::{append_request, Metadata};
        use chrono::TimeZone;
        let candidate_id = CandidateId::from_uuid(Uuid::new_v4());
        let dossier_id = DossierId::from_uuid(Uuid::new_v4());
        let user_code = cachet_api::service::user_code_for(dossier_id);
        let at = Utc.from_utc_datetime(&days_from_today(-10).and_hms_opt(9, 0, 0).expect("time"));
        let event = DossierEvent::PreRegistered {
            dossier_id,
            session_id: SessionId::from_uuid(session),
            candidate_id,
            user_code: user_code.clone(),
            registered_at: at,
        };
        let command_id = Uuid::new_v4();
        let metadata = Metadata {
            actor: Actor::Candidate { candidate_id },
            command_id,
            correlation_id: command_id,
            causation_id: None,
        };
        let request =
            append_request(dossier_id.as_uuid(), cachet_store::ExpectedVersion::Exact(0), &metadata, at, &[event]);
        let outcome = self.state.store.append(request).await.expect("append");
        let position = outcome.last_position.expect("a position");
        assert!(self.state.runner.wait_for(position, Duration::from_secs(10)).await);
        let account = cachet_api::accounts::CandidateAccount {
            user_code: user_code.to_string(),
            candidate_id: candidate_id.as_uuid(),
            dossier_id: dossier_id.as_uuid(),
            session_id: session,
            identity: cachet_api::accounts::Identity {
                last_name: last_name.to_owned(),
                first_name: "Dominique".to_owned(),
                birth_date: NaiveDate::from_ymd_opt(1980, 5, 6).expect("date"),
                address: "1 rue de la Poste, 61000 Alençon".to_owned(),
                email: format!("{}@exemple.fr", last_name.to_lowercase()),
                phone: "0233000000".to_owned(),
                answers: Default::default(),
            },
            password_hash: cachet_api::accounts::hash_password(PASSWORD.to_owned()).await.expect("hash"),
            created_at: at,
        };
        cachet_api::accounts::create_candidate(&self.state.db, &account).await.expect("account");
        (dossier_id.as_uuid(), user_code.to_string())
    }
}

/// What a page answered.
#[derive(Debug)]
pub struct PageReply {
    pub status: u16,
    /// The path after redirections.
    pub path: String,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl PageReply {
    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        self.between("name=\"csrf\" value=\"", "\"").expect("a CSRF token in the page")
    }

    /// The first text between two markers, looked for in the page's text (tags removed), then
    /// in its HTML (for attributes).
    pub fn between(&self, start: &str, end: &str) -> Option<String> {
        fn cut(text: &str, start: &str, end: &str) -> Option<String> {
            let from = text.find(start)? + start.len();
            let to = text[from..].find(end)? + from;
            Some(text[from..to].trim().to_owned())
        }
        cut(&plain(&self.body), start, end).or_else(|| cut(&self.body, start, end))
    }

    /// The page as text: tags removed, entities decoded, spaces collapsed.
    pub fn text(&self) -> String {
        plain(&self.body)
    }
}

/// Removes tags and decodes the entities maud writes.
pub fn plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = out
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A browser without JavaScript: it keeps its cookies and posts forms with their CSRF token.
pub struct WebClient {
    pub base: String,
    pub http: reqwest::Client,
}

impl WebClient {
    async fn reply(response: reqwest::Response) -> PageReply {
        let status = response.status().as_u16();
        let path = response.url().path().to_owned();
        let headers = response.headers().clone();
        let body = response.text().await.expect("the body");
        PageReply { status, path, body, headers }
    }

    pub async fn get(&self, path: &str) -> PageReply {
        Self::reply(self.http.get(format!("{}{path}", self.base)).send().await.expect("GET")).await
    }

    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.bytes().await.expect("the body").to_vec(), headers)
    }

    /// Posts a form with the CSRF token of the page it came from.
    pub async fn post_form(&self, path: &str, from: &PageReply, fields: &[(&str, &str)]) -> PageReply {
        let token = from.csrf();
        let mut all: Vec<(String, String)> = vec![("csrf".to_owned(), token)];
        if let Some(nonce) = from.between("name=\"jeton\" value=\"", "\"") {
            all.push(("jeton".to_owned(), nonce));
        }
        all.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(String, String)]) -> PageReply {
        Self::reply(self.http.post(format!("{}{path}", self.base)).form(fields).send().await.expect("POST")).await
    }

    /// Uploads a file to a piece through the pieces page's form.
    pub async fn upload(&self, dossier: Uuid, piece: &str, filename: &str, bytes: Vec<u8>) -> PageReply {
        let page = self.get(&format!("/dossiers/{dossier}/pieces")).await;
        self.upload_with_token(dossier, piece, filename, bytes, &page.csrf()).await
    }

    pub async fn upload_with_token(
        &self,
        dossier: Uuid,
        piece: &str,
        filename: &str,
        bytes: Vec<u8>,
        token: &str,
    ) -> PageReply {
        self.post_file(&format!("/dossiers/{dossier}/pieces/{piece}"), filename, bytes, token).await
    }

    /// Posts a form of two fields, as the pages' file forms send them: `csrf`, then `fichier`.
    pub async fn post_file(&self, path: &str, filename: &str, bytes: Vec<u8>, token: &str) -> PageReply {
        let form = reqwest::multipart::Form::new()
            .text("csrf", token.to_owned())
            .part("fichier", reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()));
        let response =
            self.http.post(format!("{}{path}", self.base)).multipart(form).send().await.expect("post a file");
        Self::reply(response).await
    }

    /// Signs in with a code utilisateur and a password.
    pub async fn login(&self, code: &str, password: &str) -> PageReply {
        let page = self.get("/connexion").await;
        self.post_form("/connexion", &page, &[("code", code), ("mot_de_passe", password)]).await
    }
}

/// A small valid PDF.
pub fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {text}\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n").into_bytes()
}

/// The text of a PDF, by poppler's pdftotext.
pub fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, bytes).expect("write the PDF");
    let output = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(output.status.success(), "pdftotext reads the document");
    String::from_utf8(output.stdout).expect("UTF-8 text")
}
