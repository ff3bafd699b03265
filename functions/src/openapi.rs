//! The OpenAPI 3.1 description of the HTTP API, served at `GET /openapi.json`.
//!
//! Each operation is described by `#[utoipa::path]` on its handler in
//! [`crate::http`], and [`crate::http::routes`] builds the router from those
//! same annotations (`utoipa_axum::routes!`): a route is served exactly where
//! it is documented. This module holds the frame of the document (info,
//! security schemes, tags) and the schemas of the types that carry no
//! annotation: `teamform-core` does not depend on utoipa, and the views of
//! the service, credential and auth modules are described here. Those schemas
//! mirror the serde shape of the real types; `tests/openapi.rs` checks real
//! responses against them, so a drift fails the tests.

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

/// Fails to build when `Change` gains a variant: describe it in
/// [`schema::Change`] too (the tests check each documented variant against
/// the real type).
#[allow(dead_code)]
fn change_op(change: &teamform_core::Change) -> &'static str {
    use teamform_core::Change as C;
    match change {
        C::CreateTeam { .. } => "create_team",
        C::RenameTeam { .. } => "rename_team",
        C::CreateRole { .. } => "create_role",
        C::UpdateRole { .. } => "update_role",
        C::DeleteRole { .. } => "delete_role",
        C::UpdateSettings { .. } => "update_settings",
        C::Invite { .. } => "invite",
        C::Reinvite { .. } => "reinvite",
        C::ChangeInvitationRoles { .. } => "change_invitation_roles",
        C::ChangeRoles { .. } => "change_roles",
        C::RevokeInvitation { .. } => "revoke_invitation",
        C::RemoveMember { .. } => "remove_member",
        C::TransferOwnership { .. } => "transfer_ownership",
    }
}

/// Schemas of types that carry no utoipa annotation, mirroring their JSON.
/// Documentation only: nothing is (de)serialized through them.
pub mod schema {
    use std::collections::BTreeMap;

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

