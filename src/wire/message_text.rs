//! A stored message as text: the `message` frame every subscriber of its room receives, and
//! its JSON with the seq left open for a store that numbers it inside an atomic step.
//!
//! Owns the bytes of one message (written once, shared by the frame, the history and the
//! `message.created` event). Does not own the other server frames (`frames`) or who sends
//! them (`ws`, the hub).

use super::ServerFrame;
use crate::model::Message;
use axum::extract::ws::Utf8Bytes;

/// The frame every subscriber of a room receives for a new message.
pub fn message_frame(message: &Message) -> Utf8Bytes {
    ServerFrame::Message { message }.to_text()
}

/// [`message_frame`] around `json`, the message as serde_json already wrote it (no second
/// serialization): the same bytes.
pub fn message_frame_of(json: &str) -> Utf8Bytes {
    let mut frame = String::with_capacity(OpenSeq::FRAME_PREFIX.len() + json.len() + OpenSeq::FRAME_SUFFIX.len());
    frame.push_str(OpenSeq::FRAME_PREFIX);
    frame.push_str(json);
    frame.push_str(OpenSeq::FRAME_SUFFIX);
    frame.into()
}

/// A message whose seq is not known yet, as text with the seq left open: the stored JSON is
/// `JSON_HEAD` + seq + `rest`, its frame `FRAME_PREFIX` + that JSON + `FRAME_SUFFIX`. The seq is
/// taken out of the JSON object and put first, so a store that assigns the seq inside an
/// atomic step (the Redis append script) fills it in without parsing or searching JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSeq {
    /// Everything after the seq, starting with `,` (or `}` for a message with no other field).
    pub rest: String,
}

impl OpenSeq {
    /// What stored message JSON starts with, before the seq.
    pub const JSON_HEAD: &'static str = "{\"seq\":";
    /// What a message frame puts before the message JSON, and after it.
    pub const FRAME_PREFIX: &'static str = "{\"type\":\"message\",\"message\":";
    pub const FRAME_SUFFIX: &'static str = "}";

    pub fn new(message: &Message) -> serde_json::Result<OpenSeq> {
        // A draft (seq 0) written as it is starts `{"id":"…","conversation_id":"…","seq":0,`:
        // two uuids of fixed length, so the seq is cut out at a fixed place, checked, with no
        // JSON tree. Anything else takes the general way below.
        const ID_END: usize = r#"{"id":""#.len() + 36 + r#"","conversation_id":""#.len() + 36 + 1;
        const SEQ_0: &str = r#","seq":0,"#;
        if message.seq == 0 {
            let json = serde_json::to_string(message)?;
            if json.starts_with(r#"{"id":""#) && json.get(ID_END..ID_END + SEQ_0.len()) == Some(SEQ_0) {
                let mut rest = String::with_capacity(json.len() - SEQ_0.len() + 1);
                rest.push(',');
                rest.push_str(&json[1..ID_END]);
                rest.push_str(&json[ID_END + SEQ_0.len() - 1..]);
                return Ok(OpenSeq { rest });
            }
        }
        let mut v = serde_json::to_value(message)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("seq");
        }
        let body = serde_json::to_string(&v)?;
        let rest = match body.strip_prefix("{}") {
            Some(_) => "}".to_string(),
            None => format!(",{}", &body[1..]),
        };
        Ok(OpenSeq { rest })
    }

    /// The stored JSON once the seq is known.
    pub fn json(&self, seq: u64) -> String {
        format!("{}{seq}{}", Self::JSON_HEAD, self.rest)
    }

    /// The frame once the seq is known.
    pub fn frame(&self, seq: u64) -> String {
        format!("{}{}{}", Self::FRAME_PREFIX, self.json(seq), Self::FRAME_SUFFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_open_seq_message_closes_into_the_same_json_as_the_message() {
        use crate::model::{Direction, MessageStatus, now};
        let m = Message {
            id: Uuid::now_v7(),
            conversation_id: Uuid::now_v7(),
            seq: 0,
            author: None,
            direction: Direction::Outbound,
            text: "\"seq\":0 inside the text".into(),
            medias: vec![],
            status: MessageStatus::Sent,
            client_id: None,
            tm_create: now(),
            channel: None,
            deliveries: vec![],
            via: None,
            visibility: Default::default(),
            edited_at: None,
            deleted_at: None,
            template: None,
            tag: None,
        };
        let open = OpenSeq::new(&m).unwrap();
        // The general way (a message that already has a seq) gives the same message.
        let general = OpenSeq::new(&Message { seq: 5, ..m.clone() }).unwrap();
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(parse(&general.json(17)), parse(&open.json(17)));
        assert!(open.rest.starts_with(&format!(r#","id":"{}","conversation_id":"#, m.id)), "cut, not rebuilt");
        let with = Message { seq: 17, ..m };
        let json: serde_json::Value = serde_json::from_str(&open.json(17)).unwrap();
        assert_eq!(json, serde_json::to_value(&with).unwrap());
        let frame: serde_json::Value = serde_json::from_str(&open.frame(17)).unwrap();
        let expected: serde_json::Value = serde_json::from_str(message_frame(&with).as_str()).unwrap();
        assert_eq!(frame, expected);
        assert_eq!(message_frame_of(&serde_json::to_string(&with).unwrap()), message_frame(&with));
    }
}
