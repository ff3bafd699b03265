//! The OpenAPI 3.1 description of the HTTP API, served at `GET /openapi.json`.
//!
//! Each operation is described by `#[utoipa::path]` on its handler in
//! [`crate::http`], and [`crate::http::routes`] builds the router from those
//! same annotations (`utoipa_axum::routes!`): a route is served exactly where
//! it is documented. The schemas come from the types themselves: the domain
//! types of `teamform-core` derive them (its feature `openapi`), the views of
//! the credential, lifecycle and resource modules too. This module holds the
//! frame of the document (info, security schemes, tags) and, in [`schema`],
//! the few shapes no type of this crate's own can carry: problem details,
//! answers built as JSON, and the views of the service module.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The frame of the document; `api::routes` adds every operation to it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "teamform",
        version = env!("CARGO_PKG_VERSION"),
        description = "The teamform team service: teams, their members, roles and invitations, \
            changed in versioned batches, plus API keys and personal tokens.\n\n\
            Errors are `application/problem+json` documents (`Problem`) with a stable `code`. \
            Team state carries an `ETag` (its version); send it back as `If-Match` on \
            `POST /teams/{team}/changes` to apply a batch only to the state you planned against. \
            Every `POST` accepts an `Idempotency-Key`: a retry with the same key and request \
            replays the first successful response for 24 hours.\n\n\
            A team whose settings require 2FA answers 403 `two_factor_required` to a person \
            whose sign-in had no second factor (the JWT's `amr` claim, or a personal token \
            made from such a sign-in); API keys are not people and are not affected.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(schema::Problem, crate::http::FieldError)),
    tags(
        (name = "meta", description = "Service health, catalog and this document"),
        (name = "me", description = "The caller and their personal access tokens"),
        (name = "teams", description = "Teams, their state, members, changes and audit trail"),
        (name = "api-keys", description = "A team's API keys (machine credentials)"),
        (name = "scim", description = "SCIM tokens: the credential of an identity provider provisioning people through `/scim/v2/{team}`"),
        (name = "lifecycle", description = "Invitation links, leaving, and the two-step ownership transfer"),
        (name = "people", description = "Invitations, roles and removals, one person at a time")
    )
)]
pub struct ApiDoc;

/// Security scheme names used by the operations.
pub const BEARER: &str = "bearer";
pub const GATEWAY_JWT: &str = "gateway_jwt";

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tfk_… (API key) or tfp_… (personal token)")
                    .description(Some(
                        "`Authorization: Bearer <secret>` with an API key (`tfk_…`, acting for \
                         one team with the roles it was given) or a personal access token \
                         (`tfp_…`, acting as the person who made it). Secrets are shown once, \
                         when created. The team routes (`/teams/{team}/…`) take only these, \
                         everywhere. In AWS the other routes (`POST /teams`, `/me`, \
                         `/me/tokens…`) sit behind API Gateway's JWT authorizer and take a JWT \
                         instead (`gateway_jwt`); `teamform serve` takes these credentials on \
                         every route. The in-process host of the CLI also accepts requests \
                         without a credential, as the local owner.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            GATEWAY_JWT,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "In AWS only: a JWT of the configured identity provider on the routes \
                         that are not team routes (`POST /teams`, `/me`, `/me/tokens…`). API \
                         Gateway's JWT authorizer verifies it (signature, `iss`, `aud`, expiry) \
                         before the request reaches the service, which takes the verified \
                         `email` claim as the caller when `email_verified` is true. A person \
                         uses it to make a personal token (`POST /me/tokens`) for the team \
                         routes, which have no gateway authorizer.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document: the frame plus every operation of the router.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::http::routes().into_openapi()
}

/// The document as pretty JSON, built once per process.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"the document failed to render: {e}\"}}"))
    })
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this service", body = Object, content_type = "application/json")
    )
)]
pub async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

/// Shapes that no annotated type carries, mirroring their JSON; the tests
/// check real answers against them. Documentation only: nothing is
/// (de)serialized through them.
pub mod schema {

    use utoipa::ToSchema;

    use crate::http::FieldError;

    /// An error (RFC 9457 problem details), sent as `application/problem+json`.
    #[derive(ToSchema)]
    pub struct Problem {
        /// `urn:teamform:problem:<code>`.
        #[serde(rename = "type")]
        #[schema(example = "urn:teamform:problem:not_found")]
        pub kind: String,
        /// The reason phrase of the status.
        #[schema(example = "Not Found")]
        pub title: String,
        /// The HTTP status.
        #[schema(example = 404)]
        pub status: u16,
        /// Stable machine-readable code, e.g. `not_found`, `unauthenticated`, `forbidden`,
        /// `validation_failed`, `version_conflict`, `already_member`, `method_not_allowed`.
        #[schema(example = "not_found")]
        pub code: String,
        /// What went wrong, for people.
        #[schema(example = "no such resource")]
        pub detail: String,
        /// Field-level problems of a request (`validation_failed`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub errors: Option<Vec<FieldError>>,
        /// `version_conflict`: the version the request expected.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub expected_version: Option<u64>,
        /// `version_conflict`: the version the team is at.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub current_version: Option<u64>,
        /// A refused change: its index in the batch.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub change_index: Option<u64>,
        /// A refused change: its `op`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub action: Option<String>,
    }

