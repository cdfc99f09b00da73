//! Auditors' questions over HTTP: a dossier's history, a dossier as it stood at an instant, and
//! a session's statistics at an instant. Open to the exam office and auditors.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use cachet_domain::ids::{DossierId, SessionId};
use cachet_domain::time::end_of_paris_day;
use cachet_projections::queries::{DossierStatus, Statistics};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::audit::{dossier_as_of, dossier_history, statistics_as_of, HistoryEntry};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::parse_id;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(history)).routes(routes!(as_of)).routes(routes!(statistics_at))
}

#[derive(Deserialize, IntoParams)]
pub struct At {
    /// An instant (`2023-07-07T09:00:00+02:00`) or a date (`2023-07-07`: the end of that day,
    /// Paris time).
    pub at: String,
}

/// Reads `at` as an instant, or a date meaning the end of that Paris day.
pub fn parse_at(text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(instant.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(end_of_paris_day(date) - Duration::microseconds(1));
    }
    Err(ApiError::BadRequest(
        "Le paramètre at doit être une date (AAAA-MM-JJ) ou un instant (AAAA-MM-JJTHH:MM:SS+02:00).".to_owned(),
    ))
}

fn at(query: Result<Query<At>, QueryRejection>) -> Result<DateTime<Utc>, ApiError> {
    let Query(At { at }) = query.map_err(|_| {
        ApiError::BadRequest("Le paramètre at est obligatoire : une date (AAAA-MM-JJ) ou un instant.".to_owned())
    })?;
    parse_at(&at)
}

/// Every event of the dossier in order: both times, who caused it, what it meant, and the
/// message the candidate read right after it.
///
/// Appelants : service concours, administrateur, auditeur (un candidat reçoit 403).
#[utoipa::path(get, path = "/api/dossiers/{dossier_id}/history", tag = "dossiers",
    params(("dossier_id" = Uuid, Path, description = "Le dossier")),
    security(("identite" = [])),
    responses(
        (status = 200, body = Vec<HistoryEntry>),
        (status = 400, description = "Requête mal formée : en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant", body = Problem, content_type = "application/problem+json")
    ))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    caller.require_reader()?;
    let id = DossierId::from_uuid(parse_id(&id, "Ce dossier")?);
    dossier_history(&*state.store, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("Ce dossier n'existe pas.".to_owned()))
}

/// The dossier as it stood at an instant (by recorded time), with the message the candidate
/// read then.
///
/// Appelants : service concours, administrateur, auditeur (un candidat reçoit 403).
#[utoipa::path(get, path = "/api/dossiers/{dossier_id}/as-of", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        At
    ),
    security(("identite" = [])),
    responses(
        (status = 200, body = DossierStatus),
        (status = 400, description = "Paramètre at absent ou invalide, ou en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou pas encore créé à cet instant", body = Problem, content_type = "application/problem+json")
    ))]
async fn as_of(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<At>, QueryRejection>,
) -> Result<Json<DossierStatus>, ApiError> {
    caller.require_reader()?;
    let id = DossierId::from_uuid(parse_id(&id, "Ce dossier")?);
    let at = at(query)?;
    dossier_as_of(&*state.store, id, at)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("Ce dossier n'existait pas à cette date.".to_owned()))
}

/// The session's statistics as they stood at an instant (by recorded time).
///
/// Appelants : service concours, administrateur, auditeur (un candidat reçoit 403).
#[utoipa::path(get, path = "/api/sessions/{session_id}/statistics/as-of", tag = "sessions",
    params(
        ("session_id" = Uuid, Path, description = "La session"),
        At
    ),
    security(("identite" = [])),
    responses(
        (status = 200, body = Statistics),
        (status = 400, description = "Paramètre at absent ou invalide, ou en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json")
    ))]
async fn statistics_at(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<At>, QueryRejection>,
) -> Result<Json<Statistics>, ApiError> {
    caller.require_reader()?;
    let session = SessionId::from_uuid(parse_id(&id, "Cette session d'examen")?);
    let at = at(query)?;
    if state.store.read_stream(session.as_uuid()).await?.is_empty() {
        return Err(ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()));
    }
    Ok(Json(statistics_as_of(&*state.store, session, at).await?))
}
