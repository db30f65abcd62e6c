//! What travels from a write to the connections: the typed [`Publication`], its encoding on
//! the Redis room channel, and the in-process [`LocalBus`] that plays that channel's part on
//! the memory backend.
//!
//! Owns the shape of a publication and its bytes between nodes. Does not own who publishes
//! (the stores, inside their atomic append, and the brokers) or who delivers (the broker's one
//! handler hands publications to the hub).

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use uuid::Uuid;

/// One frame (or marker) for one room, serialized once and shared by every receiving
/// connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// A stored message: part of the room's history, delivered in `seq` order, gaps filled
    /// from the store. `internal`: a private note, which a connection that may not see notes
    /// (a scoped end-user token) never gets: its position just moves past the seq.
    Message { room: Uuid, seq: u64, frame: Utf8Bytes, internal: bool },
    /// Not history (typing, read receipts, presence, delivery updates): delivered as it comes.
    Ephemeral { room: Uuid, frame: Utf8Bytes },
    /// An `Ephemeral` frame about a private note (its `message_updated`): only for connections
    /// that see notes.
    Internal { room: Uuid, frame: Utf8Bytes },
    /// An ephemeral frame in two versions: `staff` for connections that see a room's inside
    /// (agent and operator tokens: it names the sender's identity), `public` for end-user
    /// connections (widget visitors, webchat users), which never learn internal identities.
    /// Typing and read frames travel this way.
    Audience { room: Uuid, staff: Utf8Bytes, public: Utf8Bytes },
    /// The room's owner changed (`assigned` frame). An agent connection that is not the new
    /// owner loses the room after the frame.
    Assigned { room: Uuid, owner_id: Option<String>, frame: Utf8Bytes },
    /// "History of `room` reaches `seq`": each receiving connection fills what it is missing up
    /// to `seq` from the store. Brokers send it after a link outage, since publications lost on
    /// the wire would otherwise only be noticed at the next message.
    Sync { room: Uuid, seq: u64 },
    /// Participant `participant_id` was removed from `room`: every connection holding the room
    /// as that participant loses it at once (`unsubscribed`, reason `removed`). Travels on the
    /// room's channel, so it keeps its place among the room's messages on every node.
    Removed { room: Uuid, participant_id: Uuid },
    /// The room changed in what the post path reads: its participants (added, removed,
    /// updated) or its conversation (status, owner, timers, name, deletion). Every node drops
    /// its cached entry of the room (`crate::store::RoomCache`). Published by the store with
    /// the change (on Redis inside the same script); never written to a connection.
    Changed { room: Uuid },
    /// A frame for the connection itself rather than for one of its rooms (the tenant-wide
    /// `conversation` and `watching` frames): written as it is, in queue order.
    Direct { frame: Utf8Bytes },
}

impl Publication {
    /// The room it belongs to; `None` for a connection-wide frame.
    pub fn room(&self) -> Option<Uuid> {
        match self {
            Publication::Message { room, .. }
            | Publication::Ephemeral { room, .. }
            | Publication::Internal { room, .. }
            | Publication::Audience { room, .. }
            | Publication::Assigned { room, .. }
            | Publication::Sync { room, .. }
            | Publication::Removed { room, .. }
            | Publication::Changed { room } => Some(*room),
            Publication::Direct { .. } => None,
        }
    }

    /// Encodes a room publication for the Redis room channel; `None` for kinds that never
    /// cross nodes (`Sync` is made by each node, `Direct` belongs to one connection).
    ///
    /// Layout: a tag letter, then `<seq> <frame>` (`M`; `N` for a private note), `<frame>`
    /// (`E`; `I` for a frame about a private note), or
    /// `<owner length> <owner><frame>` (`A`, length 0 = unassigned), or
    /// `<staff frame length> <staff frame><public frame>` (`V`), or `<participant id>`
    /// (`R`, no frame: each session writes its own `unsubscribed`), or nothing (`P`, the room
    /// changed; the Redis scripts publish it as the bare tag). The frame comes last and
    /// is never parsed by a receiver.
    pub fn encode(&self) -> Option<String> {
        match self {
            Publication::Message { seq, frame, internal, .. } => Some(message_payload(*seq, frame, *internal)),
            Publication::Ephemeral { frame, .. } => Some(format!("E{frame}")),
            Publication::Internal { frame, .. } => Some(format!("I{frame}")),
            Publication::Audience { staff, public, .. } => Some(format!("V{} {staff}{public}", staff.len())),
            Publication::Assigned { owner_id, frame, .. } => {
                let owner = owner_id.as_deref().unwrap_or("");
                Some(format!("A{} {owner}{frame}", owner.len()))
            }
            Publication::Removed { participant_id, .. } => Some(format!("R{participant_id}")),
            Publication::Changed { .. } => Some(CHANGED_TAG.to_string()),
            Publication::Sync { .. } | Publication::Direct { .. } => None,
        }
    }

