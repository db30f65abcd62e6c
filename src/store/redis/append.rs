//! Appending messages: the arguments of the `append` script for one draft, its reply, and
//! the pipelined form used by `append_many`.
//!
//! A burst from one sender goes out as one pipeline of `EVALSHA`s instead of one round trip
//! per message: Redis runs commands of one connection in the order sent, so the seqs follow
//! the drafts' order, and every script keeps its own atomicity (seq, history, publish).

use super::{RedisStore, decode, reply_at};
use crate::error::{Error, Result};
use crate::model::{ConversationStatus, Message};
use crate::redis::queue::FIELD;
use crate::redis::{ToRedisArgsDyn, unavailable};
use crate::store::{Appended, Draft};
use crate::wire::OpenSeq;
use crate::wire::publication::message_tag;

/// Keys and arguments of one `append` script call.
pub(super) struct AppendCall {
    pub keys: Vec<String>,
    pub argv: Vec<String>,
}

/// Where in `AppendCall::argv` the message's JSON after its seq is (`OpenSeq::rest`).
const REST_ARG: usize = 1;

impl AppendCall {
    pub fn args(&self) -> Vec<&dyn ToRedisArgsDyn> {
        self.argv.iter().map(|a| a as &dyn ToRedisArgsDyn).collect()
    }

    /// The message JSON the script stored, once its seq is known.
    fn json(&self, seq: u64) -> Option<String> {
        self.argv.get(REST_ARG).map(|rest| format!("{}{seq}{rest}", OpenSeq::JSON_HEAD))
    }
}

impl RedisStore {
    /// The script call appending `draft` (its seq is filled in by the script); `run` is the
    /// Redis `run_id` to compare the room's with (empty: no check).
    pub(super) fn append_call(&self, draft: &Draft, run: &str) -> Result<AppendCall> {
        let room = draft.message.conversation_id;
        let message = &draft.message;
        if message.seq != 0 {
            return Err(Error::internal("a draft's seq is assigned by the store"));
        }
        // The script writes the seq between the head and the rest (see `OpenSeq`).
        let open = OpenSeq::new(message).map_err(|e| Error::internal_from("encode message", e))?;
        let mut keys = vec![
            self.keys.conversation(room),
            self.keys.room(room, "hist"),
            self.keys.room(room, "ids"),
            self.keys.room(room, "patch"),
        ];
        if let Some(k) = &draft.idempotency_key {
            keys.push(self.keys.idempotency(room, k));
        }
        let mut argv = vec![
            OpenSeq::JSON_HEAD.to_string(),
            open.rest, // REST_ARG
            OpenSeq::FRAME_PREFIX.to_string(),
            OpenSeq::FRAME_SUFFIX.to_string(),
            message.id.to_string(),
            self.idempotency_ttl_secs.to_string(),
            self.history_max_len.to_string(),
            self.keys.room_channel(room),
            self.redis.publish_command().to_string(),
            message_tag(message.is_internal()).to_string(),
            self.floor(room).to_string(),
            super::new_epoch(),
        ];
        match draft.webhook_event.as_ref().filter(|_| !self.cluster) {
            Some(ev) => {
                keys.push(self.keys.webhook_outbox());
                argv.extend([keys.len().to_string(), FIELD.to_string(), ev.head.clone(), ev.tail.clone()]);
            }
            None => argv.extend(["0", "", "", ""].map(String::from)),
        }
        argv.push(run.to_string());
        Ok(AppendCall { keys, argv })
    }

    /// Appends drafts of one room in one pipeline, in order; one outcome per draft.
    pub(super) async fn append_pipelined(&self, drafts: Vec<Draft>) -> Vec<Result<Appended>> {
        let run = match self.run_id().await {
            Ok(r) => r,
            Err(e) => return drafts.iter().map(|_| Err(e.clone())).collect(),
        };
        let calls: Vec<Result<AppendCall>> = drafts.iter().map(|d| self.append_call(d, &run)).collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for call in calls.iter().flatten() {
            pipe.cmd("EVALSHA").arg(self.scripts.append.get_hash()).arg(call.keys.len()).arg(&call.keys);
            for a in &call.argv {
                pipe.arg(a);
            }
        }
        let replies: Result<Vec<redis::RedisResult<Vec<redis::Value>>>> = self.redis.pipe(&pipe).await;
        let mut replies = match replies {
            Ok(r) => r.into_iter(),
            Err(e) => return drafts.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut out = Vec::with_capacity(drafts.len());
        // After a NOSCRIPT (script cache flushed, e.g. Redis restarted) every later call of the
        // pipeline failed the same way: append those one by one, which loads the script.
        let mut reload = false;
        for (draft, call) in drafts.into_iter().zip(calls) {
            let call = match call {
                Ok(call) => call,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let reply = replies.next();
            if reload {
                out.push(self.append_one(draft).await);
                continue;
            }
            out.push(match reply {
                Some(Ok(values)) => self.observe(append_outcome(&values, draft.message, &call)),
                Some(Err(e)) if e.code() == Some("NOSCRIPT") => {
                    reload = true;
                    self.append_one(draft).await
                }
                Some(Err(e)) => Err(unavailable(e)),
                None => Err(Error::internal("pipeline reply too short")),
            });
        }
        out
    }

    async fn append_one(&self, draft: Draft) -> Result<Appended> {
        crate::store::Store::append(self, draft).await
    }
}

/// What the `append` script's reply to `call` means for `message` (the draft as sent).
pub(super) fn append_outcome(reply: &[redis::Value], mut message: Message, call: &AppendCall) -> Result<Appended> {
    match reply_at::<i64>(reply, 0)? {
        1 => {
            message.seq = reply_at(reply, 1)?;
            let status = reply_at::<String>(reply, 2).ok().and_then(|s| ConversationStatus::parse(&s));
            let json = call.json(message.seq).map(Into::into);
            Ok(Appended { message, duplicate: false, reopens: false, status, json })
        }
        2 => {
            let message = decode(&reply_at::<String>(reply, 1)?)?;
            Ok(Appended { message, duplicate: true, reopens: false, status: None, json: None })
        }
        3 => Err(crate::store::trimmed_original()),
        4 => Err(crate::store::closed()),
        _ => Err(Error::NotFound("conversation")),
    }
}
