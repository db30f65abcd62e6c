//! The WebSocket gateway at `/v1.0/ws?token=...`.
//!
//! Owns the upgrade (token check, frame-size limits), one session task per connection, the
//! protocol frames and the close codes. A session talks to the hub (membership, fan-out into
//! its bounded queue), to `conversations` (the post path) and to the store (history replay);
//! it never touches another connection.

pub mod close;
mod commands;
pub mod protocol;
mod session;

use crate::app::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct WsParams {
    pub token: Option<String>,
}

/// Upgrades, then either runs a session or closes at once with the token's close code: a
/// browser cannot read an HTTP status from a failed upgrade, but it can read a close code.
pub async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>, Query(q): Query<WsParams>) -> Response {
    let cfg = &state.config.ws;
    let verdict = match q.token.as_deref() {
        None | Some("") => Err(close::INVALID_TOKEN),
        Some(t) => state.tokens.verify(t).map_err(|e| match e {
            crate::auth::TokenError::Expired => close::TOKEN_EXPIRED,
            crate::auth::TokenError::Invalid => close::INVALID_TOKEN,
        }),
    };
    let tasks = state.tasks.clone();
    ws.max_message_size(cfg.max_frame_bytes)
        .max_frame_size(cfg.max_frame_bytes)
        .write_buffer_size(cfg.write_buffer_bytes)
        .on_upgrade(move |socket| {
            tasks.track_future(async move {
                match verdict {
                    Ok(claims) if !state.shutdown.is_cancelled() => session::run(state, socket, claims).await,
                    Ok(_) => close_now(socket, close::GOING_AWAY).await,
                    Err(code) => close_now(socket, code).await,
                }
            })
        })
}

async fn close_now(mut socket: WebSocket, code: u16) {
    let _ = socket.send(close_message(code)).await;
}

pub(crate) fn close_message(code: u16) -> Message {
    Message::Close(Some(CloseFrame { code, reason: close::reason(code).into() }))
}
