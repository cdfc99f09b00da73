//! The visitor's web session, read from its cookie; the CSRF check every form goes through.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Utc;

use crate::accounts::{self, SessionUser, WebSession};
use crate::app::AppState;
use crate::error::ApiError;
use crate::web::WebError;

pub const COOKIE: &str = "cachet_session";

/// Whoever is asking for a page, with their session when the cookie names a live one.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub session: Option<WebSession>,
    /// The client address, for login throttling.
    pub address: String,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let session = match jar.get(COOKIE) {
            Some(cookie) => accounts::find_session(&state.db, cookie.value(), Utc::now()).await?,
            None => None,
        };
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
        let address = client_address(peer, &parts.headers, &state.settings.trusted_proxies)
            .map_or_else(|| "inconnue".to_owned(), |ip| ip.to_string());
        Ok(Visitor { session, address })
    }
}

/// The client's address: the connection's peer, unless that peer is a trusted reverse proxy, in
/// which case the nearest address of `X-Forwarded-For` that is not itself a trusted proxy (the
/// entries further left were written by the client and prove nothing). Without trusted proxies the
/// header is ignored, so a client cannot choose the address its failed logins count against.
pub fn client_address(
    peer: Option<std::net::IpAddr>,
    headers: &axum::http::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|hop| !trusted.contains(hop)).unwrap_or(peer))
}

impl Visitor {
    /// The signed-in candidate's code utilisateur.
    pub fn candidate(&self) -> Option<&str> {
        match &self.session {
            Some(WebSession { user: SessionUser::Candidate { user_code }, .. }) => Some(user_code),
            _ => None,
        }
    }

    /// The signed-in staff account.
    pub fn staff(&self) -> Option<&str> {
        match &self.session {
            Some(WebSession { user: SessionUser::Staff { account }, .. }) => Some(account),
            _ => None,
        }
    }

    /// The session, opening an anonymous one (and its cookie) for a visitor who has none, so that
    /// the forms of public pages carry a CSRF token too.
    pub async fn ensure(&self, state: &AppState) -> Result<(WebSession, Option<CookieJar>), ApiError> {
        match &self.session {
            Some(session) => Ok((session.clone(), None)),
            None => {
                let session = accounts::open_session(&state.db, SessionUser::Anonymous, Utc::now()).await?;
                let jar = set_cookie(state, &session.token);
                Ok((session, Some(jar)))
            }
        }
    }

    /// The session of a submitted form, if the form carries its CSRF token.
    pub fn check_csrf(&self, given: &str) -> Result<&WebSession, WebError> {
        match &self.session {
            Some(session) if accounts::same_secret(&session.csrf_token, given) => Ok(session),
            _ => Err(WebError::Forbidden(
                "Ce formulaire a expiré ou ne provient pas de Cachet (jeton de sécurité absent ou invalide) : \
                 rechargez la page et recommencez."
                    .to_owned(),
            )),
        }
    }
}

/// The cookie that carries a session token.
pub fn set_cookie(state: &AppState, token: &str) -> CookieJar {
    let cookie = Cookie::build((COOKIE, token.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.secure_cookies)
        .build();
    CookieJar::new().add(cookie)
}

/// Removes the session cookie.
pub fn clear_cookie() -> CookieJar {
    CookieJar::new().remove(Cookie::build(COOKIE).path("/"))
}
