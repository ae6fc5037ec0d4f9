//! Signed-in browsers of the review page. Signing in trades a bearer token of the tokens file for a session: a
//! random id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` too, unless the server listens on loopback only or
//! `secure_cookies = false`; the token itself never goes back to the browser), held in
//! this server's memory with the caller it stands for and the CSRF token its forms carry. Sessions end when they
//! expire, on sign-out, and when the server stops.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::proposal::tokens::{constant_time_eq, Caller};

/// The session cookie's name.
pub(super) const COOKIE: &str = "pgshadow_session";

/// How long a session lasts after signing in.
pub(super) const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// Who signed in.
    pub caller: Caller,
    /// What every form of this session carries, and the server checks.
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// Whether `given` is this session's CSRF token.
    pub fn csrf_matches(&self, given: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), given.as_bytes())
    }
}

/// The sessions of one server.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `caller`; returns its id.
    pub fn start(&self, caller: Caller) -> String {
        let (id, csrf) = (random_hex(), random_hex());
        let mut sessions = self.by_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(id.clone(), Session { caller, csrf, expires: now + LIFETIME });
        id
    }

    /// The session the request's cookie names, unless it expired.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let sessions = self.by_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.get(&id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// Ends the session the request's cookie names.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.by_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&id);
        }
    }
}

/// The `Set-Cookie` value that gives the browser session `id`: only over HTTP requests to this server's `/ui`,
/// never to scripts, never on requests other sites start; with `secure`, only over HTTPS.
pub(super) fn set_cookie(id: &str, secure: bool) -> String {
    format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}", LIFETIME.as_secs(), flag(secure))
}

/// The `Set-Cookie` value that removes the session cookie.
pub(super) fn clear_cookie(secure: bool) -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{}", flag(secure))
}

fn flag(secure: bool) -> &'static str {
    if secure {
        "; Secure"
    } else {
        ""
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// 32 random bytes from the operating system, in hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    crate::text::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proposal::tokens::Role;

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, cookie.parse().expect("header value"));
        headers
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends() {
        let sessions = Sessions::default();
        let id = sessions.start(Caller { name: "alice".into(), role: Role::Reviewer });
        let request = headers(&format!("other=1; {COOKIE}={id}"));
        let session = sessions.of(&request).expect("signed in");
        assert_eq!(session.caller.name, "alice");
        assert!(session.csrf_matches(&session.csrf.clone()) && !session.csrf_matches("forged"));
        assert!(sessions.of(&headers(&format!("{COOKIE}=forged"))).is_none());
        sessions.end(&request);
        assert!(sessions.of(&request).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_and_strict_and_secure_when_asked() {
        for secure in [false, true] {
            let cookie = set_cookie("abc", secure);
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui"));
            assert_eq!(cookie.ends_with("; Secure"), secure, "{cookie}");
            assert_eq!(clear_cookie(secure).ends_with("; Secure"), secure);
        }
    }
}
