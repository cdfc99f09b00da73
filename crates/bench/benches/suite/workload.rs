//! The command workload every section shares: dossiers under review (five events each: pre-
//! registered, received by post on time, transferred, two pieces reviewed), and one command,
//! reviewing a piece, which reads the dossier's events, folds them, decides with the domain's own
//! `decide`, and appends one event with the version it read.

use cachet_domain::deadline::judge_postmark;
use cachet_domain::demo::source_session;
use cachet_domain::dossier::{DossierCommand, DossierEvent, PieceReview};
use cachet_domain::event::{Actor, StaffRole};
use cachet_domain::ids::{CandidateId, DossierId, PieceCode, SessionId};
use cachet_domain::session::{SessionConfig, SessionEvent, SessionState};
use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

pub fn deadline() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 7, 6).expect("a date")
}

pub fn session_config() -> SessionConfig {
    SessionConfig { deposit_deadline: deadline(), ..source_session() }
}

pub fn session_opened(session: SessionId) -> SessionEvent {
    SessionEvent::SessionOpened { session_id: session, config: session_config() }
}

pub fn session_state(session: SessionId) -> SessionState {
    SessionState::fold(&[session_opened(session)])
}

pub fn opened_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 5, 2, 7, 0, 0).single().expect("an instant")
}

pub fn staff() -> Actor {
    Actor::Staff { account: "agent".to_owned(), role: StaffRole::Staff }
}

pub fn admin() -> Actor {
    Actor::Staff { account: "admin".to_owned(), role: StaffRole::Admin }
}

fn piece(code: &str) -> PieceCode {
    PieceCode::parse(code).expect("a piece code")
}

/// A dossier's id, its candidate and its five events.
pub fn dossier(n: usize, session: SessionId) -> (DossierId, CandidateId, Vec<DossierEvent>) {
    let dossier = DossierId::from_uuid(Uuid::new_v4());
    let candidate = CandidateId::from_uuid(Uuid::new_v4());
    let postmark = deadline() - Days::days(1);
    let events = vec![
        DossierEvent::PreRegistered {
            dossier_id: dossier,
            session_id: session,
            candidate_id: candidate,
            user_code: cachet_api::service::user_code_for(dossier),
            registered_at: opened_at() + Days::seconds(n as i64),
        },
        DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: deadline() + Days::days(2),
            incident: None,
            verdict: judge_postmark(postmark, deadline()),
        },
        DossierEvent::Transferred,
        DossierEvent::PieceReviewed { piece: piece("dossier-preinscription"), review: PieceReview::Accepted },
        DossierEvent::PieceReviewed { piece: piece("arrete-situation"), review: PieceReview::Accepted },
    ];
    (dossier, candidate, events)
}

/// The command of the workload: the office accepts a piece (again).
pub fn command() -> DossierCommand {
    DossierCommand::ReviewPiece { piece: piece("etat-services"), review: PieceReview::Accepted }
}

/// The dossiers client `client` of `clients` works on, in turn.
pub fn mine<T: Copy>(all: &[T], client: usize, clients: usize, n: usize) -> T {
    let own = (all.len() - client - 1) / clients + 1;
    all[client + (n % own) * clients]
}
