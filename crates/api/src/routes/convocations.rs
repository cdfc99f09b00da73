//! Convocations through the API: the office publishes a test's convocations for a session and
//! withholds one; a candidate downloads theirs (an event), the office reads any. See
//! [`crate::convocations`].

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cachet_domain::dossier::DossierCommand;
use cachet_domain::ids::{SessionId, TestCode};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::Caller;
use crate::convocations::{self, Publication};
use crate::error::{ApiError, Problem};
use crate::extract::{parse_id, ApiJson, IdempotencyKey, IfMatch};
use crate::routes::dossiers::{dossier_id, run};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(publish)).routes(routes!(withhold)).routes(routes!(download))
}

fn test_code(text: &str) -> Result<TestCode, ApiError> {
    TestCode::parse(text)
        .map_err(|_| ApiError::NotFound(format!("L'épreuve « {text} » n'existe pas dans cette session.")))
}

/// Publishes a test's convocations for every complete dossier of the session (a PDF each, in the
/// candidates' space; never sent by post nor attached to a mail). Refused when less than the
/// session's lead time (at least 15 days) remains before the test. Running it again publishes
/// nothing more.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/sessions/{session_id}/tests/{test}/convocation-publication", tag = "sessions",
    params(
        ("session_id" = Uuid, Path, description = "La session"),
        ("test" = String, Path, description = "Le code de l'épreuve, par exemple « admissibilite »"),
        ("Idempotency-Key" = Option<String>, Header, description = "Acceptée ; l'opération est de toute façon sans effet si elle est répétée : chaque convocation n'est publiée qu'une fois.")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "Les convocations publiées, déjà publiées et retenues", body = Publication),
        (status = 400, description = "Identifiant ou en-tête invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action réservée au service concours", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session ou épreuve inexistante", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Moins que le délai de convocation avant l'épreuve", body = Problem, content_type = "application/problem+json")
    ))]
async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((session_id, test)): Path<(String, String)>,
    // Checked for its form only: each convocation already has its own idempotent command id.
    IdempotencyKey(_key): IdempotencyKey,
) -> Result<Json<Publication>, ApiError> {
    caller.require_office()?;
    let session_id = parse_id(&session_id, "Cette session d'examen").map(SessionId::from_uuid)?;
    Ok(Json(convocations::publish(&state, &caller, session_id, &test_code(&test)?).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct Withholding {
    /// Why the convocation is withheld (read by the office and the auditors).
    pub reason: String,
}

/// Withholds a complete dossier's convocation to a test, with a reason, before publication.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/convocations/{test}/withholding", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("test" = String, Path, description = "Le code de l'épreuve"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body(content = Withholding),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée", body = crate::service::CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action réservée au service concours", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier ou épreuve inexistant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Dossier qui n'est pas complet, ou convocation déjà publiée", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Motif manquant, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn withhold(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, test)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<Withholding>,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    let command = DossierCommand::WithholdConvocation { test: test_code(&test)?, reason: body.reason };
    run(&state, &caller, dossier_id(&id)?, command, if_match, key, "withhold-convocation").await
}

/// A convocation's PDF, once published. A candidate's download is recorded as an event.
///
/// Appelants : le candidat titulaire du dossier ; service concours, auditeur, administrateur.
#[utoipa::path(get, path = "/api/dossiers/{dossier_id}/convocations/{test}", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("test" = String, Path, description = "Le code de l'épreuve")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La convocation (PDF)", content_type = "application/pdf", body = Vec<u8>),
        (status = 400, description = "Identifiant ou en-tête invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant ou d'un autre candidat, ou convocation non publiée", body = Problem, content_type = "application/problem+json")
    ))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, test)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let dossier = dossier_id(&id)?;
    let (filename, bytes) = convocations::download(&state, &caller, dossier.as_uuid(), &test_code(&test)?).await?;
    let disposition = format!("attachment; filename=\"{}\"", filename.replace(['"', '\\'], "_"));
    Ok(([(header::CONTENT_TYPE, "application/pdf".to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response())
}
