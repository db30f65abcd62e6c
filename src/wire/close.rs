//! WebSocket close codes, as documented in README ("Close codes").
//!
//! Standard codes where one fits; 4xxx application codes otherwise. A client should reconnect
//! (with `since`) after 1001, 1011, 4008 and 4009; fetch a new token after 4001/4002; send
//! its `auth` frame first and sooner after 4003; fix its frames after 1002/1003/1009; and slow
//! down after 1013 and 4029.

/// The client closed, or the server ended a connection normally.
pub const NORMAL: u16 = 1000;
/// The server is shutting down (or restarting): reconnect, preferably to another node.
pub const GOING_AWAY: u16 = 1001;
/// Too many malformed frames.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A binary frame: the protocol is JSON text only.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A frame larger than `ws.max_frame_bytes`.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// Unexpected server-side failure.
pub const INTERNAL_ERROR: u16 = 1011;
/// Admitted by a first-frame `auth` whose identity already holds
/// `ws.max_connections_per_identity` connections on this node.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// Missing, malformed or forged token.
pub const INVALID_TOKEN: u16 = 4001;
/// The token expired (at connect time or while connected).
pub const TOKEN_EXPIRED: u16 = 4002;
/// Opened without a token and no `auth` frame arrived within `ws.auth_timeout_ms`.
pub const AUTH_TIMEOUT: u16 = 4003;
/// The client read too slowly and its queue overflowed; it resumes with `since`.
pub const SLOW_CONSUMER: u16 = 4008;
/// No frame and no pong within `ws.idle_timeout_secs`: the peer is presumed gone.
pub const IDLE_TIMEOUT: u16 = 4009;
/// The client kept sending over its frame rate limit after `rate_limited` errors.
pub const RATE_LIMITED: u16 = 4029;

/// Short reason text sent with the close frame.
pub fn reason(code: u16) -> &'static str {
    match code {
        NORMAL => "normal",
        GOING_AWAY => "server shutting down",
        PROTOCOL_ERROR => "too many malformed frames",
        UNSUPPORTED_DATA => "binary frames are not supported",
        MESSAGE_TOO_BIG => "frame too large",
        INVALID_TOKEN => "invalid token",
        TOKEN_EXPIRED => "token expired",
        AUTH_TIMEOUT => "no auth frame in time",
        TRY_AGAIN_LATER => "too many connections for this identity",
        SLOW_CONSUMER => "slow consumer",
        IDLE_TIMEOUT => "idle timeout",
        RATE_LIMITED => "rate limit exceeded",
        _ => "internal error",
    }
}
