//! The ground floor: everything that crosses a boundary as bytes.
//!
//! WebSocket frames in both directions ([`frames`]; the `ack`, written by hand, in [`ack`]; a
//! stored message's frame and JSON in [`message_text`]), close codes and their reasons
//! ([`close`]), the event envelope and its kinds ([`event`]), and the typed [`Publication`]
//! that carries a frame from a write to the connections, with its encoding between nodes
//! ([`publication`]). Everything above imports from here; this module imports nothing of ours
//! but `model` (and `logging` for the request id an event carries), so the format lives in
//! one place and no lower floor has to reach up to the WebSocket gateway for it.

pub mod ack;
pub mod close;
pub mod event;
pub mod frames;
pub mod message_text;
pub mod publication;

pub use ack::Ack;
pub use event::{Event, EventData, EventKind, OpenEvent};
pub use frames::{ClientFrame, SecretToken, ServerFrame};
pub use message_text::{OpenSeq, message_frame, message_frame_of};
pub use publication::{LocalBus, Publication};
