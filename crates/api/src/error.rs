//! The API's one error type. Every error leaves as `application/problem+json` (RFC 9457) with a
//! stable `type`, the HTTP status and a French `detail` a person can act on.
//!
//! Policy: domain and input errors carry their own French message. Infrastructure errors are
//! logged once, here, with their cause, and answered with a generic message: database text never
//! reaches a response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cachet_domain::DomainError;
use cachet_projections::ProjectionError;
use cachet_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem document (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem, e.g. `/problemes/hors-delai`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short French title of the kind of problem.
    pub title: String,
    pub status: u16,
    /// What happened and what to do, in French.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not valid JSON, or a field has the wrong type.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no identity.
    #[error("Authentification requise : connectez-vous pour accéder à cette ressource.")]
    Unauthenticated,
    /// 403: the identity may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing here, or nothing this identity may see.
    #[error("{0}")]
    NotFound(String),
    /// 405
    #[error("Cette méthode n'est pas permise sur cette ressource.")]
    MethodNotAllowed,
    /// 409: the command is refused in the dossier's current state.
    #[error("{0}")]
    Conflict(String),
    /// 409: another change won the race; reload and retry.
    #[error("Le dossier a été modifié en même temps par une autre action : rechargez-le puis recommencez.")]
    Concurrent,
    /// 412: `If-Match` names a version that is no longer current.
    #[error("Le dossier a changé depuis votre lecture (version {expected} attendue, version actuelle {actual}) : rechargez-le puis recommencez.")]
    StaleVersion { expected: i64, actual: i64 },
    /// 413
    #[error("{0}")]
    TooLarge(String),
    /// 415
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the request is well-formed but a value is not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// 428: a header required for safety is missing.
    #[error("{0}")]
    PreconditionRequired(String),
    /// 503: not ready.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged with its cause, answered generically.
    #[error("Une erreur interne est survenue ; réessayez dans quelques instants.")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::Concurrent => StatusCode::CONFLICT,
            ApiError::StaleVersion { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("requete-invalide", "Requête invalide"),
            ApiError::Unauthenticated => ("authentification-requise", "Authentification requise"),
            ApiError::Forbidden(_) => ("action-interdite", "Action interdite"),
            ApiError::NotFound(_) => ("introuvable", "Ressource introuvable"),
            ApiError::MethodNotAllowed => ("methode-non-permise", "Méthode non permise"),
            ApiError::Conflict(_) => ("action-refusee", "Action refusée dans l'état actuel du dossier"),
            ApiError::Concurrent => ("modification-concurrente", "Modification concurrente"),
            ApiError::StaleVersion { .. } => ("version-perimee", "Version périmée"),
            ApiError::TooLarge(_) => ("trop-volumineux", "Contenu trop volumineux"),
            ApiError::UnsupportedMediaType(_) => ("type-non-pris-en-charge", "Type de contenu non pris en charge"),
            ApiError::Unprocessable(_) => ("valeur-invalide", "Valeur invalide"),
            ApiError::PreconditionRequired(_) => ("precondition-requise", "En-tête requis"),
            ApiError::Unavailable(_) => ("service-indisponible", "Service indisponible"),
            ApiError::Internal(_) => ("erreur-interne", "Erreur interne"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (kind, title) = self.kind_and_title();
        Problem {
            kind: format!("/problemes/{kind}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail: self.to_string(),
        }
    }

    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        ApiError::Internal(format!("{context}: {error}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let problem = self.problem();
        let mut response = (self.status(), axum::Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use DomainError as D;
        let message = e.to_string();
        match e {
            D::InvalidIdentifier { .. }
            | D::InvalidUserCode
            | D::InvalidSessionConfig(_)
            | D::DeadlineNotLater { .. }
            | D::UnknownPiece { .. }
            | D::UnknownTest { .. }
            | D::PostmarkInFuture { .. }
            | D::ArrivalInFuture { .. }
            | D::ArrivalBeforePostmark { .. }
            | D::CounterReceiptInFuture { .. }
            | D::CounterClosed { .. }
            | D::ReasonRequired => ApiError::Unprocessable(message),
            D::NotAllowed { .. } => ApiError::Forbidden(message),
            D::DossierNotFound | D::SessionNotOpened => ApiError::NotFound(message),
            D::SessionAlreadyOpened
            | D::DossierAlreadyExists
            | D::WrongSession
            | D::InvalidTransition { .. }
            | D::NoFileForPiece { .. }
            | D::RegistrationFormMissing { .. }
            | D::ClosureAfterDeadline { .. }
            | D::UploadAfterDeadline { .. }
            | D::PieceNotMissing { .. }
            | D::ConvocationTooLate { .. }
            | D::ConvocationAlreadyPublished { .. }
            | D::ConvocationNotPublished { .. }
            | D::PreRegistrationClosed { .. }
            | D::LapseBeforeDeadline { .. }
            | D::PieceAwaitingReview { .. } => ApiError::Conflict(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => ApiError::Concurrent,
            StoreError::CommandIdReused { .. } => ApiError::Unprocessable(
                "Cette clé d'idempotence a déjà servi pour une autre ressource : utilisez une nouvelle clé.".to_owned(),
            ),
            other => ApiError::internal("event store", error_chain(&other)),
        }
    }
}

impl From<ProjectionError> for ApiError {
    fn from(e: ProjectionError) -> Self {
        ApiError::internal("read model", error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
