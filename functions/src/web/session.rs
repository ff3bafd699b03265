//! Browser sessions: cookies, the sign-in round trip's state, and CSRF.
//!
//! A session is a personal access token (`tfp_`, random, stored hashed,
//! compared in constant time, listed under `GET /me/tokens` where it can be
//! revoked) made for the person an ID token named, valid for
//! [`SESSION_HOURS`]. The cookie holds `{id}.{secret}`: `HttpOnly`,
//! `SameSite=Lax`, `Secure` when the public URL is https. API routes never
//! read cookies, so a page on another site cannot spend a session on them.
//!
//! Every form carries a CSRF token derived from the session's secret (a hash
//! under a fixed label), checked in constant time: a form posted from
//! elsewhere cannot know it.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::Principal;
use crate::service::Service;

/// The session cookie.
pub const SESSION_COOKIE: &str = "tf_session";
/// The sign-in round trip's state (state, nonce, PKCE verifier, return path).
pub const SIGNIN_COOKIE: &str = "tf_signin";
/// How long a browser session lasts.
pub const SESSION_HOURS: i64 = 12;
/// How long a sign-in may take at the provider.
pub const SIGNIN_SECONDS: i64 = 600;

/// A signed-in person in a browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The token id (to end the session).
    pub id: String,
    secret: String,
}

impl Session {
    /// The CSRF token of this session's forms.
    pub fn csrf(&self) -> String {
        csrf_of(&self.secret)
    }

    /// Whether a form's CSRF token is this session's.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        self.csrf().as_bytes().ct_eq(sent.as_bytes()).into()
    }

    /// The person's email, as written.
    pub fn email(&self) -> String {
        match &self.principal {
            Principal::Person { email, .. } => email.to_string(),
            _ => String::new(),
        }
    }
}

fn csrf_of(secret: &str) -> String {
    let digest = Sha256::digest(format!("teamform-csrf\0{secret}").as_bytes());
    hex::encode(&digest[..16])
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The session a request's cookie names, if it is a live one.
pub async fn session(service: &Service, headers: &HeaderMap) -> Option<Session> {
    let raw = cookie(headers, SESSION_COOKIE)?;
    let (id, secret) = raw.split_once('.')?;
    match service.authenticate(secret).await {
        Ok(principal @ Principal::Person { .. }) => Some(Session {
            principal,
            id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => None,
    }
}

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `len` random bytes, base64url.
pub fn random(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What the sign-in cookie carries between `/signin` and `/auth/callback`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub return_to: String,
}

impl SignIn {
    pub fn new(return_to: &str) -> Self {
        Self {
            state: random(16),
            nonce: random(16),
            verifier: random(32),
            return_to: local_path(return_to).to_owned(),
        }
    }

    pub fn encode(&self) -> String {
        let path = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.return_to);
        format!("{}.{}.{}.{path}", self.state, self.nonce, self.verifier)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (state, nonce, verifier, path) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let path = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(path)
            .ok()?;
        let path = String::from_utf8(path).ok()?;
        Some(Self {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
            return_to: local_path(&path).to_owned(),
        })
    }

    /// Whether the provider returned this sign-in's state.
    pub fn state_ok(&self, sent: &str) -> bool {
        self.state.as_bytes().ct_eq(sent.as_bytes()).into()
    }
}

/// A path on this site to return to after signing in: anything else (an
/// absolute URL, `//host`, a backslash trick) is the home page, so the
/// sign-in cannot be used to send people elsewhere.
pub fn local_path(path: &str) -> &str {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control);
    if ok { path } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/ui/teams/acme"), "/ui/teams/acme");
        assert_eq!(local_path("/join?token=x"), "/join?token=x");
        for evil in [
            "https://evil.io",
            "//evil.io",
            "/\\evil.io",
            "evil",
            "/a\r\nb",
            "",
        ] {
            assert_eq!(local_path(evil), "/", "{evil:?}");
        }
    }

    #[test]
    fn sign_in_state_round_trips_through_its_cookie() {
        let s = SignIn::new("/ui/teams/acme?x=1");
        assert_eq!(SignIn::decode(&s.encode()), Some(s.clone()));
        assert!(s.state_ok(&s.state));
        assert!(!s.state_ok("forged"));
        assert!(SignIn::decode("a.b").is_none());
        // 128 bits of state and nonce, 256 of PKCE verifier.
        assert_eq!(s.state.len(), 22);
        assert_eq!(s.verifier.len(), 43);
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tf_session=id.secret; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("id.secret"));
        assert_eq!(cookie(&h, "c"), None);
        let set = set_cookie(SESSION_COOKIE, "v", 60, true);
        let set = set.to_str().unwrap_or_default();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"));
    }
}
