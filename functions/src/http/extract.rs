//! Extractors: what a handler takes from a request, each refusing with a
//! problem+json `ApiError` (never axum's plain-text rejections).

use axum::extract::{FromRequest, FromRequestParts, RawPathParams};
use axum::http::{StatusCode, header, request::Parts};
use serde_json::Value;
use teamform_core::{Email, RoleName, TeamId};

use super::error::{ApiError, body_shape_error, field, json_kind};
use super::{Anonymous, AppState};
use crate::auth::Principal;
use crate::code;
use crate::service::ServiceError;

/// A JSON object body whose rejection is a problem+json `ApiError`.
///
/// Every request body of this API is an object. serde's derived structs also
/// read a JSON array positionally (`[]` would be a settings body with every
/// field defaulted), so the body is parsed first, refused unless it is an
/// object, and only then read as `T`, with the path of any field that does
/// not fit.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(body_shape_error(format!(
                "the body must be a JSON object, found {}",
                json_kind(&value)
            )));
        }
        serde_path_to_error::deserialize(value)
            .map(Body)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = if path == "." {
                    e.inner().to_string()
                } else {
                    format!("{path}: {}", e.inner())
                };
                body_shape_error(message)
            })
    }
}

/// A query string whose rejection is a problem+json `ApiError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

/// The authenticated principal of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A layer that already authenticated the request (idempotency) left
        // its principal here: one look-up per request.
        if let Some(Authenticated(who)) = parts.extensions.get::<Authenticated>() {
            return Ok(Caller(who.clone()));
        }
        Ok(Caller(authenticate(parts, state).await?))
    }
}

/// The principal of a request authenticated before its handler ran.
#[derive(Clone)]
pub(crate) struct Authenticated(pub Principal);

/// Resolves the credential of a request. The scheme name is matched
/// case-insensitively (RFC 9110); the one anonymous principal is the local
/// owner of the in-process host, which has no socket.
pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| ServiceError::Unauthenticated)?;
        let token = text
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match token {
            Some(t) if t.starts_with("tfk_") || t.starts_with("tfp_") => {
                return Ok(state.service.authenticate(t).await?);
            }
            // A JWT that API Gateway verified: its claims arrive in the
            // Lambda request context below.
            _ if jwt_person(parts).is_some() => {}
            // A JWT the service verifies itself, on any host configured with
            // an issuer.
            Some(t) if state.oidc.is_some() => {
                let verifier = state.oidc.as_ref().ok_or(ServiceError::Unauthenticated)?;
                return match verifier.verify(t).await {
                    Ok(identity) => Ok(Principal::Person {
                        email: identity.email,
                        two_factor: identity.two_factor,
                    }),
                    Err(e @ crate::auth::oidc::TokenError::Unavailable(_)) => {
                        tracing::warn!(error = %e, "the identity provider is unavailable");
                        Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            e.code(),
                            "the identity provider could not be reached; try again shortly",
                        ))
                    }
                    Err(e) => Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        e.code(),
                        e.to_string(),
                    )),
                };
            }
            _ => {}
        }
    }
    if let Some(person) = jwt_person(parts) {
        return Ok(person);
    }
    match state.anonymous {
        Anonymous::LocalOwner if !parts.headers.contains_key(header::AUTHORIZATION) => {
            Ok(Principal::LocalOwner)
        }
        _ => Err(ServiceError::Unauthenticated.into()),
    }
}

/// The person of an API Gateway JWT authorizer's claims, when the request
/// came through Lambda. Unverified emails are not identities. The `amr` claim
/// (RFC 8176) says whether the sign-in used a second factor.
#[cfg(feature = "aws")]
fn jwt_person(parts: &Parts) -> Option<Principal> {
    use lambda_http::request::RequestContext;
    let ctx = parts.extensions.get::<RequestContext>()?;
    let RequestContext::ApiGatewayV2(ctx) = ctx else {
        return None;
    };
    let claims = &ctx.authorizer.as_ref()?.jwt.as_ref()?.claims;
    let verified = claims.get("email_verified").is_some_and(|v| v == "true");
    if !verified {
        return None;
    }
    let email = Email::parse(claims.get("email")?).ok()?;
    // API Gateway flattens array claims to text like `[pwd mfa]`.
    let two_factor = claims.get("amr").is_some_and(|amr| {
        crate::auth::oidc::second_factor(amr.split(|c: char| !c.is_ascii_alphanumeric()))
    });
    Some(Principal::Person { email, two_factor })
}

/// Without the Lambda runtime no request comes through API Gateway.
#[cfg(not(feature = "aws"))]
fn jwt_person(_parts: &Parts) -> Option<Principal> {
    None
}

/// One parameter of the request's path, by its name in the route.
async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|r| match r.status() {
            s if s.is_server_error() => ApiError::internal(&r.body_text()),
            s => ApiError::new(s, code::BAD_REQUEST, r.body_text()),
        })?;
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .ok_or_else(|| ApiError::internal(&format!("the route has no `{name}` parameter")))
}

/// A path parameter that names something in the service, read by `parse`.
/// A value that does not parse names nothing: the same answer (404) as a
/// name that exists nowhere, so a malformed one teaches a caller nothing.
macro_rules! naming_param {
    ($(#[$doc:meta])* $name:ident($ty:ty) = $param:literal by $parse:path) => {
        $(#[$doc])*
        pub struct $name(pub $ty);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let raw = path_param(parts, state, $param).await?;
                $parse(&raw).map($name).map_err(|_| ApiError::not_found())
            }
        }
    };
}

naming_param!(
    /// The `{team}` of the path.
    TeamPath(TeamId) = "team" by TeamId::parse
);
naming_param!(
    /// The `{email}` of the path: a member or an invitation.
    EmailPath(Email) = "email" by Email::parse
);
naming_param!(
    /// The `{name}` of an existing role in the path.
    RolePath(RoleName) = "name" by RoleName::parse
);

/// The `{name}` of a role a request creates or replaces: a malformed name
/// is a bad request body's kind of mistake (422), not a missing role.
pub struct NewRolePath(pub RoleName);

impl<S: Send + Sync> FromRequestParts<S> for NewRolePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "name").await?;
        RoleName::parse(&raw)
            .map(NewRolePath)
            .map_err(|e| ApiError::validation("bad role name", vec![field("name", e)]))
    }
}

/// The `{id}` of a key or token in the path, as given.
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        path_param(parts, state, "id").await.map(IdPath)
    }
}

/// `If-Match: "5"` (or `W/"5"`, or `5`) as the version the caller expects;
/// `None` without the header or with `*`. Anything else is 400 `bad_if_match`.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if_match(&parts.headers).map(IfMatch)
    }
}

fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    // Exactly what the document's pattern says: `"5"`, `W/"5"` or `5`, with
    // 1 to 19 digits (always a u64); nothing else passes for a version.
    let weak = text.strip_prefix("W/").unwrap_or(text);
    let bare = match weak.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted,
        None if weak.len() == text.len() => text,
        None => "",
    };
    let digits = (1..=19).contains(&bare.len()) && bare.bytes().all(|b| b.is_ascii_digit());
    match bare.parse::<u64>() {
        Ok(version) if digits => Ok(Some(version)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::BAD_IF_MATCH,
            "If-Match must be the team's ETag, a version like \"5\"",
        )),
    }
}