    /// A role a team defined for itself.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct CustomRole {
        #[serde(default)]
        pub description: String,
        /// Permission ids of the catalog.
        #[schema(value_type = Vec<String>, example = json!(["team.members.read"]))]
        pub permissions: Vec<String>,
    }

    /// Team settings.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Settings {
        /// Members must sign in with a second factor.
        #[serde(default)]
        pub require_2fa: bool,
        /// Days an invitation stays valid, 1 to 365 (default 15).
        #[serde(default)]
        #[schema(minimum = 1, maximum = 365, default = 15)]
        pub invitation_ttl_days: u32,
        /// Members plus pending invitations, 1 to 1000000; null is no limit.
        #[serde(default)]
        #[schema(minimum = 1, maximum = 1_000_000)]
        pub seat_limit: Option<u32>,
    }

    /// One change of a batch; `op` says which.
    #[derive(ToSchema)]
    #[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
    pub enum Change {
        /// Creates the team with its owner (only as the first change of a batch).
        #[schema(title = "CreateTeam")]
        CreateTeam {
            display_name: String,
            #[schema(format = Email)]
            owner: String,
        },
        #[schema(title = "RenameTeam")]
        RenameTeam { from: String, to: String },
        #[schema(title = "CreateRole")]
        CreateRole { name: String, role: CustomRole },
        #[schema(title = "UpdateRole")]
        UpdateRole {
            name: String,
            from: CustomRole,
            to: CustomRole,
        },
        #[schema(title = "DeleteRole")]
        DeleteRole { name: String, role: CustomRole },
        #[schema(title = "UpdateSettings")]
        UpdateSettings { from: Settings, to: Settings },
        #[schema(title = "Invite")]
        Invite {
            #[schema(format = Email)]
            email: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            name: Option<String>,
            roles: Vec<String>,
        },
        /// A new link for an invitation that expired.
        #[schema(title = "Reinvite")]
        Reinvite {
            #[schema(format = Email)]
            email: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            name: Option<String>,
            roles: Vec<String>,
            #[schema(format = DateTime)]
            expired_at: String,
        },
        #[schema(title = "ChangeInvitationRoles")]
        ChangeInvitationRoles {
            #[schema(format = Email)]
            email: String,
            from: Vec<String>,
            to: Vec<String>,
        },
        #[schema(title = "ChangeRoles")]
        ChangeRoles {
            #[schema(format = Email)]
            email: String,
            from: Vec<String>,
            to: Vec<String>,
        },
        #[schema(title = "RevokeInvitation")]
        RevokeInvitation {
            #[schema(format = Email)]
            email: String,
            roles: Vec<String>,
            #[schema(format = DateTime)]
            created_at: String,
        },
        #[schema(title = "RemoveMember")]
        RemoveMember {
            #[schema(format = Email)]
            email: String,
            roles: Vec<String>,
        },
        /// Starts the two-step transfer; it completes when both people confirm.
        #[schema(title = "TransferOwnership")]
        TransferOwnership {
            #[schema(format = Email)]
            from: String,
            #[schema(format = Email)]
            to: String,
        },
    }

    /// Options of one batch.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BatchOptions {
        /// Let a person remove their own membership in this batch.
        #[serde(default)]
        pub allow_self_removal: bool,
    }

    /// A person's membership of a team.
    #[derive(ToSchema)]
    pub struct Membership {
        pub team: String,
        /// The person's roles, where the answer knows them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub roles: Option<Vec<String>>,
        /// The team's version after the operation, where there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<u64>,
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

    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Member {
        #[schema(format = Email)]
        pub email: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        pub roles: Vec<String>,
        #[schema(format = DateTime)]
        pub joined_at: String,
        /// Whether the member signs in with a second factor.
        #[serde(default)]
        pub two_factor: bool,
    }

    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Invitation {
        #[schema(format = Email)]
        pub email: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        pub roles: Vec<String>,
        #[schema(format = DateTime)]
        pub created_at: String,
        #[schema(format = DateTime)]
        pub expires_at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub invited_by: Option<String>,
        /// Names the invitation's current link (not a secret): older links are dead.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub link: String,
    }

    /// An ownership transfer that has started and waits for confirmations.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PendingTransfer {
        #[schema(format = Email)]
        pub from: String,
        #[schema(format = Email)]
        pub to: String,
        #[schema(format = DateTime)]
        pub started_at: String,
        #[schema(format = DateTime)]
        pub expires_at: String,
        /// The current owner confirmed (step one).
        #[serde(default)]
        pub owner_confirmed: bool,
        /// Names the transfer's current link (not a secret).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub link: String,
    }

    /// A snapshot of one team; `version` is also its `ETag`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TeamState {
        pub team: String,
        pub display_name: String,
        #[schema(format = Email)]
        pub owner: String,
        pub settings: Settings,
        /// Every member by email, the owner included (holding the role `owner`).
        pub members: BTreeMap<String, Member>,
        /// Pending invitations by email.
        pub invitations: BTreeMap<String, Invitation>,
        /// The team's own roles by name.
        pub roles: BTreeMap<String, CustomRole>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub transfer: Option<PendingTransfer>,
        /// Bumped by every mutation.
        pub version: u64,
    }

    #[derive(ToSchema)]
    pub struct PermissionDef {
        pub id: String,
        /// How the product names it.
        pub label: String,
        /// A permission of the team service itself (rather than of the product).
        pub service: bool,
    }

    /// A team's roles: the catalog's system roles and the team's own.
    #[derive(ToSchema)]
    pub struct RolesView {
        pub system: Vec<RoleDef>,
        /// Custom roles by name.
        pub custom: std::collections::BTreeMap<String, CustomRole>,
    }

    #[derive(ToSchema)]
    pub struct RoleDef {
        pub name: String,
        pub description: String,
        pub permissions: Vec<String>,
    }

    /// A deployment's permissions and system roles.
    #[derive(ToSchema)]
    pub struct Catalog {
        pub name: String,
        pub description: String,
        /// Service permissions first, then the catalog's own, in declared order.
        pub permissions: Vec<PermissionDef>,
        /// System roles in declared order, `owner` first.
        pub roles: Vec<RoleDef>,
        /// Whether a member may hold several roles at once.
        pub multiple_roles: bool,
        /// Whether teams may define their own roles.
        pub custom_roles: bool,
        /// The role a previous owner holds after a transfer.
        pub previous_owner_role: String,
    }

    /// A member or a pending invitation.
    #[derive(ToSchema)]
    pub struct MemberView {
        pub email: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        pub roles: Vec<String>,
        pub status: MemberStatus,
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
        /// Who did it (an email, `api_key:<id>` or the local owner).
        pub actor: String,
        /// The change's `op`, or the operation (e.g. `create_api_key`).
        pub action: String,
        /// The change as sent (see `Change`), or the operation's details.
        #[schema(value_type = Object)]
        pub change: serde_json::Value,
        /// The team's version after it.
        pub version: u64,
    }

    #[derive(ToSchema)]
    pub struct ApiKeyView {
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
        /// Who created it.
        pub created_by: String,
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

    #[derive(ToSchema)]
    pub struct TokenView {
        pub id: String,
        pub name: String,
        #[schema(format = DateTime)]
        pub created_at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(format = DateTime)]
        pub expires_at: Option<String>,
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
