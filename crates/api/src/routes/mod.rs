//! The router: one `router()` per area, merged here with the OpenAPI document, the fallbacks,
//! request ids, tracing and metrics.

pub mod audit;
pub mod convocations;
pub mod dossiers;
pub mod exports;
pub mod health;
pub mod imports;
pub mod sessions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cachet",
        description = "Dossiers d'inscription aux examens professionnels : le cachet de la poste faisant foi. \
                       Toutes les erreurs sont des documents application/problem+json (RFC 9457) dont le champ \
                       `detail` est rédigé en français."
    ),
    modifiers(&Identity),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "sessions", description = "Sessions d'examen"),
        (name = "dossiers", description = "Dossiers d'inscription"),
        (name = "exploitation", description = "Santé et métriques")
    )
)]
struct ApiDoc;

struct Identity;

impl Modify for Identity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "identite",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Cachet-Actor",
                "Identité de l'appelant (développement et démonstration) : candidate:<uuid>, staff:<compte>, \
                 admin:<compte> ou auditor:<compte>.",
            ))),
        );
    }
}

/// The OpenAPI document and the routes it describes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(sessions::router())
        .merge(dossiers::router())
        .merge(imports::router())
        .merge(convocations::router())
        .merge(exports::router())
        .merge(audit::router())
        .merge(health::router())
        .split_for_parts()
}

/// An unknown address: a problem document under `/api/`, a page elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        ApiError::NotFound("Cette adresse ne correspond à aucune ressource.".to_owned()).into_response()
    } else {
        crate::web::WebError::NotFound.into_response()
    }
}

/// A panic in a handler is a bug: it is logged and answered like any internal error, and the
/// server goes on.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    ApiError::internal("a handler panicked", message).into_response()
}

/// The security headers of every answer: no script at all, styles from this origin only, never
/// framed, no MIME sniffing, no referrer (reset links carry a token).
fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 5] {
    [
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                 base-uri 'none'",
            ),
        ),
        SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("inconnue", |p| p.as_str()).to_owned();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics.requests.with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()]).inc();
    metrics.duration.with_label_values(&[route.as_str(), method.as_str()]).observe(started.elapsed().as_secs_f64());
    response
}

pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    let request_id = HeaderName::from_static("x-request-id");
    let [csp, nosniff, referrer, frames, cache] = security_headers();
    api.route("/api/openapi.json", get(move || async move { Json(openapi.as_ref().clone()).into_response() }))
        .merge(crate::web::router(state.settings.max_upload_bytes))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(60)))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request.id = %id, http.method = %request.method(), http.path = %request.uri().path())
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(csp)
        .layer(nosniff)
        .layer(referrer)
        .layer(frames)
        .layer(cache)
        .with_state(state)
}
