//! The stable `code` of every problem the API answers with, in one place:
//! the API and the service name `code::NOT_FOUND`, never a string, so a misspelt code does
//! not compile. Changes the domain refuses carry the codes of
//! `teamform_core::ChangeError::code` (e.g. `already_member`).

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $text:literal,)*) => {
        $($(#[$doc])* pub const $name: &str = $text;)*
        /// Every code of this module.
        pub const ALL: &[&str] = &[$($text),*];
    };
}

codes! {
    /// The credential is missing, unknown, expired or revoked.
    UNAUTHENTICATED = "unauthenticated",
    /// The caller lacks the permission.
    FORBIDDEN = "forbidden",
    /// The change would grant more than the caller holds.
    ESCALATION = "escalation",
    /// The team requires a second factor the sign-in did not have.
    TWO_FACTOR_REQUIRED = "two_factor_required",
    /// No such resource, or the caller may not know it exists.
    NOT_FOUND = "not_found",
    /// The resource does not take this method.
    METHOD_NOT_ALLOWED = "method_not_allowed",
    /// The team is not at the version the request expected.
    VERSION_CONFLICT = "version_conflict",
    /// The request conflicts with the state (e.g. a pending transfer).
    CONFLICT = "conflict",
    /// A body or query parameter of the wrong shape; `errors` says where.
    VALIDATION_FAILED = "validation_failed",
    /// The body is not JSON.
    MALFORMED_JSON = "malformed_json",
    /// The body is not sent as `application/json`.
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type",
    /// The body is larger than the service reads.
    BODY_TOO_LARGE = "body_too_large",
    /// `If-Match` is not a version.
    BAD_IF_MATCH = "bad_if_match",
    /// Any other malformed request.
    BAD_REQUEST = "bad_request",
    /// `Teamform-Source` is not `apply` with an optional printable note of at
    /// most 200 characters.
    BAD_SOURCE = "bad_source",
    /// `Idempotency-Key` is not 1 to 255 visible characters.
    BAD_IDEMPOTENCY_KEY = "bad_idempotency_key",
    /// A request with this `Idempotency-Key` is still running.
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use",
    /// This `Idempotency-Key` was used with another request.
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused",
    /// An invitation link that was used, replaced, revoked or never made.
    INVITATION_INVALID = "invitation_invalid",
    /// An invitation link past its expiry.
    INVITATION_EXPIRED = "invitation_expired",
    /// A transfer link that was used, cancelled or replaced.
    TRANSFER_INVALID = "transfer_invalid",
    /// A transfer link past its expiry.
    TRANSFER_EXPIRED = "transfer_expired",
    /// A person removing themselves other than by leaving.
    SELF_REMOVAL = "self_removal",
    /// A permission the catalog does not have.
    UNKNOWN_PERMISSION = "unknown_permission",
    /// The team is closed and waits for deletion: only its owner may read
    /// it or reopen it.
    TEAM_CLOSED = "team_closed",
    /// The team is not closed (reopening an open team).
    TEAM_NOT_CLOSED = "team_not_closed",
    /// Other members or pending invitations remain (`members`,
    /// `invitations`); close with `force` to mean it.
    TEAM_NOT_EMPTY = "team_not_empty",
    /// An ownership transfer is pending: cancel it first.
    TRANSFER_PENDING = "transfer_pending",
    /// The confirmation does not name the team.
    CONFIRMATION_MISMATCH = "confirmation_mismatch",
    /// The service failed; the cause is logged, not told.
    INTERNAL = "internal",
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Each code is snake_case and names one problem: two constants with the
    /// same text would make two outcomes indistinguishable to clients.
    #[test]
    fn codes_are_distinct_snake_case() {
        let distinct: BTreeSet<&str> = super::ALL.iter().copied().collect();
        assert_eq!(distinct.len(), super::ALL.len());
        for code in super::ALL {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
    }
}
