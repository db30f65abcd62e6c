//! Who may open a WebSocket on this node, decided before the upgrade: the Origin allow-list,
//! the node and per-identity connection limits, and the token.
//!
//! Origin and limit refusals are plain HTTP errors (403, 503, 429 with the JSON error body):
//! nothing is upgraded, so the node spends no session on them. Token problems still upgrade
//! and then close with 4001/4002, because a browser can read a close code but not the status
//! of a failed upgrade, and the client must learn to fetch a new token. A connection that
//! presents no token is let in to send it as its first frame (`handshake`), which runs the
//! same token and identity checks through [`verify`].

use crate::app::AppState;
use crate::auth::{ClientClaims, TokenError};
use crate::error::Error;
use crate::limits::ConnPermit;
use crate::wire::close;
use axum::http::{HeaderMap, header};

/// A connection let in: its token verdict (claims, or the close code to leave with; `None`
/// when the token is to come in the first frame) and its slot in the connection counts, held
/// for the session's life.
pub(super) struct Admitted {
    pub verdict: Option<Result<ClientClaims, u16>>,
    pub permit: ConnPermit,
}

/// Runs the door checks in order; `Err` is the error refusing the upgrade (already counted).
/// `token` is `None` when the connection presented none (it may still send an `auth` frame).
pub(super) fn admit(state: &AppState, headers: &HeaderMap, token: Option<&str>) -> Result<Admitted, Error> {
    let origin = headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("\u{fffd}"));
    if !origin_allowed(&state.config.ws.allowed_origins, origin) {
        let shown: String = origin.unwrap_or("").chars().take(200).collect();
        state.metrics.ws_refused("origin");
        return Err(Error::Forbidden(format!("origin `{shown}` is not in ws.allowed_origins")));
    }
    let mut permit = state.limits.connection().inspect_err(|_| state.metrics.ws_refused("node_limit"))?;
    let verdict = token.map(|t| verify(state, &mut permit, t)).transpose()?;
    Ok(Admitted { verdict, permit })
}

/// Checks `token` and counts its identity into `permit`: `Ok(Err(code))` for a bad token (the
/// close code), `Err` when the identity already holds its most connections.
pub(super) fn verify(
    state: &AppState,
    permit: &mut ConnPermit,
    token: &str,
) -> Result<Result<ClientClaims, u16>, Error> {
    let verdict = match token {
        "" => Err(close::INVALID_TOKEN),
        t => state.tokens.verify(t).map_err(|e| match e {
            TokenError::Expired => close::TOKEN_EXPIRED,
            TokenError::Invalid => close::INVALID_TOKEN,
        }),
    };
    match &verdict {
        Ok(c) => {
            state.limits.identity(permit, c.tid, &c.sub).inspect_err(|_| state.metrics.ws_refused("identity_limit"))?
        }
        Err(code) => {
            state.metrics.ws_refused(if *code == close::TOKEN_EXPIRED { "token_expired" } else { "invalid_token" })
        }
    }
    Ok(verdict)
}

/// Whether a request with `origin` may connect. An empty list allows every origin. A request
/// without an Origin header is not a browser's (browsers always send one on WebSocket
/// upgrades) and cannot be a cross-site hijack, so it is allowed; it still needs a token.
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    allowed.is_empty() || allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins_match_exactly_ignoring_case() {
        let list = vec!["https://app.example.com".to_string()];
        assert!(origin_allowed(&list, Some("https://APP.example.com")));
        assert!(origin_allowed(&list, None));
        assert!(!origin_allowed(&list, Some("https://app.example.com.evil.test")));
        assert!(!origin_allowed(&list, Some("http://app.example.com")));
        assert!(!origin_allowed(&list, Some("null")));
        assert!(origin_allowed(&[], Some("https://anything.test")));
    }
}
