//! Dossiers: the candidate's status and pieces, the candidate's own commands (upload, remove,
//! close, send a missing piece, withdraw) and the exam office's (receipts, refused intake,
//! transfer, review, rejection, lapse).
//!
//! Every command answers the dossier's new version as `ETag`, honours `If-Match` and
//! `Idempotency-Key`, and returns once the read models show its effect.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cachet_domain::dossier::{
    DossierCommand, DossierEvent, DossierState, PaperDelivery, PieceReview, RefusedForm, TransmissionIncident,
};
use cachet_domain::ids::{DossierId, PieceCode};
use cachet_projections::queries::{self, DossierStatus, PieceRow};
use cachet_store::typed::load;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::{etag, header_str, parse_id, ApiJson, IdempotencyKey, IfMatch, OptionalJson};
use crate::service::{command_id, execute_dossier, CommandOutcome};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_dossier))
        .routes(routes!(get_pieces))
        .routes(routes!(upload_piece, remove_piece))
        .routes(routes!(download_file))
        .routes(routes!(close_registration))
        .routes(routes!(record_postal_receipt))
        .routes(routes!(record_counter_receipt))
        .routes(routes!(record_refused_intake))
        .routes(routes!(transfer))
        .routes(routes!(review_piece))
        .routes(routes!(conclude_review))
        .routes(routes!(upload_missing_piece))
        .routes(routes!(receive_missing_piece))
        .routes(routes!(reject))
        .routes(routes!(lapse))
        .routes(routes!(withdraw))
}

pub(crate) fn dossier_id(text: &str) -> Result<DossierId, ApiError> {
    parse_id(text, "Ce dossier").map(DossierId::from_uuid)
}

fn piece_code(text: &str) -> Result<PieceCode, ApiError> {
    PieceCode::parse(text).map_err(|_| ApiError::NotFound(format!("La pièce « {text} » n'existe pas.")))
}

fn not_found() -> ApiError {
    ApiError::NotFound("Ce dossier n'existe pas.".to_owned())
}

/// The dossier's status row, if the caller may see it.
async fn readable(state: &AppState, caller: &Caller, id: DossierId) -> Result<DossierStatus, ApiError> {
    let status = queries::dossier_status(&state.db, id.as_uuid()).await?.ok_or_else(not_found)?;
    if caller.may_read(status.candidate_id) {
        Ok(status)
    } else {
        Err(not_found())
    }
}

/// Runs a command and answers its outcome with the new `ETag`.
pub(crate) async fn run(
    state: &AppState,
    caller: &Caller,
    id: DossierId,
    command: DossierCommand,
    if_match: Option<i64>,
    key: Option<String>,
    scope: &str,
) -> Result<Response, ApiError> {
    // The same key from another caller is another command.
    let command_id = command_id(key.as_deref(), &format!("{scope}:{id}:{}", caller.identity()));
    let outcome = execute_dossier(state, caller, id, command, if_match, command_id).await?;
    Ok(([(header::ETAG, etag(outcome.version))], Json(outcome)).into_response())
}

// --- Queries -----------------------------------------------------------------------------------

/// The dossier's status: the message the candidate reads, the missing pieces, the deposit
/// receipt and the rejection reason. Its `ETag` is the dossier's version.
///
/// Appelants : le candidat titulaire du dossier, service concours, administrateur, auditeur ; le
/// dossier d'un autre candidat répond 404.
#[utoipa::path(get, path = "/api/dossiers/{dossier_id}", tag = "dossiers",
    params(("dossier_id" = Uuid, Path, description = "Le dossier")),
    security(("identite" = [])),
    responses(
        (status = 200, body = DossierStatus, headers(("ETag" = String, description = "La version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json")
    ))]
async fn get_dossier(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let status = readable(&state, &caller, dossier_id(&id)?).await?;
    Ok(([(header::ETAG, etag(status.version))], Json(status)).into_response())
}

/// The pieces of the session's catalogue, each with its state in this dossier.
///
/// Appelants : le candidat titulaire du dossier, service concours, administrateur, auditeur ; le
/// dossier d'un autre candidat répond 404.
#[utoipa::path(get, path = "/api/dossiers/{dossier_id}/pieces", tag = "dossiers",
    params(("dossier_id" = Uuid, Path, description = "Le dossier")),
    security(("identite" = [])),
    responses(
        (status = 200, body = Vec<PieceRow>),
        (status = 400, description = "Requête mal formée : en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json")
    ))]
