//! Demo data for `cachet serve --demo`: the source document's exam session (deadline 6 July
//! 2023) and 37 candidates spread over every state of the lifecycle, recorded as their history
//! would have happened in 2023 (each command decided at its own instant by the real domain).
//! Identifiers derive from fixed names, so the README can quote them; loading twice adds nothing.

use std::collections::HashMap;

use cachet_domain::demo::source_session;
use cachet_domain::dossier::{
    decide, Context, DossierCommand, DossierState, FileRef, PieceReview, RefusedForm, TransmissionIncident,
};
use cachet_domain::event::StaffRole;
use cachet_domain::ids::{CandidateId, DossierId, PieceCode, SessionId};
use cachet_domain::session::{decide_session, SessionCommand, SessionState};
use cachet_domain::time::paris_to_utc;
use cachet_domain::{Actor, DomainError};
use cachet_store::typed::{append_request, Metadata};
use cachet_store::{EventStore, ExpectedVersion, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use uuid::Uuid;

use crate::error::ApiError;
use crate::files::FileStore;
use crate::service::user_code_for;

fn named(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("https://cachet.invalid/demo/{name}").as_bytes())
}

/// The demo session's identifier.
pub fn session_id() -> SessionId {
    SessionId::from_uuid(named("session"))
}

/// The demo dossier number `n` (from 1).
pub fn dossier_id(n: usize) -> DossierId {
    DossierId::from_uuid(named(&format!("dossier/{n}")))
}

/// The candidate owning demo dossier `n`.
pub fn candidate_id(n: usize) -> CandidateId {
    CandidateId::from_uuid(named(&format!("candidate/{n}")))
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo step {step} refused by the domain: {source}")]
    Domain { step: String, source: DomainError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("demo file: {0}")]
    File(String),
}

impl From<ApiError> for DemoError {
    fn from(e: ApiError) -> Self {
        DemoError::File(e.to_string())
    }
}

/// What the demo holds, for `cachet serve` to print.
pub struct DemoSummary {
    pub session_id: SessionId,
    pub loaded_now: bool,
    /// (dossier number, dossier id, state reached)
    pub dossiers: Vec<(usize, DossierId, &'static str)>,
}

#[derive(Clone, Copy)]
enum Scenario {
    AwaitingDeposit,
    ClosedOnline,
    PostedOnTime,
    AtTheCounter,
    UnderReview,
    Incomplete,
    Complete,
    LatePostmark,
    TransmissionIncident,
    Fax,
    NonConforming,
    Lapsed,
    Withdrawn,
}

const SCENARIOS: [(Scenario, usize, &str); 13] = [
    (Scenario::AwaitingDeposit, 5, "en attente de dépôt"),
    (Scenario::ClosedOnline, 4, "clôturé en ligne, à transférer"),
    (Scenario::PostedOnTime, 3, "reçu par la poste, à transférer"),
    (Scenario::AtTheCounter, 2, "déposé à l'accueil, à transférer"),
    (Scenario::UnderReview, 5, "en cours d'instruction"),
    (Scenario::Incomplete, 4, "incomplet"),
    (Scenario::Complete, 6, "complet"),
    (Scenario::LatePostmark, 2, "rejeté : cachet de la poste hors délai"),
    (Scenario::TransmissionIncident, 1, "rejeté : affranchissement insuffisant"),
    (Scenario::Fax, 1, "rejeté : dossier transmis par télécopie"),
    (Scenario::NonConforming, 1, "rejeté : non conforme"),
    (Scenario::Lapsed, 2, "non parvenu"),
    (Scenario::Withdrawn, 1, "désistement"),
];

fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    paris_to_utc(date.and_hms_opt(h, min, 0).unwrap_or_default())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn piece(code: &str) -> PieceCode {
    PieceCode::parse(code).unwrap_or_else(|_| unreachable!("demo piece codes are valid"))
}

/// A small PDF standing for a scanned piece.
fn pdf(title: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
         3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n% {title}\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    .into_bytes()
}

struct Loader<'a> {
    store: &'a dyn EventStore,
    session: SessionState,
    states: HashMap<DossierId, (DossierState, i64)>,
    files: HashMap<&'static str, FileRef>,
}