    /// Options of one batch.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BatchOptions {
        /// Let a person remove their own membership in this batch.
        #[serde(default)]
        pub allow_self_removal: bool,
    }

    /// The result of a batch.
    #[derive(ToSchema)]
    pub struct Applied {
        pub team: String,
        /// The team's version after the batch (also its `ETag`).
        pub version: u64,
        /// How many changes were applied.
        pub applied: u64,
    }

    /// A member or a pending invitation.
    #[derive(ToSchema)]
    pub struct MemberView {
        pub email: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        pub roles: Vec<String>,
        pub status: MemberStatus,
        /// Pending invitations: when the current link was sent.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(format = DateTime)]
        pub invited_at: Option<String>,
        /// Pending invitations: when the invitation expires.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(format = DateTime)]
        pub expires_at: Option<String>,
        /// Pending invitations: whether it has expired.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub expired: Option<bool>,
        /// `email` or `email+2fa`; only for callers holding
        /// `team.members.signin_method.read`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub signin_method: Option<String>,
    }

    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum MemberStatus {
        Joined,
        Pending,
    }

    /// One audit record: a change or a team-level operation.
    #[derive(ToSchema)]
    pub struct AuditEntry {
        /// Cursor-ordered id of the record.
        pub id: String,
        #[schema(format = DateTime)]
        pub at: String,
        /// Who did it (an email, `api_key:<id>`, the local owner, or
        /// `system:expiry` for an invitation expiry the sweep recorded).
        pub actor: String,
        /// The change's `op`, or the operation (e.g. `create_api_key`).
        pub action: String,
        /// The change as sent (see `Change`), or the operation's details.
        #[schema(value_type = Object)]
        pub change: serde_json::Value,
        /// The team's version after it.
        pub version: u64,
        /// The actor's kind: `person`, `api_key`, `local_owner`, `system`
        /// (the expiry sweep) (absent in records older than the field).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub actor_kind: Option<String>,
        /// The request the change was made in (its `x-request-id`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_id: Option<String>,
        /// `api`, `page` (the team pages), `apply` (`teamform apply`) or
        /// `sweep` (an invitation expiry the sweep recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source: Option<String>,
        /// What `teamform apply --source` said (`commit abc123`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_note: Option<String>,
    }

    /// A new API key with its secret, shown this once.
    #[derive(ToSchema)]
    pub struct CreatedApiKey {
        pub id: String,
        pub name: String,
        pub roles: Vec<String>,
        /// Permissions the key holds directly, besides its roles (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub permissions: Vec<String>,
        #[schema(format = DateTime)]
        pub created_at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(format = DateTime)]
        pub expires_at: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(format = DateTime)]
        pub last_used_at: Option<String>,
        pub created_by: String,
        /// The `tfk_…` secret; null in an `Idempotency-Key` replay.
        #[schema(required = true)]
        pub secret: Option<String>,
        /// Set in an `Idempotency-Key` replay instead of the secret.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub secret_note: Option<String>,
    }

    /// A new personal access token with its secret, shown this once.
    #[derive(ToSchema)]
    pub struct CreatedToken {
        pub id: String,
        pub name: String,
        #[schema(format = DateTime)]
        pub created_at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(format = DateTime)]
        pub expires_at: Option<String>,
        /// The `tfp_…` secret; null in an `Idempotency-Key` replay.
        #[schema(required = true)]
        pub secret: Option<String>,
        /// Set in an `Idempotency-Key` replay instead of the secret.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub secret_note: Option<String>,
    }

    /// Who the caller is.
    #[derive(ToSchema)]
    pub struct PrincipalView {
        pub kind: PrincipalKind,
        /// A person's email.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
        /// An API key's team.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub team: Option<String>,
    }

    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum PrincipalKind {
        LocalOwner,
        Person,
        ApiKey,
    }

    #[derive(ToSchema)]
    pub struct Health {
        #[schema(example = "ok")]
        pub status: String,
    }

    /// Whether the caller holds a permission in a team.
    #[derive(ToSchema)]
    pub struct PermissionCheck {
        pub permission: String,
        pub allowed: bool,
    }
}
