//! `/healthz` (the process answers), `/readyz` (the database answers and the read models are
//! caught up within a bound) and `/metrics` (Prometheus).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "exploitation", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".to_owned() })
}

#[derive(Serialize, ToSchema)]
pub struct ProjectionReadiness {
    pub name: String,
    pub checkpoint: i64,
    pub lag: i64,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    /// The last committed global position.
    pub head: i64,
    pub projections: Vec<ProjectionReadiness>,
    /// The mail outbox: mails waiting, failed (to check and re-send from the office's page
    /// « Courriels »), sent. Failed mails do not make the service unready.
    pub mail: crate::outbox::OutboxCounts,
}

async fn readiness(state: &AppState) -> Result<Readiness, ApiError> {
    let head = state
        .store
        .head()
        .await
        .map_err(|_| ApiError::Unavailable("La base de données ne répond pas.".to_owned()))?
        .position;
    state.metrics.head.set(head);
    let projections = state
        .runner
        .statuses()
        .into_iter()
        .map(|(name, status)| {
            let lag = (head - status.checkpoint).max(0);
            state.metrics.checkpoint.with_label_values(&[name]).set(status.checkpoint);
            state.metrics.lag.with_label_values(&[name]).set(lag);
            ProjectionReadiness { name: name.to_owned(), checkpoint: status.checkpoint, lag, error: status.error }
        })
        .collect();
    let mail = crate::outbox::counts(&state.db).await?;
    state.metrics.mail_pending.set(mail.pending);
    state.metrics.mail_failed.set(mail.failed);
    Ok(Readiness { status: "ok".to_owned(), head, projections, mail })
}

/// The database answers and every read model is within the lag bound.
#[utoipa::path(get, path = "/readyz", tag = "exploitation", responses(
    (status = 200, body = Readiness),
    (status = 503, body = crate::error::Problem, content_type = "application/problem+json")
))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let readiness = readiness(&state).await?;
    if let Some(p) =
        readiness.projections.iter().find(|p| p.lag > state.settings.max_projection_lag || p.error.is_some())
    {
        return Err(ApiError::Unavailable(format!(
            "La vue « {} » est en retard de {} événements{}.",
            p.name,
            p.lag,
            if p.error.is_some() { " et en erreur" } else { "" }
        )));
    }
    Ok(Json(readiness))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "exploitation", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let _ = readiness(&state).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
