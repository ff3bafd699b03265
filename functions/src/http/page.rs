//! Paging of lists: the page type and its opaque cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, FieldError};
use super::{DEFAULT_PAGE, MAX_PAGE};

/// One page of a list; `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub(super) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation(
            "limit out of range",
            vec![FieldError {
                field: "limit".into(),
                message: format!("must be between 1 and {MAX_PAGE}"),
            }],
        )),
    }
}

pub(super) fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(c) = cursor else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(
                "bad cursor",
                vec![FieldError {
                    field: "cursor".into(),
                    message: "not a cursor this API gave out".into(),
                }],
            )
        })
}

pub(super) fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}
