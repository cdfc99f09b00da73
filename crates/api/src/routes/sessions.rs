//! Exam sessions: open one (admin), read it (anyone), extend its deadline (admin), pre-register
//! in it (candidate), and its work queues and statistics (exam office and auditors).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cachet_domain::ids::SessionId;
use cachet_domain::session::{SessionCommand, SessionConfig};
use cachet_projections::queries::{self, Queue, QueuePage, SessionSummary, Statistics};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::{etag, parse_id, ApiJson, IdempotencyKey};
use crate::service::{self, command_id, execute_session, CommandOutcome};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_session))
        .routes(routes!(get_session))
        .routes(routes!(extend_deadline))
        .routes(routes!(pre_register))
        .routes(routes!(close_deposits))
        .routes(routes!(queue))
        .routes(routes!(statistics))
}

fn parse_session(text: &str) -> Result<SessionId, ApiError> {
    parse_id(text, "Cette session d'examen").map(SessionId::from_uuid)
}

/// Opens an exam session with its configuration: title, organiser, deposit deadline, counter
/// hours, catalogue of pieces, tests and convocation lead time.
///
/// Appelant : administrateur.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body(content = Object, description = "La configuration de la session (voir la session de démonstration)."),
    security(("identite" = [])),
    responses(
        (status = 201, body = CommandOutcome, headers(("Location" = String, description = "L'adresse de la session"))),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Session déjà ouverte, ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Configuration invalide, ou clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn open_session(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(config): ApiJson<SessionConfig>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let command_id = command_id(key.as_deref(), &format!("open-session:{}", caller.identity()));
    let session_id = SessionId::from_uuid(Uuid::new_v5(&command_id, b"session"));
    let outcome =
        execute_session(&state, &caller, session_id, SessionCommand::Open { session_id, config }, command_id).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/api/sessions/{session_id}"))], Json(outcome))
        .into_response())
}

/// An exam session as configured, with the deadline in force.
///
/// Appelants : tous, identifiés ou non (candidat, service concours, auditeur, administrateur).
#[utoipa::path(get, path = "/api/sessions/{session_id}", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "La session")),
    responses(
        (status = 200, body = SessionSummary),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json")
    ))]
async fn get_session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionSummary>, ApiError> {
    let id = session_id_of(&session_id)?;
    queries::session(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()))
}

fn session_id_of(text: &str) -> Result<Uuid, ApiError> {
    parse_session(text).map(|s| s.as_uuid())
}

#[derive(Deserialize, ToSchema)]
pub struct DeadlineExtension {
    /// The new deposit deadline (YYYY-MM-DD, Europe/Paris), later than the current one.
    pub new_deadline: NaiveDate,
    /// Why, e.g. « grève des services postaux ».
    pub reason: String,
}

/// Extends the deposit deadline, with a recorded reason.
///
/// Appelant : administrateur.
#[utoipa::path(post, path = "/api/sessions/{session_id}/deadline-extensions", tag = "sessions",
    params(
        ("session_id" = Uuid, Path, description = "La session"),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    request_body = DeadlineExtension,
    security(("identite" = [])),
    responses(
        (status = 200, body = CommandOutcome),
        (status = 400, description = "Requête mal formée : corps JSON illisible, en-tête Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Modification concurrente de la session", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de la requête de plus de 64 Kio", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Corps de la requête qui n'est pas en JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Date limite non postérieure à l'actuelle, motif vide, ou clé d'idempotence déjà utilisée", body = Problem, content_type = "application/problem+json")
    ))]