    /// Decodes a payload received on `room`'s channel; `None` if it is not one.
    pub fn decode(room: Uuid, payload: &[u8]) -> Option<Publication> {
        let text = std::str::from_utf8(payload).ok()?;
        let (tag, rest) = (text.get(..1)?, text.get(1..)?);
        let p = match tag {
            "M" | "N" => {
                let (seq, frame) = rest.split_once(' ')?;
                Publication::Message { room, seq: seq.parse().ok()?, frame: frame.into(), internal: tag == NOTE_TAG }
            }
            "E" => Publication::Ephemeral { room, frame: rest.into() },
            "I" => Publication::Internal { room, frame: rest.into() },
            "A" => {
                let (len, rest) = rest.split_once(' ')?;
                let len: usize = len.parse().ok()?;
                let (owner, frame) = (rest.get(..len)?, rest.get(len..)?);
                let owner_id = (!owner.is_empty()).then(|| owner.to_string());
                Publication::Assigned { room, owner_id, frame: frame.into() }
            }
            "V" => {
                let (len, rest) = rest.split_once(' ')?;
                let len: usize = len.parse().ok()?;
                let (staff, public) = (rest.get(..len)?, rest.get(len..)?);
                Publication::Audience { room, staff: staff.into(), public: public.into() }
            }
            "R" => Publication::Removed { room, participant_id: rest.parse().ok()? },
            CHANGED_TAG => Publication::Changed { room },
            _ => return None,
        };
        Some(p)
    }
}

/// The channel payload of a stored message, split around its seq: the Redis append script
/// writes `<tag><seq> <frame>` (see [`MESSAGE_TAG`], [`NOTE_TAG`]).
pub fn message_payload(seq: u64, frame: &str, internal: bool) -> String {
    format!("{}{seq} {frame}", message_tag(internal))
}

/// What a message payload starts with, before its seq.
pub const MESSAGE_TAG: &str = "M";
/// The whole payload of a `Changed` publication (the Redis scripts that change a room publish it).
pub const CHANGED_TAG: &str = "P";
/// What a private note's payload starts with, before its seq.
pub const NOTE_TAG: &str = "N";

/// The payload tag of a message, by whether it is a private note.
pub fn message_tag(internal: bool) -> &'static str {
    if internal { NOTE_TAG } else { MESSAGE_TAG }
}

/// The in-process stand-in for the Redis room channels: the memory store hands each
/// publication to it inside its per-room lock (so publications of a room keep their seq
/// order), and the memory broker drains it into the one handler. Rooms are spread over a few
/// ordered queues so that fan-out of different rooms can run on different cores.
#[derive(Debug, Clone)]
pub struct LocalBus {
    shards: Vec<mpsc::UnboundedSender<Publication>>,
}

impl LocalBus {
    /// A bus with `shards` ordered queues, and their receiving ends.
    pub fn new(shards: usize) -> (LocalBus, Vec<mpsc::UnboundedReceiver<Publication>>) {
        let (tx, rx) = (0..shards.max(1)).map(|_| mpsc::unbounded_channel()).unzip();
        (LocalBus { shards: tx }, rx)
    }

    /// Queues `p` behind every earlier publication of its room. Never blocks; a publication
    /// sent after the broker stopped (shutdown) is dropped.
    pub fn publish(&self, p: Publication) {
        let i = p.room().map_or(0, |r| (r.as_u128() % self.shards.len() as u128) as usize);
        let _ = self.shards[i].send(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_publications_round_trip_through_the_channel_encoding() {
        let room = Uuid::now_v7();
        let cases = [
            Publication::Message { room, seq: 42, frame: r#"{"type":"message"}"#.into(), internal: false },
            Publication::Message { room, seq: 43, frame: r#"{"type":"message"}"#.into(), internal: true },
            Publication::Ephemeral { room, frame: r#"{"type":"typing"}"#.into() },
            Publication::Internal { room, frame: r#"{"type":"message_updated"}"#.into() },
            Publication::Assigned { room, owner_id: Some("ann lee".into()), frame: r#"{"x":1}"#.into() },
            Publication::Assigned { room, owner_id: None, frame: r#"{"x":1}"#.into() },
            Publication::Audience { room, staff: r#"{"identity":"ann"}"#.into(), public: r#"{"t":1}"#.into() },
            Publication::Removed { room, participant_id: Uuid::now_v7() },
            Publication::Changed { room },
        ];
        for p in cases {
            let bytes = p.encode().unwrap();
            assert_eq!(Publication::decode(room, bytes.as_bytes()), Some(p));
        }
        assert_eq!(Publication::Sync { room, seq: 1 }.encode(), None);
        assert_eq!(Publication::decode(room, b"{}"), None);
        assert_eq!(Publication::decode(room, b"Mx {}"), None);
        assert_eq!(Publication::decode(room, b"A9 ab"), None);
        assert_eq!(Publication::decode(room, b"V9 ab"), None);
        assert_eq!(Publication::decode(room, b"Rnot-a-uuid"), None);
    }

    #[test]
    fn the_bus_keeps_one_room_in_order() {
        let (bus, mut rx) = LocalBus::new(3);
        let room = Uuid::now_v7();
        for seq in 1..=5 {
            bus.publish(Publication::Sync { room, seq });
        }
        let got: Vec<_> = rx.iter_mut().flat_map(|r| std::iter::from_fn(|| r.try_recv().ok())).collect();
        let seqs: Vec<u64> = got.iter().map(|p| if let Publication::Sync { seq, .. } = p { *seq } else { 0 }).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }
}
