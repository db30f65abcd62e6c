//! The Redis key and channel layout.
//!
//! Owns *names* only: every key and channel this backend touches is built here, so the layout
//! documented in `docs/redis.md` has exactly one source. It does not issue commands, and does not
//! own what travels on a channel (`crate::wire::publication` does).
//!
//! Every key that belongs to a room carries the room id as a hash tag (`{<room id>}`), so the
//! append script and every other multi-key operation on a room land in one Redis Cluster slot,
//! and so does the room's sharded pub/sub channel (a script may only `SPUBLISH` within the slot
//! of its keys). The tenant's conversation index is tagged with the tenant id instead: it is
//! never touched in the same command as room keys.

use uuid::Uuid;

/// Builds keys and channel names under one deployment prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_string() }
    }

    /// `P:outbox:{channels}`: the channel outbox stream (one consumer group, every node).
    pub fn channel_outbox(&self) -> String {
        format!("{}:outbox:{{channels}}", self.prefix)
    }

    /// `P:rehost:{media}`: the inbound media re-hosting stream (`channels::queue::redis`).
    pub fn rehost_queue(&self) -> String {
        format!("{}:rehost:{{media}}", self.prefix)
    }

    /// `P:media:<media id>` → the media record's JSON (`crate::media::records_redis`).
    pub fn media(&self, id: Uuid) -> String {
        format!("{}:media:{}", self.prefix, id)
    }

    /// `P:cmedia:{<conversation id>}`: SET of the media ids used in the conversation (in the
    /// room's slot), deleted with it.
    pub fn conversation_media(&self, room: Uuid) -> String {
        format!("{}:cmedia:{{{}}}", self.prefix, room)
    }

    /// `P:mhash:{<tenant id>}`: HASH content sha256 → media id (re-hosting dedupe).
    pub fn media_hashes(&self, tenant: Uuid) -> String {
        format!("{}:mhash:{{{}}}", self.prefix, tenant)
    }

    /// `P:timers`: ZSET of conversation deadlines, member `<tenant id>:<conversation id>`,
    /// score the deadline in ms (`crate::timers::redis`).
    pub fn timers(&self) -> String {
        format!("{}:timers", self.prefix)
    }

    /// `P:tenant:<tenant id>` → tenant JSON.
    pub fn tenant(&self, tenant: Uuid) -> String {
        format!("{}:tenant:{}", self.prefix, tenant)
    }

    /// `P:apikey:<sha256 hex>` → tenant id.
    pub fn api_key(&self, hash: &str) -> String {
        format!("{}:apikey:{}", self.prefix, hash)
    }

    /// `P:tconvs:{<tenant id>}`: ZSET of the tenant's conversation ids (32 hex digits, score 0),
    /// so lexicographic order is creation order (UUIDv7) and pages are `ZREVRANGEBYLEX`.
    pub fn tenant_conversations(&self, tenant: Uuid) -> String {
        format!("{}:tconvs:{{{}}}", self.prefix, tenant)
    }

    /// `P:towner:{<tenant id>}` hash: conversation id (32 hex digits) → `<version>:<agent>`
    /// (agent empty = unassigned): which owner index holds the conversation, and as of which
    /// ownership version (the `over` field of the conversation hash).
    pub fn tenant_owners(&self, tenant: Uuid) -> String {
        format!("{}:towner:{{{}}}", self.prefix, tenant)
    }

    /// `P:towned:{<tenant id>}:<agent>`: ZSET like `tconvs` of the conversations `agent` owns.
    pub fn owned_conversations(&self, tenant: Uuid, agent: &str) -> String {
        format!("{}:towned:{{{}}}:{}", self.prefix, tenant, agent)
    }

    /// `P:tunowned:{<tenant id>}`: ZSET like `tconvs` of the unassigned conversations.
    pub fn unowned_conversations(&self, tenant: Uuid) -> String {
        format!("{}:tunowned:{{{}}}", self.prefix, tenant)
    }

    /// `P:contact:{<tenant id>}:<contact id>` → contact JSON. Every contact key of a tenant
    /// shares the tenant's hash tag: a contact change is one script on one slot.
    pub fn contact(&self, tenant: Uuid, id: Uuid) -> String {
        format!("{}:contact:{{{}}}:{}", self.prefix, tenant, id.simple())
    }

    /// `P:contacts:{<tenant id>}`: ZSET of contact ids (32 hex digits, score 0), paged by lex.
    pub fn contacts(&self, tenant: Uuid) -> String {
        format!("{}:contacts:{{{}}}", self.prefix, tenant)
    }

    /// `P:caddr:{<tenant id>}` hash: `<type>:<target>` → the contact holding that address.
    pub fn contact_addresses(&self, tenant: Uuid) -> String {
        format!("{}:caddr:{{{}}}", self.prefix, tenant)
    }

    /// `P:cterms:{<tenant id>}`: ZSET (score 0) of `<term>\x01<contact id>`: `q=` prefixes are
    /// a `ZRANGEBYLEX` range.
    pub fn contact_terms(&self, tenant: Uuid) -> String {
        format!("{}:cterms:{{{}}}", self.prefix, tenant)
    }

    /// `P:ctomb:{<tenant id>}` hash: contact id → `merged:<id>`, `erased` or `deleted`.
    pub fn contact_tombs(&self, tenant: Uuid) -> String {
        format!("{}:ctomb:{{{}}}", self.prefix, tenant)
    }

    /// `P:cconvs:{<tenant id>}:<contact id>`: ZSET like `tconvs` of the contact's conversations.
    pub fn contact_conversations(&self, tenant: Uuid, id: Uuid) -> String {
        format!("{}:cconvs:{{{}}}:{}", self.prefix, tenant, id.simple())
    }

    /// `P:tfind:{<tenant id>}`: ZSET (score 0) of `<entry>\0<conversation id>` (32 hex digits),
    /// the filter index of `GET /v1.0/conversations`: entries `s:<status>`, `a:<type>:<target>`,
    /// `c:<type>` and `q:<prefix>` (`crate::store::redis` `find`). All members of one entry
    /// sort by id, so one entry's conversations page newest first with `ZREVRANGEBYLEX`.
    pub fn tenant_find(&self, tenant: Uuid) -> String {
        format!("{}:tfind:{{{}}}", self.prefix, tenant)
    }

    /// `P:tfindv:{<tenant id>}` hash (Redis Cluster only): conversation id → `<version>\n`
    /// followed by its entries filed in `tfind`, one a line, as of that room index version.
    pub fn tenant_find_versions(&self, tenant: Uuid) -> String {
        format!("{}:tfindv:{{{}}}", self.prefix, tenant)
    }

    /// `P:agents:{<tenant id>}`: ZSET of `<node id> <agent identity>` for agents with a live
    /// WebSocket on that node, scored by the Unix ms the entry expires at (heartbeat).
    pub fn agents_online(&self, tenant: Uuid) -> String {
        format!("{}:agents:{{{}}}", self.prefix, tenant)
    }

    /// `P:agentpick:{<tenant id>}` → the agent auto-assignment picked last (round robin).
    pub fn agents_last_pick(&self, tenant: Uuid) -> String {
        format!("{}:agentpick:{{{}}}", self.prefix, tenant)
    }

    /// `P:conv:{<room>}` hash: `tenant`, `doc` (conversation JSON), `seq`, `epoch`, and once
    /// assigned `oid` (owning agent, empty = none), `otm` (ms of that change), `over` (version).
    pub fn conversation(&self, room: Uuid) -> String {
        format!("{}:conv:{{{}}}", self.prefix, room)
    }

    /// `P:room:{<room>}:<part>` for the room's other keys (`hist`, `ids`, `patch`, `parts`,
    /// `eps`, `read`, `ix`).
    pub fn room(&self, room: Uuid, part: &str) -> String {
        format!("{}:room:{{{}}}:{}", self.prefix, room, part)
    }

    /// `P:room:{<room>}:idem:<key>` → seq of the message first sent with that retry key.
    pub fn idempotency(&self, room: Uuid, key: &str) -> String {
        format!("{}:room:{{{}}}:idem:{}", self.prefix, room, key)
    }

    /// Every key of a room, for deletion (idempotency keys expire by themselves).
    pub fn room_keys(&self, room: Uuid) -> Vec<String> {
        let mut keys = vec![self.conversation(room)];
        keys.extend(["hist", "ids", "patch", "parts", "eps", "read", "ix"].iter().map(|p| self.room(room, p)));
        keys
    }

    /// `P:account:<account id>` → account JSON (credentials included).
    pub fn account(&self, account: Uuid) -> String {
        format!("{}:account:{}", self.prefix, account)
    }

    /// `P:taccounts:{<tenant id>}`: SET of the tenant's account ids.
    pub fn tenant_accounts(&self, tenant: Uuid) -> String {
        format!("{}:taccounts:{{{}}}", self.prefix, tenant)
    }

    /// `P:binds:{<account id>}` hash: peer key (`<type>:<target>`) → binding JSON.
    pub fn bindings(&self, account: Uuid) -> String {
        format!("{}:binds:{{{}}}", self.prefix, account)
    }

    /// `P:pref:{<account id>}:<provider message id>` → delivery reference JSON, with a TTL.
    pub fn provider_ref(&self, account: Uuid, provider_message_id: &str) -> String {
        format!("{}:pref:{{{}}}:{}", self.prefix, account, provider_message_id)
    }

    /// `P:room:{<room>}`: the room's pub/sub channel (sharded on a cluster).
    pub fn room_channel(&self, room: Uuid) -> String {
        format!("{}:room:{{{}}}", self.prefix, room)
    }

    /// The room a `room_channel` name belongs to.
    pub fn room_of_channel(&self, channel: &str) -> Option<Uuid> {
        let rest = channel.strip_prefix(&self.prefix)?.strip_prefix(":room:{")?;
        Uuid::parse_str(rest.strip_suffix('}')?).ok()
    }

    /// `P:events:<tenant id>`: outside consumers `SUBSCRIBE` here (`SSUBSCRIBE` on a cluster).
    pub fn events_channel(&self, tenant: Uuid) -> String {
        format!("{}:events:{}", self.prefix, tenant)
    }

    /// The tenant an `events_channel` name belongs to.
    pub fn tenant_of_events_channel(&self, channel: &str) -> Option<Uuid> {
        Uuid::parse_str(channel.strip_prefix(&self.prefix)?.strip_prefix(":events:")?).ok()
    }

    /// `P:sessions:ended`: every node listens; the payload is the `sid` of a sign-in session
    /// that just ended, whose WebSockets each node closes (`crate::hub::sessions`).
    pub fn sessions_channel(&self) -> String {
        format!("{}:sessions:ended", self.prefix)
    }

    /// Whether `channel` is the `sessions_channel` (no allocation: every message asks).
    pub fn is_sessions_channel(&self, channel: &str) -> bool {
        channel.strip_prefix(&self.prefix) == Some(":sessions:ended")
    }

    /// `P:webhooks:{webhooks}:outbox`: the webhook outbox stream (`crate::webhooks::redis_store`).
    pub fn webhook_outbox(&self) -> String {
        format!("{}:webhooks:{{webhooks}}:outbox", self.prefix)
    }

    /// `P:events:{<tenant id>}:stream`: the same envelopes, for consumers that must not miss any.
    pub fn events_stream(&self, tenant: Uuid) -> String {
        format!("{}:events:{{{}}}:stream", self.prefix, tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_keys_share_one_hash_tag() {
        let k = Keys::new("sb");
        let room = Uuid::now_v7();
        let tag = format!("{{{room}}}");
        for key in k.room_keys(room).iter().chain([&k.room_channel(room), &k.idempotency(room, "x:{y}")]) {
            let open = key.find('{').unwrap();
            let close = key[open..].find('}').unwrap() + open;
            assert_eq!(&key[open..=close], tag, "{key}");
        }
        assert_eq!(k.room_of_channel(&k.room_channel(room)), Some(room));
        assert_eq!(k.room_of_channel("sb:events:x"), None);
    }
}
