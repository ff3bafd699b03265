//! `ApiError`: every refusal of the API as `application/problem+json` with a
//! stable `code`, and the conversions from the service's errors and from
//! axum's rejections of malformed input.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::BODY_LIMIT;
use crate::code;
use crate::service::ServiceError;

/// One field-level problem in a request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    /// The field (`body` or `query` when the whole of it is malformed).
    pub field: String,
    pub message: String,
}

/// A problem+json response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub extra: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extra: None,
        }
    }

    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::VALIDATION_FAILED,
                detail,
            )
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, "no such resource")
    }

    /// Logs the cause; the client learns only that something failed.
    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            "the service failed; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:teamform:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        if let (Some(Value::Object(extra)), Some(obj)) = (self.extra, body.as_object_mut()) {
            obj.extend(extra);
        }
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::UNAUTHENTICATED,
                "missing, unknown, expired or revoked credential",
            ),
            ServiceError::Forbidden(detail) => {
                ApiError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, detail)
            }
            ServiceError::Escalation(detail) => {
                ApiError::new(StatusCode::FORBIDDEN, code::ESCALATION, detail)
            }
            ServiceError::VersionConflict { expected, actual } => ApiError {
                extra: Some(json!({ "expected_version": expected, "current_version": actual })),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    code::VERSION_CONFLICT,
                    format!(
                        "the team changed: it is at version {actual}, not {expected}; plan again"
                    ),
                )
            },
            ServiceError::Change {
                index,
                action,
                error,
            } => {
                use teamform_core::ChangeError as E;
                let status = match &error {
                    E::AlreadyMember(_)
                    | E::AlreadyInvited(_)
                    | E::RoleExists(_)
                    | E::RoleInUse(..)
                    | E::TeamExists(_)
                    | E::SeatLimit(_)
                    | E::Stale(_) => StatusCode::CONFLICT,
                    E::OwnerProtected(_) => StatusCode::FORBIDDEN,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError {
                    extra: Some(json!({ "change_index": index, "action": action })),
                    ..ApiError::new(
                        status,
                        error.code(),
                        format!("change {index} ({action}): {error}"),
                    )
                }
            }
            ServiceError::Invalid { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ServiceError::Denied { code, message } => {
                ApiError::new(StatusCode::FORBIDDEN, code, message)
            }
            ServiceError::Refused {
                code,
                message,
                extra,
            } => ApiError {
                extra,
                ..ApiError::new(StatusCode::CONFLICT, code, message)
            },
            ServiceError::Conflict(detail) => {
                ApiError::new(StatusCode::CONFLICT, code::CONFLICT, detail)
            }
            ServiceError::Gone { code, message } => ApiError::new(StatusCode::GONE, code, message),
            ServiceError::TwoFactorRequired(detail) => {
                ApiError::new(StatusCode::FORBIDDEN, code::TWO_FACTOR_REQUIRED, detail)
            }
            ServiceError::Store(e) => ApiError::internal(&e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                "send the body as application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                code::MALFORMED_JSON,
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => body_shape_error(e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::BODY_TOO_LARGE,
                format!("bodies are limited to {BODY_LIMIT} bytes"),
            ),
            other => ApiError::new(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                other.body_text(),
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::validation(
            "the query string is invalid",
            vec![FieldError {
                field: "query".into(),
                message: r.body_text(),
            }],
        )
    }
}

pub(super) fn body_shape_error(message: String) -> ApiError {
    ApiError::validation(
        "the body does not match the expected shape",
        vec![FieldError {
            field: "body".into(),
            message,
        }],
    )
}

pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn field(name: &str, e: impl std::fmt::Display) -> FieldError {
    FieldError {
        field: name.into(),
        message: e.to_string(),
    }
}
