//! Convocations (rule 9): the office publishes a test's convocations for every complete dossier
//! of the session — each a PDF stored content-addressed, then `PublishConvocation` — unless one
//! was withheld with a reason; a candidate downloads theirs from their space, and each download
//! is an event. Nothing is sent by post or attached to a mail.
//!
//! The domain decides (lead time, complete dossiers only, published once); this module renders
//! and stores the documents and walks the session's complete dossiers.

use cachet_documents as documents;
use cachet_domain::dossier::{DossierCommand, DossierEvent, DossierState};
use cachet_domain::ids::{DossierId, SessionId, TestCode};
use cachet_domain::session::{SessionConfig, SessionEvent, SessionState, TestSpec};
use cachet_domain::time::{format_date, format_instant, format_time};
use cachet_domain::DomainError;
use cachet_projections::queries::{self, Queue};
use cachet_store::typed::load;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::execute_dossier;

/// What a publication did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Publication {
    /// Convocations published now.
    pub published: usize,
    /// Complete dossiers whose convocation was already published.
    pub already_published: usize,
    /// Complete dossiers whose convocation is withheld.
    pub withheld: usize,
}

impl Publication {
    /// In one French sentence.
    pub fn describe(&self) -> String {
        format!(
            "{} convocation(s) publiée(s) ; {} déjà publiée(s) ; {} retenue(s).",
            self.published, self.already_published, self.withheld
        )
    }
}

/// The session's configuration as its events leave it (deadline extensions included).
pub async fn session_config(state: &AppState, session_id: SessionId) -> Result<SessionConfig, ApiError> {
    let (events, _) = load::<SessionEvent>(&*state.store, session_id.as_uuid()).await?;
    let session = SessionState::fold(&events);
    let (config, deadline) =
        session.opened().map_err(|_| ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()))?;
    Ok(SessionConfig { deposit_deadline: deadline, ..config.clone() })
}

fn test_spec<'a>(config: &'a SessionConfig, test: &TestCode) -> Result<&'a TestSpec, ApiError> {
    config.test(test).ok_or_else(|| DomainError::UnknownTest { test: test.to_string() }.into())
}

/// « le 12/10/2023 à 09h00 ».
pub fn when(spec: &TestSpec) -> String {
    format!("le {} à {}", format_date(spec.starts_at.date()), format_time(spec.starts_at.time()))
}

/// The convocation's PDF for one dossier.
fn render(config: &SessionConfig, spec: &TestSpec, candidate_name: &str, user_code: &str) -> Vec<u8> {
    documents::convocation(&documents::Convocation {
        organiser: config.organiser.clone(),
        session_title: config.title.clone(),
        candidate_name: candidate_name.to_owned(),
        user_code: user_code.to_owned(),
        test_label: spec.label.clone(),
        date_time: when(spec),
        place: spec.place.clone(),
        address: spec.address.clone(),
        access_plan_url: spec.access_plan_url.clone(),
    })
}

/// Publishes a test's convocations for every complete dossier of the session. Refused as a whole,
/// with the domain's message, once less than the lead time remains before the test. Safe to run
/// twice: a published convocation is counted, not published again.
pub async fn publish(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
    test: &TestCode,
) -> Result<Publication, ApiError> {
    caller.require_office()?;
    let config = session_config(state, session_id).await?;
    let spec = test_spec(&config, test)?;
    let limit = config.convocation_publication_limit(spec);
    if Utc::now() > limit {
        return Err(DomainError::ConvocationTooLate {
            label: spec.label.clone(),
            days: config.convocation_lead_days,
            limit: format_instant(limit),
        }
        .into());
    }
    let mut report = Publication::default();
    let mut page = 1;
    loop {
        let complete = queries::queue(&state.db, session_id.as_uuid(), Queue::Complete, page, 200).await?;
        if complete.items.is_empty() {
            return Ok(report);
        }
        for dossier in complete.items {
            let id = DossierId::from_uuid(dossier.dossier_id);
            let (events, _) = load::<DossierEvent>(&*state.store, dossier.dossier_id).await?;
            let current = DossierState::fold(&events).convocations.get(test).cloned().unwrap_or_default();
            if current.document.is_some() {
                report.already_published += 1;
                continue;
            }
            if current.withheld.is_some() {
                report.withheld += 1;
                continue;
            }
            let name = accounts::candidate_by_dossier(&state.db, dossier.dossier_id)
                .await?
                .map_or_else(String::new, |account| account.identity.full_name());
            let bytes = render(&config, spec, &name, &dossier.user_code);
            let filename = format!("convocation-{}-{}.pdf", dossier.user_code, test);
            let document = state.files.put_bytes(bytes, &filename).await?;
            let command = DossierCommand::PublishConvocation { test: test.clone(), document };
            // One command per dossier and test: a second run, or a second process, appends nothing.
            let command_id = Uuid::new_v5(&dossier.dossier_id, format!("convocation:{test}").as_bytes());
            match execute_dossier(state, caller, id, command, None, command_id).await {
                Ok(outcome) if outcome.replayed => report.already_published += 1,
                Ok(_) => report.published += 1,
                Err(ApiError::Conflict(_)) => report.already_published += 1,
                Err(error) => return Err(error),
            }
        }
        page += 1;
    }
}

/// A candidate's convocation to a test: its PDF, once published, and the download recorded.
pub async fn download(
    state: &AppState,
    caller: &Caller,
    dossier_id: Uuid,
    test: &TestCode,
) -> Result<(String, Vec<u8>), ApiError> {
    let (events, _) = load::<DossierEvent>(&*state.store, dossier_id).await?;
    let dossier = DossierState::fold(&events);
    let not_found = || ApiError::NotFound("Aucune convocation n'est disponible.".to_owned());
    let document = dossier.convocations.get(test).and_then(|c| c.document.clone()).ok_or_else(not_found)?;
    if matches!(caller, Caller::Candidate(_)) {
        let command = DossierCommand::DownloadConvocation { test: test.clone() };
        execute_dossier(state, caller, DossierId::from_uuid(dossier_id), command, None, Uuid::new_v4()).await?;
    }
    let bytes = state.files.read(document.sha256.as_str()).await?;
    Ok((document.filename, bytes))
}

/// A test of the session and where its convocations stand for one dossier.
pub struct TestLine {
    pub spec: TestSpec,
    /// `None` before publication.
    pub published: bool,
    pub withheld: Option<String>,
    pub downloads: u32,
}

/// Every test of the session with the dossier's convocation to it.
pub fn lines(config: &SessionConfig, dossier: &DossierState) -> Vec<TestLine> {
    config
        .tests
        .iter()
        .map(|spec| {
            let current = dossier.convocations.get(&spec.code).cloned().unwrap_or_default();
            TestLine {
                spec: spec.clone(),
                published: current.document.is_some(),
                withheld: current.withheld,
                downloads: current.downloads,
            }
        })
        .collect()
}
