//! Page sizes and opaque cursors for list endpoints.
//!
//! A conversation cursor is the id of the last item of the previous page (UUIDv7 ids sort by
//! creation time), base64url-encoded so clients treat it as opaque. Because the next page
//! starts strictly *below* that id, rows created meanwhile never shift or repeat a page.

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Items per page (default `limits.page_size_default`, at most `limits.page_size_max`).
    pub page_size: Option<usize>,
    /// `next_page_token` from the previous page.
    pub page_token: Option<String>,
}

/// `{"result": [...], "next_page_token": "..."}`; the token is absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub result: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Checks a requested page size against the configured bounds.
pub fn page_size(requested: Option<usize>, default: usize, max: usize) -> Result<usize> {
    match requested {
        None => Ok(default),
        Some(0) => Err(Error::BadRequest { code: "invalid_query", message: "page_size must be at least 1".into() }),
        Some(n) if n > max => {
            Err(Error::BadRequest { code: "invalid_query", message: format!("page_size must be at most {max}") })
        }
        Some(n) => Ok(n),
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(token: &str) -> Result<Uuid> {
    let bad =
        || Error::BadRequest { code: "invalid_page_token", message: "page_token is not one this server issued".into() };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    Uuid::from_slice(&bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor("AAAA").is_err());
    }

    #[test]
    fn page_size_bounds() {
        assert_eq!(page_size(None, 20, 100).unwrap(), 20);
        assert_eq!(page_size(Some(100), 20, 100).unwrap(), 100);
        assert!(page_size(Some(0), 20, 100).is_err());
        assert!(page_size(Some(101), 20, 100).is_err());
    }
}
