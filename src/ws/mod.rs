//! The WebSocket gateway at `/v1.0/ws` (token in the first frame, the subprotocol list, or
//! `?token=`; see `admission`).
//!
//! Owns the upgrade (token check, frame-size limits) and one session task per connection. The
//! frames and close codes it speaks are `crate::wire`'s. A session talks to the hub (membership, fan-out into
//! its bounded queue), to `conversations` (the post path) and to the store (history replay);
//! it never touches another connection.

mod admission;
mod commands;
mod hygiene;
mod open;
mod send;
mod session;
mod watch;

use crate::app::AppState;
use crate::auth::ClientClaims;
use crate::limits::ConnPermit;
use crate::wire::close;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::OptionFuture;
use serde::Deserialize;
use std::future::Future;
use tracing::Instrument;

pub use admission::origin_allowed;

#[derive(Debug, Deserialize)]
pub struct WsParams {
    pub token: Option<String>,
}

/// Upgrades, then either runs a session or closes at once with the token's close code: a
/// browser cannot read an HTTP status from a failed upgrade, but it can read a close code.
/// Origin and connection limits refuse before the upgrade (see `admission`); a connection
/// without a token sends it in its first frame (see `admission`).
pub async fn upgrade(
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    State(state): State<AppState>,
    Query(q): Query<WsParams>,
    headers: HeaderMap,
) -> Response {
    // A plain GET (no upgrade headers) gets the JSON error body like every other route.
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            let message = format!("not a WebSocket upgrade: {}", e.body_text());
            return crate::error::Error::BadRequest { code: "not_websocket", message }.into_response();
        }
    };
    let token = q.token.or_else(|| admission::protocol_token(&headers));
    let admission::Admitted { verdict, permit } = match admission::admit(&state, &headers, token.as_deref()) {
        Ok(a) => a,
        Err(refused) => return refused.into_response(),
    };
    let cfg = &state.config.ws;
    // A child of the request's span, so session logs carry its request id.
    let span = tracing::info_span!("ws_session");
    let tasks = state.tasks.clone();
    ws.protocols([admission::PROTOCOL])
        .max_message_size(cfg.max_frame_bytes)
        .max_frame_size(cfg.max_frame_bytes)
        .write_buffer_size(cfg.write_buffer_bytes)
        .read_buffer_size(cfg.read_buffer_bytes)
        .on_upgrade(move |socket| {
            // The task is as big as its largest state, held for the connection's whole life.
            // `then` lays the opening steps and the session over the same bytes, so an idle
            // connection pays only for the session loop (see docs/benchmarks.md, "Idle memory").
            let session = opening(state, socket, verdict, permit)
                .then(|opened| OptionFuture::from(opened.map(open::Opened::run)))
                .map(drop);
            tasks.track_future(session.instrument(span))
        })
}

/// Everything before the session loop: the `auth` frame (when the token was not in the
/// upgrade), the sign-in session check, and the agent's availability; `None` when the socket
/// was closed instead. Rare steps are boxed so they do not size the task; an `async` block
/// over the captured arguments (not an `async fn`, which would copy them into a second slot).
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn opening(
    state: AppState,
    mut socket: WebSocket,
    verdict: Option<Result<ClientClaims, u16>>,
    mut permit: ConnPermit,
) -> impl Future<Output = Option<open::Opened>> + Send {
    async move {
        let verdict = match verdict {
            Some(v) => v,
            None => Box::pin(admission::first_frame(&state, &mut socket, &mut permit)).await,
        };
        // A token of a signed-out session (or a deleted agent) opens nothing.
        let verdict = match verdict {
            Ok(c) => match Box::pin(crate::agents::sessions::alive(&state, &c)).await {
                Ok(true) => Ok(c),
                Ok(false) => Err(close::INVALID_TOKEN),
                Err(_) => Err(close::TRY_AGAIN_LATER),
            },
            Err(code) => Err(code),
        };
        let code = match verdict {
            Ok(claims) if !state.shutdown.is_cancelled() => {
                // An agent with an open connection is available for auto-assignment.
                let agent = claims.is_agent().then(|| (claims.tid, claims.sub.clone()));
                if let Some((tenant, identity)) = &agent {
                    Box::pin(state.agents.connected(&state, *tenant, identity)).await;
                }
                return Some(open::Opened::new(state, socket, claims, permit, agent));
            }
            Ok(_) => close::GOING_AWAY,
            Err(code) => code,
        };
        Box::pin(close_now(socket, code)).await;
        None
    }
}

async fn close_now(mut socket: WebSocket, code: u16) {
    let _ = socket.send(close_message(code)).await;
}

pub(crate) fn close_message(code: u16) -> Message {
    Message::Close(Some(CloseFrame { code, reason: close::reason(code).into() }))
}