impl Loader<'_> {
    async fn run(
        &mut self,
        dossier: DossierId,
        actor: &Actor,
        now: DateTime<Utc>,
        command: DossierCommand,
    ) -> Result<(), DemoError> {
        let (state, version) = self.states.remove(&dossier).unwrap_or_default();
        let ctx = Context { now, actor, session: &self.session };
        let events = decide(&state, &command, &ctx)
            .map_err(|source| DemoError::Domain { step: format!("{command:?}"), source })?;
        let command_id = Uuid::new_v5(&dossier.as_uuid(), format!("{version}").as_bytes());
        let metadata = Metadata { actor: actor.clone(), command_id, correlation_id: command_id, causation_id: None };
        let request = append_request(
            dossier.as_uuid(),
            ExpectedVersion::Exact(version),
            &metadata,
            command.occurred_at(now),
            &events,
        );
        let outcome = self.store.append(request).await?;
        let state = events.iter().fold(state, DossierState::evolve);
        self.states.insert(dossier, (state, outcome.stream_version));
        Ok(())
    }
}

/// Loads the demo into an empty store; does nothing if the demo session already exists.
pub async fn load(store: &dyn EventStore, files: &FileStore) -> Result<DemoSummary, DemoError> {
    let session_id = session_id();
    let mut dossiers = Vec::new();
    let mut n = 0;
    for (_, count, label) in SCENARIOS {
        for _ in 0..count {
            n += 1;
            dossiers.push((n, dossier_id(n), label));
        }
    }
    if !store.read_stream(session_id.as_uuid()).await?.is_empty() {
        return Ok(DemoSummary { session_id, loaded_now: false, dossiers });
    }

    let admin = Actor::Staff { account: "admin.demo".to_owned(), role: StaffRole::Admin };
    let open = SessionCommand::Open { session_id, config: source_session() };
    let opened = decide_session(&SessionState::default(), &open, &admin)
        .map_err(|source| DemoError::Domain { step: "open session".to_owned(), source })?;
    let command_id = Uuid::new_v5(&session_id.as_uuid(), b"open");
    let metadata = Metadata { actor: admin, command_id, correlation_id: command_id, causation_id: None };
    store
        .append(append_request(
            session_id.as_uuid(),
            ExpectedVersion::Exact(0),
            &metadata,
            paris(2023, 5, 2, 9, 0),
            &opened,
        ))
        .await?;

    let mut file_refs = HashMap::new();
    for (code, title) in [
        ("dossier-preinscription", "Dossier de pré-inscription daté et signé"),
        ("etat-services", "État des services"),
        ("arrete-situation", "Arrêté de situation administrative"),
    ] {
        file_refs.insert(code, files.put_bytes(pdf(title), &format!("{code}.pdf")).await?);
    }
    let mut loader = Loader { store, session: SessionState::fold(&opened), states: HashMap::new(), files: file_refs };
    let staff = Actor::Staff { account: "agent.demo".to_owned(), role: StaffRole::Staff };
    let system = Actor::System { component: "demo".to_owned() };

    let mut n = 0;
    for (scenario, count, _) in SCENARIOS {
        for k in 0..count {
            n += 1;
            let (dossier, candidate_id) = (dossier_id(n), candidate_id(n));
            let candidate = Actor::Candidate { candidate_id };
            let day = 15 + (n % 40) as u32;
            let registered = if day <= 31 {
                paris(2023, 5, day, 9 + (n % 8) as u32, 5 * (n % 12) as u32)
            } else {
                paris(2023, 6, day - 31, 14, 10)
            };
            let pre_register = DossierCommand::PreRegister {
                dossier_id: dossier,
                session_id,
                candidate_id,
                user_code: user_code_for(dossier),
            };
            loader.run(dossier, &candidate, registered, pre_register).await?;
            let upload = |code: &'static str| DossierCommand::UploadPiece {
                piece: piece(code),
                file: loader.files[code].clone(),
            };
            let uploads = [upload("dossier-preinscription"), upload("etat-services"), upload("arrete-situation")];
            let online = matches!(
                scenario,
                Scenario::ClosedOnline
                    | Scenario::UnderReview
                    | Scenario::Incomplete
                    | Scenario::Complete
                    | Scenario::NonConforming
            );
            if online {
                for (i, command) in uploads.into_iter().enumerate() {
                    loader
                        .run(dossier, &candidate, paris(2023, 7, 1 + (k % 5) as u32, 20, 10 * i as u32), command)
                        .await?;
                }
                loader
                    .run(
                        dossier,
                        &candidate,
                        paris(2023, 7, 1 + (k % 5) as u32, 21, 30),
                        DossierCommand::CloseRegistration,
                    )
                    .await?;
            }
            let transferred = matches!(
                scenario,
                Scenario::UnderReview | Scenario::Incomplete | Scenario::Complete | Scenario::NonConforming
            );
            if transferred {
                loader.run(dossier, &staff, paris(2023, 7, 10, 9, 30), DossierCommand::Transfer).await?;
            }
            let review = |code: &str, review: PieceReview| DossierCommand::ReviewPiece { piece: piece(code), review };
            match scenario {
                Scenario::PostedOnTime => {
                    let command = DossierCommand::RecordPostalReceipt {
                        postmark_date: date(2023, 7, 6),
                        arrival_date: date(2023, 7, 10),
                        incident: None,
                    };
                    loader.run(dossier, &staff, paris(2023, 7, 10, 10, 0), command).await?;
                }
                Scenario::AtTheCounter => {
                    let at = paris(2023, 7, 5, 10, 15);
                    loader.run(dossier, &staff, at, DossierCommand::RecordCounterReceipt { received_at: at }).await?;
                }
                Scenario::Incomplete => {
                    loader
                        .run(
                            dossier,
                            &staff,
                            paris(2023, 7, 12, 10, 0),
                            review("dossier-preinscription", PieceReview::Accepted),
                        )
                        .await?;
                    loader
                        .run(dossier, &staff, paris(2023, 7, 12, 10, 5), review("etat-services", PieceReview::Missing))
                        .await?;
                    let refused = PieceReview::Refused { reason: "document illisible".to_owned() };
                    loader
                        .run(dossier, &staff, paris(2023, 7, 12, 10, 10), review("arrete-situation", refused))
                        .await?;
                    loader.run(dossier, &staff, paris(2023, 7, 12, 10, 15), DossierCommand::ConcludeReview).await?;
                }
                Scenario::Complete => {
                    for code in ["dossier-preinscription", "etat-services", "arrete-situation"] {
                        loader
                            .run(dossier, &staff, paris(2023, 7, 13, 11, 0), review(code, PieceReview::Accepted))
                            .await?;
                    }
                    loader.run(dossier, &staff, paris(2023, 7, 13, 11, 30), DossierCommand::ConcludeReview).await?;
                }
                Scenario::LatePostmark => {
                    let command = DossierCommand::RecordPostalReceipt {
                        postmark_date: date(2023, 7, 7),
                        arrival_date: date(2023, 7, 10),
                        incident: None,
                    };
                    loader.run(dossier, &staff, paris(2023, 7, 10, 10, 20), command).await?;
                }
                Scenario::TransmissionIncident => {
                    let command = DossierCommand::RecordPostalReceipt {
                        postmark_date: date(2023, 7, 5),
                        arrival_date: date(2023, 7, 11),
                        incident: Some(TransmissionIncident::InsufficientPostage),
                    };
                    loader.run(dossier, &staff, paris(2023, 7, 11, 9, 0), command).await?;
                }
                Scenario::Fax => {
                    let command =
                        DossierCommand::RecordRefusedIntake { form: RefusedForm::Fax, received_on: date(2023, 7, 4) };
                    loader.run(dossier, &staff, paris(2023, 7, 4, 15, 0), command).await?;
                }
                Scenario::NonConforming => {
                    let command = DossierCommand::Reject {
                        detail: "le dossier de pré-inscription n'est pas signé.".to_owned(),
                    };
                    loader.run(dossier, &staff, paris(2023, 7, 12, 16, 0), command).await?;
                }
                Scenario::Lapsed => {
                    loader.run(dossier, &system, paris(2023, 7, 17, 8, 0), DossierCommand::Lapse).await?;
                }
                Scenario::Withdrawn => {
                    let command =
                        DossierCommand::Withdraw { reason: Some("mutation dans un autre département".to_owned()) };
                    loader.run(dossier, &candidate, paris(2023, 6, 20, 18, 0), command).await?;
                }
                Scenario::AwaitingDeposit | Scenario::ClosedOnline | Scenario::UnderReview => {}
            }
        }
    }
    Ok(DemoSummary { session_id, loaded_now: true, dossiers })
}

