//! OpenAPI pieces shared by the routes: the problems most operations can
//! answer and the parameters most of them take, written once. A handler's
//! `#[utoipa::path]` lists these by name (`responses(..., Unauthenticated,
//! Internal)`, `params(TeamPath, IfMatch)`) and spells out only its own
//! outcomes.

use std::collections::BTreeMap;

use serde_json::json;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses};

use super::extract::{EmailPath, IfMatch, RolePath, TeamPath};

/// The pattern of a team id, as `TeamId::parse` accepts it.
pub const TEAM_PATTERN: &str = teamform_core::TeamId::PATTERN;
/// The forms of `If-Match` the service reads as a version.
pub const IF_MATCH_PATTERN: &str = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$";
/// 1 to 255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]+$";

/// A response whose body is a `Problem`.
fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn problems(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| ((*status).to_owned(), problem(description)))
        .collect()
}

/// 401 `unauthenticated`: every operation that needs a credential.
pub struct Unauthenticated;

impl IntoResponses for Unauthenticated {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[(
            "401",
            "`unauthenticated`: missing, unknown, expired or revoked credential",
        )])
    }
}

/// 500 `internal`: every operation that reaches a store.
pub struct Internal;

impl IntoResponses for Internal {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[("500", "`internal`: the service failed; the cause is logged")])
    }
}

/// 413 and 415: every operation that takes a JSON body.
pub struct BodyRefusals;

impl IntoResponses for BodyRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[
            ("413", "`body_too_large`: bodies are limited to 6 MiB"),
            (
                "415",
                "`unsupported_media_type`: send the body as application/json",
            ),
        ])
    }
}

/// 412: every operation that takes `If-Match`.
pub struct Stale;

impl IntoResponses for Stale {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[(
            "412",
            "`version_conflict`: the team is not at the version of `If-Match` \
             (`expected_version`, `current_version`); plan again",
        )])
    }
}

fn parameter(
    name: &str,
    place: ParameterIn,
    required: bool,
    description: &str,
    example: Option<serde_json::Value>,
    schema: ObjectBuilder,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .example(example)
        .schema(Some(schema))
        .build()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

impl IntoParams for TeamPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "team",
            ParameterIn::Path,
            true,
            "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a \
             letter, not ending with a dash, no two dashes in a row",
            Some(json!("acme")),
            string()
                .min_length(Some(2))
                .max_length(Some(63))
                .pattern(Some(TEAM_PATTERN)),
        )]
    }
}

impl IntoParams for EmailPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "email",
            ParameterIn::Path,
            true,
            "The member's or invited person's address (compared case-insensitively)",
            Some(json!("bob@acme.com")),
            string(),
        )]
    }
}

impl IntoParams for RolePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "name",
            ParameterIn::Path,
            true,
            "The custom role's name",
            Some(json!("release-manager")),
            string(),
        )]
    }
}

impl IntoParams for IfMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "If-Match",
            ParameterIn::Header,
            false,
            "The team's `ETag` (`\"5\"`, `W/\"5\"` or `5`): act only if the team is still at \
             that version, else 412. `*` or no header acts on the current version.",
            Some(json!("\"5\"")),
            string().pattern(Some(IF_MATCH_PATTERN)),
        )]
    }
}

/// The `Idempotency-Key` header every `POST` takes; the idempotency layer
/// reads it, so no handler does.
pub struct IdempotencyKey;

impl IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "Idempotency-Key",
            ParameterIn::Header,
            false,
            "1 to 255 visible characters, scoped to the credential. A retry with the same key \
             and request replays the first successful response for 24 hours (marked \
             `Idempotent-Replayed: true`; a secret is not replayed); the same key with another \
             request is refused (422 `idempotency_key_reused`).",
            None,
            string()
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some(IDEMPOTENCY_KEY_PATTERN)),
        )]
    }
}

/// 404 on a team route: the team does not exist or the caller is not part of
/// it (the two answer alike, so a stranger learns nothing).
pub struct TeamNotFound;

impl IntoResponses for TeamNotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[(
            "404",
            "`not_found`: no such team, or the caller is not part of it",
        )])
    }
}

/// 403 on a team route the caller sees but may not use.
pub struct LacksPermission;

impl IntoResponses for LacksPermission {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[(
            "403",
            "`forbidden`: the caller sees the team but lacks the permission",
        )])
    }
}

/// 404 on a route naming something in a team (a member, an invitation, a
/// role) besides the team.
pub struct TargetNotFound;

impl IntoResponses for TargetNotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[(
            "404",
            "`not_found`: no such team (or member, invitation, role), or the caller is not \
             part of the team",
        )])
    }
}

/// 409 on a one-change route that is not a `POST` (a `POST` also names the
/// idempotency conflict in its own 409).
pub struct StateConflict;

impl IntoResponses for StateConflict {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[(
            "409",
            "`version_conflict` (the team changed meanwhile) or a conflict with the state \
             (`already_member`, `already_invited`, `role_exists`, `role_in_use`, \
             `seat_limit_reached`)",
        )])
    }
}

/// 422 on a one-change route with a body that is not a `POST`.
pub struct ChangeRefused;

impl IntoResponses for ChangeRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[(
            "422",
            "`validation_failed` (a body of the wrong shape), or a change the state refuses \
             with its own code (`unknown_role`, `owner_role`, `single_role`, \
             `owner_protected`, `invalid_setting`, `custom_roles_disabled`, \
             `unknown_permission`, ...)",
        )])
    }
}
