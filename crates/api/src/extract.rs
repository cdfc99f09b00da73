//! Extractors that turn what a client sends into typed values, or into a problem document with
//! a French detail: JSON bodies, path identifiers, `If-Match`, `Idempotency-Key`, and the caller's
//! identity.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// The largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A JSON body whose errors name the field at fault, in French.
pub struct ApiJson<T>(pub T);

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::BadRequest(format!(
            "Le corps de la requête n'est pas un JSON valide (ligne {}, colonne {}).",
            inner.line(),
            inner.column()
        ));
    }
    let message = inner.to_string();
    if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
        let field = if path == "." { field.to_owned() } else { format!("{path}.{field}") };
        return ApiError::Unprocessable(format!("Le champ « {field} » est obligatoire."));
    }
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()) {
        return ApiError::Unprocessable(format!("Le champ « {field} » n'est pas reconnu."));
    }
    if message.starts_with("unknown variant") {
        let expected =
            message.split("expected ").nth(1).unwrap_or_default().split(" at line").next().unwrap_or_default();
        return ApiError::Unprocessable(format!(
            "La valeur du champ « {path} » n'est pas reconnue ; valeurs possibles : {}.",
            expected.replace('`', "").replace("one of ", "")
        ));
    }
    // chrono's parse errors all speak of the "input".
    if message.contains("input") {
        return ApiError::Unprocessable(format!(
            "Le champ « {path} » n'est pas une date ou une heure valide (format attendu : AAAA-MM-JJ, ou AAAA-MM-JJTHH:MM:SS+02:00)."
        ));
    }
    if message.starts_with("invalid type") {
        let expected =
            message.split("expected ").nth(1).unwrap_or_default().split(" at line").next().unwrap_or_default();
        return ApiError::Unprocessable(format!("Le champ « {path} » a un type incorrect (attendu : {expected})."));
    }
    // Validation messages of our own types are already French sentences.
    let own = message.split(" at line").next().unwrap_or(&message).to_owned();
    ApiError::Unprocessable(format!("Le champ « {path} » est invalide : {own}"))
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")))
}

/// Reads the body within our limit (`Bytes::from_request` would apply axum's 2 Mio).
async fn read_body(req: Request) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_JSON_BYTES)
        .await
        .map_err(|_| ApiError::TooLarge(format!("Le corps de la requête dépasse {} Kio.", MAX_JSON_BYTES / 1024)))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    deserializer
        .end()
        .map_err(|_| ApiError::BadRequest("Le corps de la requête contient des données après le JSON.".to_owned()))?;
    Ok(value)
}

fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType(
        "Le corps de la requête doit être envoyé en JSON (Content-Type: application/json).".to_owned(),
    )
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(not_json());
        }
        Ok(ApiJson(parse_json(&read_body(req).await?)?))
    }
}

/// A JSON body that may be left out entirely (an empty body reads as `None`).
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json {
            return Err(not_json());
        }
        Ok(OptionalJson(Some(parse_json(&bytes)?)))
    }
}

/// Parses a path identifier; one that cannot exist answers 404 like one that does not.
pub fn parse_id(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("{what} n'existe pas.")))
}

/// `If-Match: "3"`: the dossier version the client last read.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else { return Ok(IfMatch(None)) };
        let text = value.to_str().unwrap_or_default().trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let version = text.trim_start_matches("W/").trim_matches('"').parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "L'en-tête If-Match « {text} » n'est pas une version de dossier : renvoyez l'ETag reçu, par exemple \"3\"."
            ))
        })?;
        Ok(IfMatch(Some(version)))
    }
}

/// `Idempotency-Key`: a retried request with the same key appends nothing and answers the first
/// outcome. Without one, every request is a new command.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else { return Ok(IdempotencyKey(None)) };
        let key = value.to_str().unwrap_or_default().trim();
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::BadRequest(
                "L'en-tête Idempotency-Key doit contenir de 1 à 200 caractères visibles.".to_owned(),
            ));
        }
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

/// The ETag of a dossier version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
