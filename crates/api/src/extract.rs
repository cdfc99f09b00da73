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

/// Where a JSON error lies: a field, named by its path (`pieces[0].code`), or the whole body.
struct Place(String);

impl Place {
    fn is_root(&self) -> bool {
        self.0 == "."
    }

    /// « Le champ « x » », or « Le corps de la requête ».
    fn subject(&self) -> String {
        if self.is_root() {
            "Le corps de la requête".to_owned()
        } else {
            format!("Le champ « {} »", self.0)
        }
    }

    /// « du champ « x » », or « du corps de la requête ».
    fn of(&self) -> String {
        if self.is_root() {
            "du corps de la requête".to_owned()
        } else {
            format!("du champ « {} »", self.0)
        }
    }

    /// The path of a field that an error names inside this place.
    fn field(&self, name: &str) -> String {
        if self.is_root() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.0)
        }
    }
}

/// serde's description of what it expected, in French; `None` when it is not one we know.
fn expected_in_french(expected: &str) -> Option<String> {
    let expected = expected.trim();
    if expected.contains(" or ") {
        let parts: Option<Vec<String>> = expected.split(" or ").map(expected_in_french).collect();
        return parts.map(|p| p.join(" ou "));
    }
    let tuple = |rest: &str| rest.trim().parse::<usize>().ok().map(|n| format!("une liste de {n} éléments"));
    if let Some(rest) =
        expected.strip_prefix("a tuple of size ").or_else(|| expected.strip_prefix("an array of length "))
    {
        return tuple(rest);
    }
    let text = match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "un nombre entier positif",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "un nombre entier",
        "f32" | "f64" => "un nombre",
        "a boolean" => "vrai ou faux (true/false)",
        "a string" | "a borrowed string" => "une chaîne de caractères",
        "a character" => "un caractère",
        "a sequence" | "an empty array" => "une liste",
        "a map" => "un objet JSON",
        "unit" => "null",
        "a formatted date string" | "a date" => "une date AAAA-MM-JJ",
        "a formatted time string" => "une heure HH:MM:SS",
        "a formatted date and time string" => "une date et une heure AAAA-MM-JJTHH:MM:SS",
        "an RFC 3339 formatted date and time string" => "une date et une heure AAAA-MM-JJTHH:MM:SS+02:00",
        "a UUID string" => "un identifiant UUID",
        _ if expected.starts_with("struct ")
            || expected.starts_with("internally tagged enum ")
            || expected.starts_with("adjacently tagged enum ") =>
        {
            "un objet JSON"
        }
        _ => return None,
    };
    Some(text.to_owned())
}

/// `one of `a`, `b`, `c`` or `` `a` or `b` ``: the values, listed in French (« a, b ou c »).
fn french_list(expected: &str) -> Option<String> {
    let values: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match values.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        [init @ .., last] => Some(format!("{} ou {last}", init.join(", "))),
    }
}

/// The first letter in lower case, for a sentence that follows a colon (« invalide : la valeur… »).
fn after_colon(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(std::iter::once(second)).chain(chars).collect()
        }
        _ => sentence.to_owned(),
    }
}

/// A message of our own types: French, unlike serde's and chrono's, which carry no accents or
/// guillemets outside the client's own text (quoted in backticks or double quotes).
fn is_french(message: &str) -> bool {
    let mut quoted = false;
    message.chars().any(|c| {
        if c == '`' || c == '"' {
            quoted = !quoted;
        }
        !quoted && (c == '«' || (!c.is_ascii() && c.is_alphabetic()))
    })
}