async fn get_pieces(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<PieceRow>>, ApiError> {
    let id = dossier_id(&id)?;
    readable(&state, &caller, id).await?;
    Ok(Json(queries::dossier_pieces(&state.db, id.as_uuid()).await?))
}

/// A file deposited in the dossier.
///
/// Appelants : le candidat titulaire du dossier, service concours, administrateur, auditeur ; le
/// dossier d'un autre candidat répond 404.
#[utoipa::path(get, path = "/api/dossiers/{dossier_id}/files/{sha256}", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("sha256" = String, Path, description = "L'empreinte du fichier")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "Le fichier, avec le type reconnu à son dépôt", content(
            (Vec<u8> = "application/pdf"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png")
        )),
        (status = 400, description = "Requête mal formée : en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant ou dossier d'un autre candidat, ou fichier absent du dossier", body = Problem, content_type = "application/problem+json")
    ))]
async fn download_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = dossier_id(&id)?;
    readable(&state, &caller, id).await?;
    let pieces = queries::dossier_pieces(&state.db, id.as_uuid()).await?;
    let piece = pieces.iter().find(|p| p.sha256.as_deref() == Some(sha256.as_str()));
    let piece = piece.ok_or_else(|| ApiError::NotFound("Ce fichier n'existe pas dans ce dossier.".to_owned()))?;
    let bytes = state.files.read(&sha256).await?;
    let content_type = crate::files::content_type(piece.media_type.as_deref());
    let disposition =
        format!("attachment; filename=\"{}\"", piece.filename.clone().unwrap_or_default().replace('"', ""));
    Ok(([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response())
}

// --- The candidate's commands -------------------------------------------------------------------

/// The file name a client gives, from `X-Filename` or `Content-Disposition`.
fn given_filename(headers: &HeaderMap) -> String {
    if let Some(name) = header_str(headers, "x-filename") {
        return name.to_owned();
    }
    header_str(headers, header::CONTENT_DISPOSITION.as_str())
        .and_then(|d| d.split("filename=").nth(1))
        .map(|n| n.trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// Checks the caller owns the dossier before a file is received, so nothing is stored for
/// anyone else.
async fn owned(state: &AppState, caller: &Caller, id: DossierId) -> Result<(), ApiError> {
    let candidate = caller.require_candidate()?;
    let (events, _) = load::<DossierEvent>(&*state.store, id.as_uuid()).await?;
    if DossierState::fold(&events).candidate_id == Some(candidate) {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// Deposits (or replaces) a piece before closure: the raw file as the body (PDF, JPEG or PNG,
/// recognised by content; 10 Mio at most by default), its name in `X-Filename`.
///
/// Appelant : le candidat titulaire du dossier.
#[utoipa::path(put, path = "/api/dossiers/{dossier_id}/pieces/{piece}", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("piece" = String, Path, description = "Le code de la pièce"),
        ("X-Filename" = Option<String>, Header, description = "Le nom du fichier (à défaut, celui de Content-Disposition)."),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant ou dossier d'un autre candidat, ou pièce inconnue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Fichier trop volumineux", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Fichier qui n'est ni un PDF, ni une image JPEG ou PNG", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fichier vide, pièce inconnue, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn upload_piece(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, piece)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (id, piece) = (dossier_id(&id)?, piece_code(&piece)?);
    owned(&state, &caller, id).await?;
    let file = state.files.put(body, &given_filename(&headers)).await?;
    let scope = format!("upload:{piece}");
    run(&state, &caller, id, DossierCommand::UploadPiece { piece, file }, if_match, key, &scope).await
}

/// Removes a deposited piece before closure.
///
/// Appelant : le candidat titulaire du dossier.
#[utoipa::path(delete, path = "/api/dossiers/{dossier_id}/pieces/{piece}", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("piece" = String, Path, description = "Le code de la pièce"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant ou dossier d'un autre candidat, ou pièce inconnue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn remove_piece(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, piece)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, ApiError> {
    let (id, piece) = (dossier_id(&id)?, piece_code(&piece)?);
    let scope = format!("remove:{piece}");
    run(&state, &caller, id, DossierCommand::RemovePiece { piece }, if_match, key, &scope).await
}

/// *Clôturer mon inscription*: refused until the dossier de pré-inscription is attached, and
/// after midnight (Paris time) ending the deadline day.
///
/// Appelant : le candidat titulaire du dossier.
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/closure", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn close_registration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, ApiError> {
    run(&state, &caller, dossier_id(&id)?, DossierCommand::CloseRegistration, if_match, key, "close").await
}

/// Sends a piece listed as missing, online (raw file body as for a deposit).
///
/// Appelant : le candidat titulaire du dossier.
#[utoipa::path(put, path = "/api/dossiers/{dossier_id}/missing-pieces/{piece}", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("piece" = String, Path, description = "Le code de la pièce"),
        ("X-Filename" = Option<String>, Header, description = "Le nom du fichier (à défaut, celui de Content-Disposition)."),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant ou dossier d'un autre candidat, ou pièce inconnue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Fichier trop volumineux", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Fichier qui n'est ni un PDF, ni une image JPEG ou PNG", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fichier vide, pièce inconnue, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn upload_missing_piece(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, piece)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (id, piece) = (dossier_id(&id)?, piece_code(&piece)?);
    owned(&state, &caller, id).await?;
    let file = state.files.put(body, &given_filename(&headers)).await?;
    let scope = format!("missing:{piece}");
    run(&state, &caller, id, DossierCommand::UploadMissingPiece { piece, file }, if_match, key, &scope).await
}

#[derive(Deserialize, ToSchema, Default)]
pub struct Withdrawal {
    pub reason: Option<String>,
}

/// *Désistement*: the candidate (or the exam office on their behalf) withdraws.
///
/// Appelants : le candidat titulaire du dossier ; service concours et administrateur pour son
/// compte.
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/withdrawal", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body(content = Withdrawal, description = "Facultatif : le motif du désistement."),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champ manquant ou valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJson(body): OptionalJson<Withdrawal>,
) -> Result<Response, ApiError> {
    let reason = body.and_then(|b| b.reason);
    run(&state, &caller, dossier_id(&id)?, DossierCommand::Withdraw { reason }, if_match, key, "withdraw").await
}