/// The password of every demo candidate account.
pub const DEMO_PASSWORD: &str = "demo-cachet-2023";

const FIRST_NAMES: [&str; 12] =
    ["Camille", "Dominique", "Claude", "Alix", "Sacha", "Morgan", "Lou", "Maxime", "Andréa", "Eden", "Noa", "Charlie"];
const LAST_NAMES: [&str; 10] =
    ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"];

/// The demo candidates' accounts: each demo dossier gets an identity and the password
/// [`DEMO_PASSWORD`], so the espace sécurisé can be tried with any code utilisateur the server
/// prints. Loading twice changes nothing.
pub async fn load_accounts(db: &cachet_projections::db::ReadDb, summary: &DemoSummary) -> Result<(), DemoError> {
    let hash = crate::accounts::hash_password(DEMO_PASSWORD.to_owned()).await?;
    for (n, dossier, _) in &summary.dossiers {
        let first = FIRST_NAMES[n % FIRST_NAMES.len()];
        let last = LAST_NAMES[(n / 3) % LAST_NAMES.len()];
        let identity = crate::accounts::Identity {
            last_name: last.to_owned(),
            first_name: first.to_owned(),
            birth_date: date(1970 + (*n as i32 % 30), 1 + (*n as u32 % 12), 1 + (*n as u32 % 28)),
            address: format!("{} rue de la République, 61000 Alençon", n + 1),
            email: format!("candidat{n}@demo.invalid"),
            phone: format!("02 33 80 {:02} {:02}", n % 100, (n * 7) % 100),
            answers: [
                ("grade".to_owned(), "Adjoint technique territorial".to_owned()),
                ("employeur".to_owned(), "Commune d'Alençon".to_owned()),
            ]
            .into_iter()
            .collect(),
        };
        let account = crate::accounts::CandidateAccount {
            user_code: user_code_for(*dossier).to_string(),
            candidate_id: candidate_id(*n).as_uuid(),
            dossier_id: dossier.as_uuid(),
            session_id: summary.session_id.as_uuid(),
            identity,
            password_hash: hash.clone(),
            created_at: paris(2023, 5, 15, 9, 0),
        };
        crate::accounts::create_candidate(db, &account).await?;
    }
    Ok(())
}

