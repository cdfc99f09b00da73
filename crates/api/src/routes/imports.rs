//! Bulk import of a day's postal mail: a CSV file of receipts for one session, checked line by
//! line by a dry run, then applied. See [`crate::import`].

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use cachet_domain::ids::SessionId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::{parse_id, IdempotencyKey};
use crate::import::{self, ImportReport, Mode, MAX_BYTES};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(postal_import))
}

#[derive(Deserialize, IntoParams)]
pub struct ImportParams {
    /// `dry-run` (by default): says what each line would do and appends nothing; `apply`: records
    /// the accepted lines.
    #[param(value_type = Option<String>)]
    pub mode: Option<Mode>,
}

/// The media types a CSV file arrives with (spreadsheets and browsers differ).
fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            matches!(m.as_str(), "text/csv" | "application/csv" | "text/plain" | "application/vnd.ms-excel")
        })
}

/// Imports a day's postal mail from a CSV file: one line per dossier received, with its *code
/// utilisateur*, the postmark date, the arrival date and any transmission incident.
///
/// The file: UTF-8, separator `;` or `,`, a header row with the columns « code utilisateur »,
/// « cachet de la poste », « date d'arrivée » and optionally « incident » (« affranchissement
/// insuffisant », « endommagé ou perdu », « grève ou retard »); dates JJ/MM/AAAA or AAAA-MM-JJ; at
/// most 10 000 lines and 2 Mio.
///
/// Each line is decided by the same rules as `POST /api/dossiers/{dossier_id}/postal-receipts`
/// (the postmark decides; late or incident means rejected). `mode=dry-run` appends nothing and
/// says what each line would do; `mode=apply` records the accepted lines. Importing the same file
/// again appends nothing: its lines are reported as already recorded. A line in error is reported
/// with its number and never stops the others.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/sessions/{session_id}/postal-imports", tag = "sessions",
    params(
        ("session_id" = Uuid, Path, description = "La session"),
        ImportParams,
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères ; facultatif : l'import est idempotent par son contenu, chaque ligne étant une commande dont l'identifiant dérive de la session, du code utilisateur et de la réception. Une requête répétée, avec ou sans clé, n'ajoute rien et signale ses lignes comme déjà enregistrées.")
    ),
    request_body(content = String, content_type = "text/csv", description = "Le fichier CSV (UTF-8) : code utilisateur ; cachet de la poste ; date d'arrivée ; incident"),
    security(("identite" = [])),
    responses(
        (status = 200, description = "Le résultat de chaque ligne, dans l'ordre du fichier, et les totaux", body = ImportReport),
        (status = 400, description = "Paramètre mode invalide, ou en-tête Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action réservée au service concours", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Fichier de plus de 2 Mio ou de plus de 10 000 lignes", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas un fichier CSV (Content-Type: text/csv)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fichier illisible : pas en UTF-8, vide, sans en-tête, colonne manquante ou en double", body = Problem, content_type = "application/problem+json")
    ))]
async fn postal_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    params: Result<Query<ImportParams>, QueryRejection>,
    // Validated only: every line's command id already derives from its content.
    IdempotencyKey(_): IdempotencyKey,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    caller.require_office()?;
    let Query(params) = params.map_err(|_| {
        ApiError::BadRequest("Le paramètre mode doit valoir « dry-run » (par défaut) ou « apply ».".to_owned())
    })?;
    let session_id = parse_id(&session_id, "Cette session d'examen").map(SessionId::from_uuid)?;
    if !is_csv(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "Le corps de la requête doit être un fichier CSV (Content-Type: text/csv).".to_owned(),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BYTES).await.map_err(|_| import::too_large())?;
    let mode = params.mode.unwrap_or(Mode::DryRun);
    Ok(Json(import::import(&state, &caller, session_id, &bytes, mode).await?))
}