/// Turns a deserialisation error into a problem whose detail is French and names the field at
/// fault. serde's messages are translated; any other message that is not already French gives a
/// generic French sentence, so no English reaches a client. `valid_json` tells a type error that
/// serde_json reports as a syntax error (a number where a name is expected) from a real one.
fn json_error(error: serde_path_to_error::Error<serde_json::Error>, valid_json: bool) -> ApiError {
    let place = Place(error.path().to_string());
    let inner = error.inner();
    if (inner.is_syntax() || inner.is_eof()) && !valid_json {
        return ApiError::BadRequest(format!(
            "Le corps de la requête n'est pas un JSON valide (ligne {}, colonne {}).",
            inner.line(),
            inner.column()
        ));
    }
    let full = inner.to_string();
    // serde_json adds the position; the field's path says more.
    let message = full.split(" at line ").next().unwrap_or(&full);
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::Unprocessable(format!("{} a un type incorrect.", place.subject()));
    }
    let quoted = |prefix: &str| message.strip_prefix(prefix).and_then(|m| m.split('`').next());
    if let Some(field) = quoted("missing field `") {
        return ApiError::Unprocessable(format!("Le champ « {} » est obligatoire.", place.field(field)));
    }
    if let Some(field) = quoted("duplicate field `") {
        return ApiError::Unprocessable(format!("Le champ « {} » est présent deux fois.", place.field(field)));
    }
    if let Some(field) = quoted("unknown field `") {
        return ApiError::Unprocessable(format!("Le champ « {field} » n'est pas reconnu."));
    }
    if message.starts_with("unknown variant") {
        let expected = message.split_once(", expected ").map(|(_, e)| e).unwrap_or_default();
        return ApiError::Unprocessable(match french_list(expected) {
            Some(values) => {
                format!("La valeur {} n'est pas reconnue ; valeurs possibles : {values}.", place.of())
            }
            None => format!("La valeur {} n'est pas reconnue.", place.of()),
        });
    }
    // chrono's parse errors all speak of the "input".
    if message.contains("input") {
        return ApiError::Unprocessable(format!(
            "{} n'est pas une date ou une heure valide (format attendu : AAAA-MM-JJ, ou AAAA-MM-JJTHH:MM:SS+02:00).",
            place.subject()
        ));
    }
    if message == "short or long weekday names expected" {
        return ApiError::Unprocessable(format!(
            "{} n'est pas un jour de la semaine valide (valeurs possibles : Mon, Tue, Wed, Thu, Fri, Sat ou Sun).",
            place.subject()
        ));
    }
    let expected = message.split_once(", expected ").map(|(_, e)| e).unwrap_or_default();
    let french = expected_in_french(expected);
    let wrong_type = message.starts_with("invalid type")
        || (message.starts_with("invalid length") && french.as_deref() == Some("un objet JSON"));
    if wrong_type {
        // At the root, a scalar was expected only inside a tagged enum, whose path serde loses.
        let subject = if place.is_root() && french.as_deref() != Some("un objet JSON") {
            "Un champ du corps de la requête".to_owned()
        } else {
            place.subject()
        };
        return ApiError::Unprocessable(match french {
            Some(french) => format!("{subject} a un type incorrect (attendu : {french})."),
            None => format!("{subject} a un type incorrect."),
        });
    }
    if message.starts_with("invalid length") {
        return ApiError::Unprocessable(match french {
            Some(french) => format!("{} n'a pas le nombre d'éléments attendu ({french}).", place.subject()),
            None => format!("{} n'a pas le nombre d'éléments attendu.", place.subject()),
        });
    }
    if message.starts_with("invalid value") {
        return ApiError::Unprocessable(match french {
            Some(french) => format!("La valeur {} est invalide (attendu : {french}).", place.of()),
            None => format!("La valeur {} est invalide.", place.of()),
        });
    }
    // Validation messages of our own types are already French sentences.
    if is_french(message) {
        return ApiError::Unprocessable(format!("{} est invalide : {}", place.subject(), after_colon(message)));
    }
    ApiError::Unprocessable(format!("La valeur {} est invalide.", place.of()))
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
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let valid_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        json_error(e, valid_json)
    })?;
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset, NaiveDate};
    use serde::Deserialize;

    use super::parse_json;
    use crate::error::ApiError;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Channel {
        Post,
        Counter,
        Online,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Written,
        Oral,
    }

    #[expect(dead_code, reason = "only deserialised")]
    #[derive(Debug, Deserialize)]
    struct Line {
        code: cachet_domain::ids::PieceCode,
        count: u32,
    }

    #[expect(dead_code, reason = "only deserialised")]
    #[derive(Debug, Deserialize)]
    struct Body {
        date: Option<NaiveDate>,
        at: Option<DateTime<FixedOffset>>,
        count: Option<u32>,
        delta: Option<i64>,
        flag: Option<bool>,
        name: Option<String>,
        lines: Option<Vec<Line>>,
        channel: Option<Channel>,
        kind: Option<Kind>,
        pair: Option<(u32, u32)>,
        day: Option<chrono::Weekday>,
    }

    #[expect(dead_code, reason = "only deserialised")]
    #[derive(Debug, Deserialize)]
    #[serde(tag = "channel", rename_all = "snake_case")]
    enum Tagged {
        Post { piece: String, postmark_date: NaiveDate },
        Counter { piece: String },
    }

    #[expect(dead_code, reason = "only deserialised")]
    #[derive(Debug, Deserialize)]
    struct Required {
        name: String,
        count: u32,
    }

    fn detail<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> (u16, String) {
        let error: ApiError = parse_json::<T>(body.as_bytes()).expect_err(body);
        (error.status().as_u16(), error.to_string())
    }

    fn unprocessable(body: &str) -> String {
        let (status, detail) = detail::<Body>(body);
        assert_eq!(status, 422, "{body}: {detail}");
        detail
    }

    #[test]
    fn types_are_named_in_french() {
        let cases = [
            (r#"{"date": 3}"#, "Le champ « date » a un type incorrect (attendu : une date AAAA-MM-JJ)."),
            (
                r#"{"at": true}"#,
                "Le champ « at » a un type incorrect (attendu : une date et une heure AAAA-MM-JJTHH:MM:SS+02:00).",
            ),
            (r#"{"count": "3"}"#, "Le champ « count » a un type incorrect (attendu : un nombre entier positif)."),
            (r#"{"count": 1.5}"#, "Le champ « count » a un type incorrect (attendu : un nombre entier positif)."),
            (r#"{"delta": "x"}"#, "Le champ « delta » a un type incorrect (attendu : un nombre entier)."),
            (r#"{"flag": "oui"}"#, "Le champ « flag » a un type incorrect (attendu : vrai ou faux (true/false))."),
            (r#"{"name": 3}"#, "Le champ « name » a un type incorrect (attendu : une chaîne de caractères)."),
            (r#"{"lines": {}}"#, "Le champ « lines » a un type incorrect (attendu : une liste)."),
            (r#"{"lines": [3]}"#, "Le champ « lines[0] » a un type incorrect (attendu : un objet JSON)."),
            (
                r#"{"lines": [{"code": "etat", "count": "x"}]}"#,
                "Le champ « lines[0].count » a un type incorrect (attendu : un nombre entier positif).",
            ),
            (r#"{"pair": [1]}"#, "Le champ « pair » n'a pas le nombre d'éléments attendu (une liste de 2 éléments)."),
            (r#"{"kind": 3}"#, "Le champ « kind » a un type incorrect."),
            (r#"[]"#, "Le corps de la requête a un type incorrect (attendu : un objet JSON)."),
            (r#""texte""#, "Le corps de la requête a un type incorrect (attendu : un objet JSON)."),
            (r#"null"#, "Le corps de la requête a un type incorrect (attendu : un objet JSON)."),
        ];
        for (body, expected) in cases {
            assert_eq!(unprocessable(body), expected, "{body}");
        }
    }

    #[test]
    fn values_fields_and_variants_are_named_in_french() {
        let cases = [
            (r#"{"count": -1}"#, "La valeur du champ « count » est invalide (attendu : un nombre entier positif)."),
            (
                r#"{"count": 99999999999}"#,
                "La valeur du champ « count » est invalide (attendu : un nombre entier positif).",
            ),
            (r#"{"count": 1, "count": 2}"#, "Le champ « count » est présent deux fois."),
            (
                r#"{"channel": "fax"}"#,
                "La valeur du champ « channel » n'est pas reconnue ; valeurs possibles : post, counter ou online.",
            ),
            (r#"{"kind": "ecrit"}"#, "La valeur du champ « kind » n'est pas reconnue ; valeurs possibles : written ou oral."),
            (r#"{"lines": [{"code": "etat"}]}"#, "Le champ « lines[0].count » est obligatoire."),
            (
                r#"{"lines": [{"code": "A B", "count": 1}]}"#,
                "Le champ « lines[0].code » est invalide : la valeur « A B » n'est pas un code de pièce valide.",
            ),
            (
                r#"{"date": "hier"}"#,
                "Le champ « date » n'est pas une date ou une heure valide (format attendu : AAAA-MM-JJ, ou \
                 AAAA-MM-JJTHH:MM:SS+02:00).",
            ),
            (
                r#"{"day": "lundi"}"#,
                "Le champ « day » n'est pas un jour de la semaine valide (valeurs possibles : Mon, Tue, Wed, Thu, Fri, \
                 Sat ou Sun).",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(unprocessable(body), expected, "{body}");
        }
        assert_eq!(detail::<Required>(r#"{"count": 1}"#).1, "Le champ « name » est obligatoire.");
    }

    #[test]
    fn a_tagged_body_is_explained_without_its_lost_path() {
        assert_eq!(
            detail::<Tagged>(r#"{"channel": "fax", "piece": "x"}"#).1,
            "La valeur du champ « channel » n'est pas reconnue ; valeurs possibles : post ou counter."
        );
        assert_eq!(
            detail::<Tagged>(r#"{"channel": "post", "piece": 3, "postmark_date": "2023-07-06"}"#).1,
            "Un champ du corps de la requête a un type incorrect (attendu : une chaîne de caractères)."
        );
        assert_eq!(
            detail::<Tagged>(r#"{"channel": "counter", "piece": "a", "piece": "b"}"#).1,
            "Le champ « piece » est présent deux fois."
        );
        assert_eq!(detail::<Tagged>(r#"{"piece": "x"}"#).1, "Le champ « channel » est obligatoire.");
    }

    #[test]
    fn invalid_json_stays_a_400_and_nothing_english_leaks() {
        let (status, detail) = detail::<Body>(r#"{"count": "#);
        assert_eq!(status, 400);
        assert!(detail.starts_with("Le corps de la requête n'est pas un JSON valide (ligne 1, colonne"), "{detail}");
        let english =
            ["expected", "invalid ", "unknown", "missing", "duplicate", " or ", "string", "struct", "input", "« . »"];
        let bodies = [
            r#"{"date": 3}"#,
            r#"{"count": -1}"#,
            r#"{"channel": 3}"#,
            r#"{"channel": ["post"]}"#,
            r#"{"lines": [{"count": 1, "code": 3}]}"#,
            r#"{"at": "2023-07-06T25:00:00+02:00"}"#,
            r#"{"pair": [1, 2, 3]}"#,
            r#"[1]"#,
            r#"42"#,
        ];
        for body in bodies {
            let detail = unprocessable(body);
            for word in english {
                assert!(!detail.contains(word), "{body}: {detail}");
            }
        }
    }

    #[test]
    fn an_unknown_message_falls_back_to_a_french_sentence() {
        #[expect(dead_code, reason = "only deserialised")]
        #[derive(Debug, Deserialize)]
        struct WithId {
            id: uuid::Uuid,
        }
        assert_eq!(detail::<WithId>(r#"{"id": "pas-un-uuid"}"#).1, "La valeur du champ « id » est invalide.");
        assert_eq!(
            detail::<WithId>(r#"{"id": "éèé"}"#).1,
            "La valeur du champ « id » est invalide.",
            "the client's accents do not make an English message French"
        );
    }
}