/// A second demo session, open for pre-registration until 6 July 2027, to try the pages.
pub fn open_session_id() -> SessionId {
    SessionId::from_uuid(named("session/2028"))
}

/// Opens the second demo session if it does not exist yet.
pub async fn load_open_session(store: &dyn EventStore) -> Result<SessionId, DemoError> {
    let session_id = open_session_id();
    if !store.read_stream(session_id.as_uuid()).await?.is_empty() {
        return Ok(session_id);
    }
    let mut config = source_session();
    config.title =
        "Examen professionnel d'adjoint technique territorial principal de 2e classe – session 2028".to_owned();
    config.deposit_deadline = date(2027, 7, 6);
    for test in &mut config.tests {
        test.starts_at = test.starts_at.with_year(2027).unwrap_or(test.starts_at);
    }
    let admin = Actor::Staff { account: "admin.demo".to_owned(), role: StaffRole::Admin };
    let open = SessionCommand::Open { session_id, config };
    let opened = decide_session(&SessionState::default(), &open, &admin)
        .map_err(|source| DemoError::Domain { step: "open the 2028 session".to_owned(), source })?;
    let command_id = Uuid::new_v5(&session_id.as_uuid(), b"open");
    let metadata = Metadata { actor: admin, command_id, correlation_id: command_id, causation_id: None };
    store
        .append(append_request(
            session_id.as_uuid(),
            ExpectedVersion::Exact(0),
            &metadata,
            paris(2026, 11, 2, 9, 0),
            &opened,
        ))
        .await?;
    Ok(session_id)
}
