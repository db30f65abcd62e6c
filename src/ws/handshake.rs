//! How a connection presents its token, and waiting for it when it comes in the first frame.
//!
//! Three ways, checked in this order: `?token=` in the URL (old clients; URLs end up in
//! browser and proxy logs, so new clients should not), a `token.<jwt>` entry in the
//! `Sec-WebSocket-Protocol` list next to [`PROTOCOL`] (the server echoes only [`PROTOCOL`],
//! never the token), or none at all: then the first frame must be `{"type":"auth","token":…}`
//! within `ws.auth_timeout_ms`. The page uses the first-frame form. A bad token closes with
//! 4001/4002 whichever way it came; a first frame that is not `auth` closes with 4001, no
//! frame in time with 4003.

use super::admission;
use crate::app::AppState;
use crate::auth::ClientClaims;
use crate::limits::ConnPermit;
use crate::wire::close;
use crate::wire::frames::ClientFrame;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::http::HeaderMap;
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use std::time::Duration;

/// The subprotocol the server speaks and echoes when a client offers it.
pub const PROTOCOL: &str = "switchboard.v1";
/// What marks the token entry in the client's subprotocol list.
const TOKEN_PREFIX: &str = "token.";

/// The token a client put in its `Sec-WebSocket-Protocol` list, if any.
pub(super) fn protocol_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(TOKEN_PREFIX).map(str::to_string))
}

/// Waits for the `auth` frame and checks its token like one presented at the upgrade; `Err`
/// is the close code to leave with.
pub(super) async fn first_frame(
    state: &AppState,
    socket: &mut WebSocket,
    permit: &mut ConnPermit,
) -> Result<ClientClaims, u16> {
    let limit = Duration::from_millis(state.config.ws.auth_timeout_ms);
    let text = tokio::select! {
        _ = state.shutdown.cancelled() => return Err(close::GOING_AWAY),
        r = tokio::time::timeout(limit, first_text(socket)) => match r {
            Ok(text) => text,
            Err(_) => {
                state.metrics.ws_refused("auth_timeout");
                return Err(close::AUTH_TIMEOUT);
            }
        },
    };
    let token = match text.map(|t| serde_json::from_str::<ClientFrame>(t.as_str())) {
        Some(Ok(ClientFrame::Auth { token })) => token.0,
        _ => {
            state.metrics.ws_refused("auth_required");
            return Err(close::INVALID_TOKEN);
        }
    };
    match admission::verify(state, permit, &token) {
        Ok(verdict) => verdict,
        Err(_) => Err(close::TRY_AGAIN_LATER),
    }
}

/// The first text frame; `None` if anything else (binary, close, an error) comes first.
async fn first_text(socket: &mut WebSocket) -> Option<Utf8Bytes> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(t)) => return Some(t),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_among_the_offered_protocols() {
        let mut h = HeaderMap::new();
        assert_eq!(protocol_token(&h), None);
        h.insert(SEC_WEBSOCKET_PROTOCOL, "switchboard.v1, token.abc.def".parse().unwrap());
        assert_eq!(protocol_token(&h).as_deref(), Some("abc.def"));
        h.insert(SEC_WEBSOCKET_PROTOCOL, "switchboard.v1".parse().unwrap());
        assert_eq!(protocol_token(&h), None);
    }
}
