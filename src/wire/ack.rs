//! The `ack` frame, written by hand.
//!
//! Every message posted over a WebSocket is answered with one, so it is the one server frame
//! written as often as messages are. Through serde (`ServerFrame::Ack`) it cost about as much
//! as serializing the message itself; this writer puts the same bytes into one buffer sized
//! up front (the tests compare it with `ServerFrame::Ack` byte for byte, escapes included).
//! Owns that one frame's bytes only: every other server frame is `ServerFrame`'s, and when an
//! ack is sent belongs to `ws`.

use axum::extract::ws::Utf8Bytes;
use uuid::Uuid;

/// The fields of an `ack`, in the order of `ServerFrame::Ack`.
#[derive(Debug, Clone, Copy)]
pub struct Ack<'a> {
    pub conversation_id: Uuid,
    pub client_id: Option<&'a str>,
    pub seq: u64,
    pub message_id: Uuid,
    pub duplicate: bool,
    pub author_participant_id: Option<Uuid>,
}

impl Ack<'_> {
    /// The frame's text: `{"type":"ack","conversation_id":…,"author_participant_id":…}`.
    pub fn to_text(&self) -> Utf8Bytes {
        let client = self.client_id.map_or(0, |c| c.len() + 8);
        let mut s = String::with_capacity(200 + client);
        s.push_str("{\"type\":\"ack\",\"conversation_id\":");
        uuid(&mut s, Some(self.conversation_id));
        s.push_str(",\"client_id\":");
        match self.client_id {
            Some(c) => string(&mut s, c),
            None => s.push_str("null"),
        }
        s.push_str(",\"seq\":");
        s.push_str(itoa::Buffer::new().format(self.seq));
        s.push_str(",\"message_id\":");
        uuid(&mut s, Some(self.message_id));
        s.push_str(if self.duplicate { ",\"duplicate\":true" } else { ",\"duplicate\":false" });
        s.push_str(",\"author_participant_id\":");
        uuid(&mut s, self.author_participant_id);
        s.push('}');
        s.into()
    }
}

/// A uuid as a JSON string (hyphenated, lower case, as serde writes it), or `null`.
fn uuid(s: &mut String, id: Option<Uuid>) {
    let Some(id) = id else { return s.push_str("null") };
    s.push('"');
    s.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    s.push('"');
}

/// `text` as a JSON string, escaped as serde_json escapes: `"` and `\`, the short forms
/// `\b \t \n \f \r`, other control characters as `\u00XX`; everything else as it is.
fn string(s: &mut String, text: &str) {
    s.push('"');
    let mut plain = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0..0x20 => "",
            _ => continue,
        };
        // Escaped bytes are ASCII, so these are character boundaries.
        s.push_str(&text[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            s.push_str("\\u00");
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 0xf) as usize] as char);
        } else {
            s.push_str(escape);
        }
    }
    s.push_str(&text[plain..]);
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerFrame;

    fn serde(a: &Ack) -> Utf8Bytes {
        ServerFrame::Ack {
            conversation_id: a.conversation_id,
            client_id: a.client_id,
            seq: a.seq,
            message_id: a.message_id,
            duplicate: a.duplicate,
            author_participant_id: a.author_participant_id,
        }
        .to_text()
    }

    #[test]
    fn the_hand_written_ack_is_the_serde_ack_byte_for_byte() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        let clients =
            [None, Some(""), Some("c-1"), Some("q\"b\\s/é😀\u{7f}"), Some(every_control.as_str()), Some("\u{2028}\t")];
        for (i, client_id) in clients.into_iter().enumerate() {
            let a = Ack {
                conversation_id: Uuid::now_v7(),
                client_id,
                seq: [0, 1, 9, 10, 4_294_967_296, u64::MAX][i],
                message_id: Uuid::now_v7(),
                duplicate: i % 2 == 0,
                author_participant_id: (i % 3 != 0).then(Uuid::now_v7),
            };
            assert_eq!(a.to_text(), serde(&a), "{client_id:?}");
        }
    }
}
