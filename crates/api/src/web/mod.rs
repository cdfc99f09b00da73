//! The web pages, server-rendered in French with maud: they work without JavaScript, carry no
//! inline script or style (the CSP forbids both), tie every label to its field and announce
//! errors next to the field.
//!
//! Pages share the API's rules: a page handler builds the same domain command as the API route
//! and runs it through `service`, so a rule holds whatever the entry point. Sessions are
//! server-side (`accounts`), in an HttpOnly, SameSite=Lax cookie, Secure behind TLS; every form
//! carries the session's CSRF token.

pub mod candidate;
pub mod convocations;
pub mod desk;
pub mod forms;
pub mod layout;
pub mod mails;
pub mod office;
pub mod postal_import;
pub mod session;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::AppState;
use crate::error::ApiError;

pub use layout::Page;
pub use session::Visitor;

pub fn router(max_upload_bytes: u64) -> Router<AppState> {
    Router::new()
        .route("/static/cachet.css", get(layout::stylesheet))
        .merge(candidate::router(max_upload_bytes))
        .merge(office::router())
        .merge(desk::router())
        .merge(postal_import::router())
        .merge(convocations::router())
        .merge(mails::router())
}

/// An error answered as a page.
#[derive(Debug)]
pub enum WebError {
    /// 404: also what another candidate's dossier answers.
    NotFound,
    /// 403 with a message, e.g. a form without its CSRF token.
    Forbidden(String),
    /// Any other failure of the API layer, shown with its French message.
    Api(ApiError),
}

impl From<ApiError> for WebError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::NotFound(_) => WebError::NotFound,
            other => WebError::Api(other),
        }
    }
}

impl From<cachet_projections::ProjectionError> for WebError {
    fn from(error: cachet_projections::ProjectionError) -> Self {
        WebError::Api(error.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page introuvable",
                "Cette page n'existe pas ou ne vous est pas accessible.".to_owned(),
            ),
            WebError::Forbidden(message) => (StatusCode::FORBIDDEN, "Action refusée", message),
            WebError::Api(error) => {
                if let ApiError::Internal(cause) = &error {
                    tracing::error!(error = %cause, "page failed");
                }
                let title = if error.status().is_server_error() { "Service indisponible" } else { "Action refusée" };
                (error.status(), title, error.to_string())
            }
        };
        (status, Page::new(title).message_page(&message)).into_response()
    }
}

/// The page of an address that matches nothing (the API's own fallback answers problem+json).
pub async fn not_found() -> WebError {
    WebError::NotFound
}