// --- The exam office's commands ----------------------------------------------------------------

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Incident {
    /// *Affranchissement insuffisant*
    InsufficientPostage,
    /// *Dossier endommagé ou perdu*
    DamagedOrLost,
    /// *Grève ou retard d'acheminement*
    StrikeOrDelay,
}

impl From<Incident> for TransmissionIncident {
    fn from(i: Incident) -> Self {
        match i {
            Incident::InsufficientPostage => TransmissionIncident::InsufficientPostage,
            Incident::DamagedOrLost => TransmissionIncident::DamagedOrLost,
            Incident::StrikeOrDelay => TransmissionIncident::StrikeOrDelay,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct PostalReceipt {
    /// The postmark date (YYYY-MM-DD): it decides, not the arrival.
    pub postmark_date: NaiveDate,
    pub arrival_date: NaiveDate,
    pub incident: Option<Incident>,
}

/// Records a dossier received by post. The postmark decides: late means rejected, and so does
/// any transmission incident.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/postal-receipts", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body = PostalReceipt,
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champ manquant ou valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn record_postal_receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<PostalReceipt>,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    let command = DossierCommand::RecordPostalReceipt {
        postmark_date: body.postmark_date,
        arrival_date: body.arrival_date,
        incident: body.incident.map(Into::into),
    };
    run(&state, &caller, dossier_id(&id)?, command, if_match, key, "postal").await
}

#[derive(Deserialize, ToSchema)]
pub struct CounterReceipt {
    /// The moment of the receipt, with its offset, e.g. `2023-07-06T16:30:00+02:00`.
    #[schema(value_type = String, format = DateTime)]
    pub received_at: DateTime<FixedOffset>,
}

/// Records a dossier handed in at the counter, during opening hours.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/counter-receipts", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body = CounterReceipt,
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champ manquant ou valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn record_counter_receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CounterReceipt>,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    let command = DossierCommand::RecordCounterReceipt { received_at: body.received_at.with_timezone(&Utc) };
    run(&state, &caller, dossier_id(&id)?, command, if_match, key, "counter").await
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    Fax,
    Email,
    Photocopy,
    Screenshot,
    ConvertedAndModified,
}

impl From<Form> for RefusedForm {
    fn from(f: Form) -> Self {
        match f {
            Form::Fax => RefusedForm::Fax,
            Form::Email => RefusedForm::Email,
            Form::Photocopy => RefusedForm::Photocopy,
            Form::Screenshot => RefusedForm::Screenshot,
            Form::ConvertedAndModified => RefusedForm::ConvertedAndModified,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct RefusedIntake {
    pub form: Form,
    pub received_on: NaiveDate,
}

/// Records a dossier in a refused form (fax, e-mail, photocopy, screenshot, converted and
/// modified): it is kept as an event and the dossier is rejected.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/refused-intakes", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body = RefusedIntake,
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champ manquant ou valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn record_refused_intake(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<RefusedIntake>,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    let command = DossierCommand::RecordRefusedIntake { form: body.form.into(), received_on: body.received_on };
    run(&state, &caller, dossier_id(&id)?, command, if_match, key, "refused").await
}

/// Transfers a deposited dossier into review (*transférer dans le logiciel*).
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/transfer", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    run(&state, &caller, dossier_id(&id)?, DossierCommand::Transfer, if_match, key, "transfer").await
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Refused,
    Missing,
}

#[derive(Deserialize, ToSchema)]
pub struct PieceReviewBody {
    pub piece: String,
    pub outcome: Outcome,
    /// Required when the piece is refused.
    pub reason: Option<String>,
}

/// Reviews one piece: accepted, refused with a reason, or missing.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/piece-reviews", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body = PieceReviewBody,
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champ manquant ou valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn review_piece(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<PieceReviewBody>,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    let piece = PieceCode::parse(&body.piece).map_err(ApiError::from)?;
    let review = match body.outcome {
        Outcome::Accepted => PieceReview::Accepted,
        Outcome::Missing => PieceReview::Missing,
        Outcome::Refused => PieceReview::Refused { reason: body.reason.unwrap_or_default() },
    };
    let scope = format!("review:{piece}");
    run(&state, &caller, dossier_id(&id)?, DossierCommand::ReviewPiece { piece, review }, if_match, key, &scope).await
}

/// Concludes the review: complete when every required piece is accepted, otherwise incomplete
/// with the list of missing pieces.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/review-conclusion", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn conclude_review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    run(&state, &caller, dossier_id(&id)?, DossierCommand::ConcludeReview, if_match, key, "conclude").await
}

#[derive(Deserialize, ToSchema)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum PaperReceipt {
    Post {
        piece: String,
        postmark_date: NaiveDate,
        arrival_date: NaiveDate,
    },
    Counter {
        piece: String,
        #[schema(value_type = String, format = DateTime)]
        received_at: DateTime<FixedOffset>,
    },
}

/// Records a missing piece received by post or at the counter.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/missing-piece-receipts", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body = PaperReceipt,
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champ manquant ou valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn receive_missing_piece(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<PaperReceipt>,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    let (piece, delivery) = match body {
        PaperReceipt::Post { piece, postmark_date, arrival_date } => {
            (piece, PaperDelivery::Post { postmark_date, arrival_date })
        }
        PaperReceipt::Counter { piece, received_at } => {
            (piece, PaperDelivery::Counter { received_at: received_at.with_timezone(&Utc) })
        }
    };
    let piece = PieceCode::parse(&piece).map_err(ApiError::from)?;
    let scope = format!("paper:{piece}");
    run(
        &state,
        &caller,
        dossier_id(&id)?,
        DossierCommand::ReceiveMissingPiece { piece, delivery },
        if_match,
        key,
        &scope,
    )
    .await
}

#[derive(Deserialize, ToSchema)]
pub struct Rejection {
    /// What does not conform, e.g. « dossier non signé ».
    pub detail: String,
}

/// Rejects a non-conforming dossier, with the reason the candidate will read.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/rejection", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body = Rejection,
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champ manquant ou valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<Rejection>,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    run(&state, &caller, dossier_id(&id)?, DossierCommand::Reject { detail: body.detail }, if_match, key, "reject")
        .await
}

/// Declares the dossier *non parvenu* once the deadline has passed with no deposit.
///
/// Appelants : service concours, administrateur (un auditeur reçoit 403).
#[utoipa::path(post, path = "/api/dossiers/{dossier_id}/lapse", tag = "dossiers",
    params(
        ("dossier_id" = Uuid, Path, description = "Le dossier"),
        ("If-Match" = Option<String>, Header, description = "La version du dossier lue, son ETag (par exemple \"3\") : la commande est refusée (412) si le dossier a changé depuis."),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "La commande est enregistrée et visible dans les lectures", body = CommandOutcome, headers(("ETag" = String, description = "La nouvelle version du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête If-Match, Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dossier inexistant, ou dossier d'un autre candidat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Action refusée dans l'état actuel du dossier, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "La version donnée par If-Match n'est plus celle du dossier", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Valeur invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn lapse(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, ApiError> {
    caller.require_office()?;
    run(&state, &caller, dossier_id(&id)?, DossierCommand::Lapse, if_match, key, "lapse").await
}
