//! Exports of a session's dossiers for the exam office and auditors: CSV for French spreadsheets
//! and XLSX (see [`crate::export`]).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cachet_projections::queries;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::export;
use crate::extract::parse_id;

pub const CSV: &str = "text/csv; charset=utf-8";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_csv)).routes(routes!(export_xlsx))
}

/// The caller may read, and the session exists: its rows.
async fn rows(state: &AppState, caller: &Caller, session_id: &str) -> Result<(Uuid, Vec<export::ExportRow>), ApiError> {
    caller.require_reader()?;
    let session = parse_id(session_id, "Cette session d'examen")?;
    if queries::session(&state.db, session).await?.is_none() {
        return Err(ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()));
    }
    Ok((session, export::session_rows(state, session).await?))
}

fn attachment(content_type: &'static str, filename: String, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    ([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

/// The session's dossiers as CSV for French spreadsheets (UTF-8 with a BOM, `;` separators,
/// CRLF): code utilisateur, name, state, deposit channel, whether on time and why, dates,
/// missing pieces and rejection reason, ordered by code utilisateur.
///
/// Appelants : service concours, administrateur, auditeur (un candidat reçoit 403).
#[utoipa::path(get, path = "/api/sessions/{session_id}/export.csv", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "La session")),
    security(("identite" = [])),
    responses(
        (status = 200, description = "Les dossiers de la session, un par ligne, avec des en-têtes de colonnes en français", content_type = "text/csv; charset=utf-8", body = String,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"dossiers-<session>.csv\""))),
        (status = 400, description = "Requête mal formée : en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json")
    ))]
async fn export_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    let (session, rows) = rows(&state, &caller, &session_id).await?;
    Ok(attachment(CSV, format!("dossiers-{session}.csv"), export::to_csv(&rows)))
}

/// The session's dossiers as an XLSX workbook: one sheet « Dossiers », the same columns as the
/// CSV export under a bold header row that stays in view.
///
/// Appelants : service concours, administrateur, auditeur (un candidat reçoit 403).
#[utoipa::path(get, path = "/api/sessions/{session_id}/export.xlsx", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "La session")),
    security(("identite" = [])),
    responses(
        (status = 200, description = "Le classeur des dossiers de la session", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"dossiers-<session>.xlsx\""))),
        (status = 400, description = "Requête mal formée : en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json")
    ))]
async fn export_xlsx(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    let (session, rows) = rows(&state, &caller, &session_id).await?;
    Ok(attachment(XLSX, format!("dossiers-{session}.xlsx"), export::to_xlsx(&rows)?))
}
