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
    // An IPv4 client of a server listening on `[::]` arrives as `::ffff:a.b.c.d`.
    let peer = peer?.to_canonical();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|hop| hop.trim().parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()))
        .collect::<Result<_, _>>()
        // A hop that is not an address (a port, « unknown »): trust nothing further left.
        .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::client_address;
    use axum::http::HeaderMap;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("a header"));
        headers
    }

    #[test]
    fn the_header_is_believed_from_a_trusted_proxy_only() {
        let trusted = [ip("10.0.0.1")];
        let headers = forwarded("198.51.100.7, 203.0.113.5");
        assert_eq!(client_address(Some(ip("10.0.0.1")), &headers, &trusted), Some(ip("203.0.113.5")));
        assert_eq!(client_address(Some(ip("192.0.2.9")), &headers, &trusted), Some(ip("192.0.2.9")));
        assert_eq!(client_address(Some(ip("10.0.0.1")), &HeaderMap::new(), &trusted), Some(ip("10.0.0.1")));
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_its_ipv4_proxy_and_a_garbled_header_trusts_nothing() {
        let trusted = [ip("10.0.0.1")];
        let mapped = Some(ip("::ffff:10.0.0.1"));
        assert_eq!(client_address(mapped, &forwarded("203.0.113.5"), &trusted), Some(ip("203.0.113.5")));
        assert_eq!(client_address(mapped, &forwarded("203.0.113.5, unknown"), &trusted), Some(ip("10.0.0.1")));
    }
}