async fn extend_deadline(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<DeadlineExtension>,
) -> Result<Json<CommandOutcome>, ApiError> {
    caller.require_admin()?;
    let session_id = parse_session(&session_id)?;
    let command = SessionCommand::ExtendDeadline { new_deadline: body.new_deadline, reason: body.reason };
    let command_id = command_id(key.as_deref(), &format!("extend:{session_id}:{}", caller.identity()));
    Ok(Json(execute_session(&state, &caller, session_id, command, command_id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct PreRegistration {
    pub dossier_id: Uuid,
    /// The *code utilisateur* to log in with.
    pub user_code: String,
    pub version: i64,
    pub position: Option<i64>,
    pub replayed: bool,
}

/// Pre-registers the calling candidate: opens their dossier and gives their *code utilisateur*.
///
/// Appelant : un candidat, pour lui-même.
#[utoipa::path(post, path = "/api/sessions/{session_id}/dossiers", tag = "dossiers",
    params(
        ("session_id" = Uuid, Path, description = "La session"),
        ("Idempotency-Key" = Option<String>, Header, description = "De 1 à 200 caractères : une requête répétée avec la même clé n'ajoute rien et renvoie la première réponse.")
    ),
    security(("identite" = [])),
    responses(
        (status = 201, body = PreRegistration, headers(("ETag" = String, description = "La version du dossier"), ("Location" = String, description = "L'adresse du dossier"))),
        (status = 400, description = "Requête mal formée : en-tête Idempotency-Key ou X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Préinscription refusée (session close, dossier existant) ou modification concurrente", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Clé d'idempotence déjà utilisée pour une autre ressource", body = Problem, content_type = "application/problem+json")
    ))]
async fn pre_register(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, ApiError> {
    let candidate_id = caller.require_candidate()?;
    let session_id = parse_session(&session_id)?;
    let command_id = command_id(key.as_deref(), &format!("pre-register:{session_id}:{candidate_id}"));
    let registered = service::pre_register(&state, &caller, session_id, candidate_id, command_id).await?;
    let (outcome, user_code) = (registered.outcome, registered.user_code);
    let body = PreRegistration {
        dossier_id: outcome.id,
        user_code: user_code.to_string(),
        version: outcome.version,
        position: outcome.position,
        replayed: outcome.replayed,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/dossiers/{}", outcome.id)), (header::ETAG, etag(outcome.version))],
        Json(body),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct Paging {
    /// From 1 to 1 000 000; 1 by default.
    pub page: Option<i64>,
    /// From 1 to 200; 50 by default.
    pub per_page: Option<i64>,
}

/// A work queue of the exam office: `to_transfer`, `to_review`, `incomplete`, `complete`,
/// `rejected`, `lapsed`, `awaiting_deposit` or `withdrawn`; oldest pre-registration first.
///
/// Appelants : service concours, administrateur, auditeur (un candidat reçoit 403).
#[utoipa::path(get, path = "/api/sessions/{session_id}/queues/{queue}", tag = "sessions",
    params(
        ("session_id" = Uuid, Path, description = "La session"),
        ("queue" = String, Path, description = "La file"),
        Paging
    ),
    security(("identite" = [])),
    responses(
        (status = 200, body = QueuePage),
        (status = 400, description = "Paramètre page ou per_page hors limites, ou en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen ou file de travail inexistante", body = Problem, content_type = "application/problem+json")
    ))]
async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    Path((session_id, queue)): Path<(String, String)>,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<QueuePage>, ApiError> {
    caller.require_reader()?;
    let Query(paging) = paging.map_err(|_| {
        ApiError::BadRequest("Les paramètres page et per_page doivent être des nombres entiers.".to_owned())
    })?;
    let page = paging.page.unwrap_or(1);
    if !(1..=queries::MAX_PAGE).contains(&page) {
        return Err(ApiError::BadRequest("La page doit être un nombre entre 1 et 1 000 000.".to_owned()));
    }
    let per_page = paging.per_page.unwrap_or(50);
    if !(1..=queries::MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::BadRequest(
            "Le nombre de dossiers par page (per_page) doit être un nombre entre 1 et 200.".to_owned(),
        ));
    }
    let session = session_id_of(&session_id)?;
    let queue = Queue::parse(&queue).ok_or_else(|| {
        let known: Vec<&str> = Queue::ALL.iter().map(|q| q.code()).collect();
        ApiError::NotFound(format!("Cette file de travail n'existe pas ; files possibles : {}.", known.join(", ")))
    })?;
    if queries::session(&state.db, session).await?.is_none() {
        return Err(ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()));
    }
    Ok(Json(queries::queue(&state.db, session, queue, page, per_page).await?))
}

/// Counts of the session's dossiers by state, deposit channel and kind of rejection.
///
/// Appelants : service concours, administrateur, auditeur (un candidat reçoit 403).
#[utoipa::path(get, path = "/api/sessions/{session_id}/statistics", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "La session")),
    security(("identite" = [])),
    responses(
        (status = 200, body = Statistics),
        (status = 400, description = "Requête mal formée : en-tête X-Cachet-Actor invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action interdite à cet appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session d'examen inexistante", body = Problem, content_type = "application/problem+json")
    ))]
async fn statistics(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
) -> Result<Json<Statistics>, ApiError> {
    caller.require_reader()?;
    let session = session_id_of(&session_id)?;
    if queries::session(&state.db, session).await?.is_none() {
        return Err(ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()));
    }
    Ok(Json(queries::statistics(&state.db, session).await?))
}

/// After the deadline, declares every pre-registered dossier with no deposit *non parvenu*.
/// Idempotent: running it again lapses nothing more.
///
/// Appelants : service concours, administrateur.
#[utoipa::path(post, path = "/api/sessions/{session_id}/deposit-closure", tag = "sessions",
    params(
        ("session_id" = Uuid, Path, description = "La session"),
        ("Idempotency-Key" = Option<String>, Header, description = "Acceptée ; l'opération est de toute façon sans effet si elle est répétée : chaque dossier n'est déclaré non parvenu qu'une fois.")
    ),
    security(("identite" = [])),
    responses(
        (status = 200, description = "Les dossiers sans dépôt sont déclarés non parvenus", body = service::ClosedDeposits),
        (status = 400, description = "Identifiant ou en-tête invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Appelant non identifié", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Action réservée au service concours", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Session inexistante", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "La date limite n'est pas encore passée", body = Problem, content_type = "application/problem+json")
    ))]
async fn close_deposits(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    // Checked for its form only: each dossier's lapse already has its own idempotent command id.
    IdempotencyKey(_key): IdempotencyKey,
) -> Result<Json<service::ClosedDeposits>, ApiError> {
    caller.require_office()?;
    let session_id = parse_session(&session_id)?;
    Ok(Json(service::close_deposits(&state, &caller, session_id).await?))
}
