//! Who is calling, and what each kind of caller may do.
//!
//! Every route declares its callers with one of the `require_*` checks. Until the login pages
//! of the candidate-space and back-office issues exist, the identity comes from the
//! `X-Cachet-Actor` header (`candidate:<uuid>`, `staff:<account>`, `admin:<account>`,
//! `auditor:<account>`), accepted only when the server runs with `--dev-identity` (on with
//! `--demo`); without it every identified route answers 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use cachet_domain::event::StaffRole;
use cachet_domain::ids::CandidateId;
use cachet_domain::Actor;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;

pub const ACTOR_HEADER: &str = "x-cachet-actor";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Candidate(CandidateId),
    Staff { account: String, role: StaffRole },
}

impl Caller {
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, rest) = text.trim().split_once(':')?;
        let account = rest.trim();
        let valid_account = !account.is_empty()
            && account.len() <= 64
            && account.chars().all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c));
        match kind {
            "candidate" => Uuid::parse_str(account).ok().map(|id| Caller::Candidate(CandidateId::from_uuid(id))),
            "staff" | "admin" | "auditor" if valid_account => {
                let role = match kind {
                    "staff" => StaffRole::Staff,
                    "admin" => StaffRole::Admin,
                    _ => StaffRole::Auditor,
                };
                Some(Caller::Staff { account: account.to_owned(), role })
            }
            _ => None,
        }
    }

    /// The caller as the identity header names it, e.g. `staff:agent`.
    pub fn identity(&self) -> String {
        match self {
            Caller::Candidate(id) => format!("candidate:{id}"),
            Caller::Staff { account, role } => {
                let kind = match role {
                    StaffRole::Staff => "staff",
                    StaffRole::Admin => "admin",
                    StaffRole::Auditor => "auditor",
                };
                format!("{kind}:{account}")
            }
        }
    }

    pub fn actor(&self) -> Actor {
        match self {
            Caller::Candidate(candidate_id) => Actor::Candidate { candidate_id: *candidate_id },
            Caller::Staff { account, role } => Actor::Staff { account: account.clone(), role: *role },
        }
    }

    /// Staff and admins of the exam office: every office action.
    pub fn require_office(&self) -> Result<(), ApiError> {
        match self {
            Caller::Staff { role: StaffRole::Staff | StaffRole::Admin, .. } => Ok(()),
            Caller::Staff { role: StaffRole::Auditor, .. } => Err(ApiError::Forbidden(
                "Les auditeurs ont un accès en lecture seule : cette action leur est interdite.".to_owned(),
            )),
            Caller::Candidate(_) => {
                Err(ApiError::Forbidden("Cette action est réservée au service concours.".to_owned()))
            }
        }
    }

    /// Admins: session configuration and deadline extensions.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Staff { role: StaffRole::Admin, .. } => Ok(()),
            _ => Err(ApiError::Forbidden("Cette action est réservée aux administrateurs.".to_owned())),
        }
    }

    /// Staff, admins and auditors: reading every dossier and queue.
    pub fn require_reader(&self) -> Result<(), ApiError> {
        match self {
            Caller::Staff { .. } => Ok(()),
            Caller::Candidate(_) => {
                Err(ApiError::Forbidden("Cette consultation est réservée au service concours.".to_owned()))
            }
        }
    }

    /// A candidate.
    pub fn require_candidate(&self) -> Result<CandidateId, ApiError> {
        match self {
            Caller::Candidate(id) => Ok(*id),
            Caller::Staff { .. } => Err(ApiError::Forbidden("Cette action est réservée aux candidats.".to_owned())),
        }
    }

    /// The owning candidate, or any staff account including auditors, may read a dossier. Any
    /// other candidate gets the same 404 as for a dossier that does not exist.
    pub fn may_read(&self, owner: Option<Uuid>) -> bool {
        match self {
            Caller::Candidate(id) => owner == Some(id.as_uuid()),
            Caller::Staff { .. } => true,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if !state.settings.dev_identity {
            return Err(ApiError::Unauthenticated);
        }
        let value = parts.headers.get(ACTOR_HEADER).ok_or(ApiError::Unauthenticated)?;
        Caller::parse(value.to_str().unwrap_or_default()).ok_or_else(|| {
            ApiError::BadRequest(
                "L'en-tête X-Cachet-Actor doit valoir candidate:<uuid>, staff:<compte>, admin:<compte> ou auditor:<compte>."
                    .to_owned(),
            )
        })
    }
}
