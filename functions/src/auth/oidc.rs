//! OpenID Connect: the service verifies the tokens people sign in with.
//!
//! Configured with an issuer and the audiences it accepts, a [`Verifier`]
//! reads the issuer's discovery document (whose `issuer` must be the one
//! configured), fetches its signing keys (JWKS) and keeps them, fetching them
//! again when a token names a key it does not know (key rotation), at most
//! once per [`REFRESH_MIN_INTERVAL`] so that tokens naming random keys cannot
//! make the service hammer the provider.
//!
//! A token passes when all of these hold, and otherwise is refused with a
//! [`TokenError`] whose `code` the API answers with (401):
//! - its algorithm is one of the asymmetric ones in [`ALGORITHMS`] (never
//!   `none`, never an HMAC: a public key is no shared secret), and the key it
//!   names is of that algorithm's family (and of that algorithm, when the key
//!   says which);
//! - its signature verifies with that key;
//! - `iss` is the issuer, `aud` one of the audiences, `exp` in the future and
//!   `nbf` (when present) in the past, with [`LEEWAY_SECONDS`] of leeway;
//! - it names an `email` that `email_verified` says is verified.
//!
//! `amr` (RFC 8176) says whether the sign-in used a second factor.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use teamform_core::Email;
use tokio::sync::{Mutex, RwLock};

/// The signature algorithms a token may use.
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;

/// The shortest time between two fetches of the key set.
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// How long a fetched key set is used before it is fetched again anyway.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);

/// The `amr` values (RFC 8176) that mean a second factor was used.
const SECOND_FACTORS: &[&str] = &["mfa", "otp", "hwk", "swk", "sms", "totp"];

/// Whether authentication methods include a second factor.
pub fn second_factor<'a>(mut methods: impl Iterator<Item = &'a str>) -> bool {
    methods.any(|m| SECOND_FACTORS.contains(&m))
}

/// Which provider the service trusts, and for whom its tokens must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// Exactly as the provider names itself (`iss`), e.g.
    /// `https://login.example.com` (no trailing slash unless the provider's
    /// own has one).
    pub issuer: String,
    /// The client ids (or API audiences) a token's `aud` may name; the
    /// first is the client id the browser sign-in uses.
    pub audiences: Vec<String>,
    /// The browser sign-in client's secret, for providers that require one
    /// (`TEAMFORM_OIDC_CLIENT_SECRET`); PKCE is used either way.
    pub client_secret: Option<String>,
}

impl OidcConfig {
    /// `TEAMFORM_OIDC_ISSUER` and `TEAMFORM_OIDC_AUDIENCE` (comma separated);
    /// `None` when no issuer is set. An issuer without an audience is an
    /// error: a token for any client of the provider would pass.
    pub fn from_env() -> Result<Option<Self>, OidcConfigError> {
        let issuer = match std::env::var("TEAMFORM_OIDC_ISSUER") {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ => return Ok(None),
        };
        let audiences = std::env::var("TEAMFORM_OIDC_AUDIENCE").unwrap_or_default();
        let mut config = Self::new(&issuer, &audiences)?;
        config.client_secret = std::env::var("TEAMFORM_OIDC_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty());
        Ok(Some(config))
    }

    /// The client id of the browser sign-in.
    pub fn client_id(&self) -> &str {
        self.audiences
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// `audiences`: comma separated.
    pub fn new(issuer: &str, audiences: &str) -> Result<Self, OidcConfigError> {
        let audiences: Vec<String> = audiences
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if audiences.is_empty() {
            return Err(OidcConfigError::NoAudience(issuer.to_owned()));
        }
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|l| {
                issuer
                    .strip_prefix(l)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        if !(issuer.starts_with("https://") || loopback) {
            return Err(OidcConfigError::NotHttps(issuer.to_owned()));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audiences,
            client_secret: None,
        })
    }
}

/// Who a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: Email,
    pub subject: String,
    pub two_factor: bool,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a signed JWT")]
    Malformed,
    #[error("the token's algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("the token names a signing key the provider does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token was issued by another provider")]
    Issuer,
    #[error("the token was issued for another audience")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token names no email address")]
    NoEmail,
    #[error("the token's email address is not verified")]
    EmailUnverified,
    #[error("the token's nonce is not the one this sign-in sent")]
    Nonce,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider could not be reached: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// The problem code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::Algorithm(_) => "token_algorithm",
            TokenError::UnknownKey => "token_unknown_key",
            TokenError::Signature => "token_signature",
            TokenError::Issuer => "token_issuer",
            TokenError::Audience => "token_audience",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::NoEmail => "token_no_email",
            TokenError::EmailUnverified => "email_unverified",
            TokenError::Nonce => "token_nonce",
            TokenError::Refused(_) => "signin_refused",
            TokenError::Unavailable(_) => "identity_provider_unavailable",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
}

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// Verifies tokens of one provider; cheap to share (`Arc`).
pub struct Verifier {
    config: OidcConfig,
    http: reqwest::Client,
    endpoints: RwLock<Option<Endpoints>>,
    keys: RwLock<Option<Keys>>,
    /// One fetch of the key set at a time.
    fetching: Mutex<()>,
    refresh_min_interval: Duration,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Value>,
    #[serde(default)]
    amr: Option<Value>,
    #[serde(default)]
    nonce: Option<String>,
}

impl Verifier {
    pub fn new(config: OidcConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            config,
            http,
            endpoints: RwLock::new(None),
            keys: RwLock::new(None),
            fetching: Mutex::new(()),
            refresh_min_interval: REFRESH_MIN_INTERVAL,
        }
    }

    /// The shortest time between two fetches of the key set (tests).
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_min_interval = interval;
        self
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The provider's endpoints (discovery is read once, then kept).
    pub async fn endpoints(&self) -> Result<Endpoints, TokenError> {
        if let Some(e) = self.endpoints.read().await.as_ref() {
            return Ok(e.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let doc: Discovery = self.get_json(&url).await?;
        if doc.issuer != self.config.issuer {
            return Err(TokenError::Unavailable(format!(
                "the discovery document names issuer {} instead of {}",
                doc.issuer, self.config.issuer
            )));
        }
        let endpoints = Endpoints {
            jwks_uri: doc.jwks_uri,
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
        };
        *self.endpoints.write().await = Some(endpoints.clone());
        Ok(endpoints)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenError> {
        let unavailable = |e: reqwest::Error| TokenError::Unavailable(format!("{url}: {e}"));
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }

    /// The key a token names: from the keys in hand, or, when it is not
    /// among them (or they are old), from a fresh fetch, at most once per
    /// `REFRESH_MIN_INTERVAL`.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, TokenError> {
        {
            let keys = self.keys.read().await;
            if let Some(keys) = keys.as_ref()
                && keys.fetched.elapsed() < KEYS_MAX_AGE
                && let Some(jwk) = find(&keys.set, kid)
            {
                return Ok(jwk);
            }
        }
        let _one = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let recent = {
            let keys = self.keys.read().await;
            if let Some(keys) = keys.as_ref() {
                if let Some(jwk) = find(&keys.set, kid)
                    && keys.fetched.elapsed() < KEYS_MAX_AGE
                {
                    return Ok(jwk);
                }
                keys.fetched.elapsed() < self.refresh_min_interval
            } else {
                false
            }
        };
        if recent {
            return Err(TokenError::UnknownKey);
        }
        let endpoints = self.endpoints().await?;
        let set: JwkSet = self.get_json(&endpoints.jwks_uri).await?;
        let found = find(&set, kid);
        *self.keys.write().await = Some(Keys {
            set,
            fetched: Instant::now(),
        });
        found.ok_or(TokenError::UnknownKey)
    }

    /// Verifies a token and says whom it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        self.verify_claims(token)
            .await
            .map(|(identity, _)| identity)
    }

    /// Verifies the ID token of a sign-in this service started: as
    /// `verify`, and its `nonce` must be the one sent.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<Identity, TokenError> {
        let (identity, sent) = self.verify_claims(token).await?;
        let matches = sent.is_some_and(|sent| {
            subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), nonce.as_bytes()).into()
        });
        if matches {
            Ok(identity)
        } else {
            Err(TokenError::Nonce)
        }
    }

    /// The authorization code flow's second leg: trades a code (with its
    /// PKCE verifier) for the ID token at the provider's token endpoint.
    pub async fn exchange(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, TokenError> {
        let endpoints = self.endpoints().await?;
        let url = endpoints.token_endpoint.ok_or_else(|| {
            TokenError::Unavailable("the provider names no token endpoint".into())
        })?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", code_verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", self.config.client_id()),
        ];
        if let Some(secret) = self.config.client_secret.as_deref() {
            form.push(("client_secret", secret));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(format!("{url}: {e}")))?;
        let status = r.status();
        let answer: Value = r
            .json()
            .await
            .map_err(|e| TokenError::Unavailable(format!("{url}: {e}")))?;
        if !status.is_success() {
            let error = answer["error"].as_str().unwrap_or("error");
            return Err(TokenError::Refused(error.chars().take(100).collect()));
        }
        answer["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| TokenError::Refused("no id_token in the answer".into()))
    }

    async fn verify_claims(&self, token: &str) -> Result<(Identity, Option<String>), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            // A header naming an algorithm nobody implements (`none`) says so.
            match algorithm_name(token) {
                Some(name) if name.parse::<Algorithm>().is_err() => TokenError::Algorithm(name),
                _ => TokenError::Malformed,
            }
        })?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        if let Some(alg) = jwk.common.key_algorithm
            && format!("{alg:?}") != format!("{:?}", header.alg)
        {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::Signature,
                K::InvalidIssuer => TokenError::Issuer,
                K::InvalidAudience => TokenError::Audience,
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                    TokenError::Algorithm(format!("{:?}", header.alg))
                }
                K::MissingRequiredClaim(claim) if claim == "aud" => TokenError::Audience,
                K::MissingRequiredClaim(claim) if claim == "iss" => TokenError::Issuer,
                _ => TokenError::Malformed,
            }
        })?;
        let claims = data.claims;
        let verified = match &claims.email_verified {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let email = claims.email.as_deref().ok_or(TokenError::NoEmail)?;
        if !verified {
            return Err(TokenError::EmailUnverified);
        }
        let email = Email::parse(email).map_err(|_| TokenError::NoEmail)?;
        let two_factor = match &claims.amr {
            Some(Value::Array(methods)) => second_factor(methods.iter().filter_map(Value::as_str)),
            Some(Value::String(one)) => second_factor(std::iter::once(one.as_str())),
            _ => false,
        };
        Ok((
            Identity {
                email,
                subject: claims.sub,
                two_factor,
            },
            claims.nonce,
        ))
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn find(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        // Without a key id, only a set of one key says which key it is.
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

/// The `alg` a token's header names, read without trusting anything else
/// in it (for the error about an algorithm jsonwebtoken does not know).
fn algorithm_name(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value["alg"].as_str().map(|s| s.chars().take(20).collect())
}

/// A sign-in configuration the service refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum OidcConfigError {
    #[error(
        "the OpenID Connect issuer {0} needs an audience (TEAMFORM_OIDC_AUDIENCE, the client id its tokens are issued to)"
    )]
    NoAudience(String),
    #[error(
        "the OpenID Connect issuer must be an https URL (http only on a loopback host), not {0}"
    )]
    NotHttps(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_factors_are_named_by_amr() {
        assert!(second_factor(["pwd", "mfa"].into_iter()));
        assert!(second_factor(["otp"].into_iter()));
        assert!(!second_factor(["pwd"].into_iter()));
        assert!(!second_factor(std::iter::empty()));
    }

    #[test]
    fn an_issuer_needs_an_audience_and_https() {
        assert!(OidcConfig::new("https://id.example.com", "").is_err());
        assert!(OidcConfig::new("http://id.example.com", "teamform").is_err());
        assert!(OidcConfig::new("http://127.0.0.1.example.com", "teamform").is_err());
        assert!(OidcConfig::new("http://localhost:8080", "teamform").is_ok());
        let c = OidcConfig::new("http://127.0.0.1:9000", "teamform, cli").unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert_eq!(c.audiences, ["teamform", "cli"]);
    }

    #[test]
    fn the_none_algorithm_is_named_in_the_error() {
        // {"alg":"none"}.{"sub":"x"}.
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert_eq!(algorithm_name(token).as_deref(), Some("none"));
        assert_eq!(algorithm_name("garbage"), None);
    }
}
