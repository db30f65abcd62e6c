//! [`ContactStore`] on Redis: every key of a tenant's contacts carries the tenant's hash tag,
//! so a [`Change`] is one Lua script on one slot (cluster included).
//!
//! The script is deliberately generic: the caller (see `super::Change`) has already worked
//! out which addresses move, which search entries come and go and which documents are
//! written; the script checks the compare-and-set guards and that no address it claims
//! belongs to a third contact, then does all of it or none. Layout in `crate::redis::keys`
//! and `docs/redis.md`.

use super::{Applied, Change, ContactStore, Tomb, clean_term, entry_id};
use crate::error::{Error, Result};
use crate::model::Contact;
use crate::redis::{Keys, RedisClient, ToRedisArgsDyn};
use async_trait::async_trait;
use redis::{Script, cmd};
use uuid::Uuid;

/// KEYS: 1 address hash, 2 contact list, 3 search terms, 4 tombs, then the documents and
/// conversation lists the plan (ARGV[1], JSON) refers to by index.
const APPLY: &str = r#"
local p = cjson.decode(ARGV[1])
for _, e in ipairs(p.expect) do
  local cur = redis.call('GET', KEYS[e[1]])
  if (cur or '') ~= e[2] then return {'stale'} end
end
local removing = {}
for _, id in ipairs(p.removing) do removing[id] = true end
for _, c in ipairs(p.claim) do
  local v = redis.call('HGET', KEYS[1], c[1])
  if v and v ~= c[2] and not removing[v] then return {'taken', c[1], v} end
end
for _, r in ipairs(p.release) do
  if redis.call('HGET', KEYS[1], r[1]) == r[2] then redis.call('HDEL', KEYS[1], r[1]) end
end
for _, c in ipairs(p.claim) do redis.call('HSET', KEYS[1], c[1], c[2]) end
for _, s in ipairs(p.set) do redis.call('SET', KEYS[s[1]], s[2]) end
for _, k in ipairs(p.del) do redis.call('DEL', KEYS[k]) end
for _, m in ipairs(p.list_add) do redis.call('ZADD', KEYS[2], 0, m) end
for _, m in ipairs(p.list_rem) do redis.call('ZREM', KEYS[2], m) end
for _, m in ipairs(p.terms_rem) do redis.call('ZREM', KEYS[3], m) end
for _, m in ipairs(p.terms_add) do redis.call('ZADD', KEYS[3], 0, m) end
for _, t in ipairs(p.tomb) do redis.call('HSET', KEYS[4], t[1], t[2]) end
for _, u in ipairs(p.union) do
  redis.call('ZUNIONSTORE', KEYS[u[1]], 2, KEYS[u[1]], KEYS[u[2]], 'AGGREGATE', 'MIN')
  redis.call('DEL', KEYS[u[2]])
end
return {'ok'}
"#;

#[derive(Debug, Clone)]
pub struct RedisContacts {
    redis: RedisClient,
    keys: Keys,
    apply: Script,
}

impl RedisContacts {
    pub fn new(redis: RedisClient, keys: &Keys) -> RedisContacts {
        RedisContacts { redis, keys: keys.clone(), apply: Script::new(APPLY) }
    }

    async fn docs(&self, tenant: Uuid, ids: &[Uuid]) -> Result<Vec<Contact>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.contact(tenant, *id)).collect();
        let docs: Vec<Option<String>> = self.redis.query(cmd("MGET").arg(&keys)).await?;
        docs.into_iter().flatten().map(|d| decode(&d)).collect()
    }
}

fn encode(c: &Contact) -> Result<String> {
    serde_json::to_string(c).map_err(|e| Error::internal_from("encoding a contact", e))
}

fn decode(s: &str) -> Result<Contact> {
    serde_json::from_str(s).map_err(|e| Error::internal_from("decoding a stored contact", e))
}

/// The script's keys and JSON plan for `change`.
fn plan(keys: &Keys, tenant: Uuid, change: &Change) -> Result<(Vec<String>, String)> {
    let mut ks = vec![
        keys.contact_addresses(tenant),
        keys.contacts(tenant),
        keys.contact_terms(tenant),
        keys.contact_tombs(tenant),
    ];
    let mut at = |k: String| -> usize {
        ks.push(k);
        ks.len()
    };
    let (mut expect, mut set, mut del, mut list_add, mut list_rem, mut tomb) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (old, new) in &change.put {
        let k = at(keys.contact(tenant, new.id));
        expect.push(serde_json::json!([k, old.as_ref().map(encode).transpose()?.unwrap_or_default()]));
        set.push(serde_json::json!([k, encode(new)?]));
        list_add.push(new.id.simple().to_string());
    }
    for (old, t) in &change.remove {
        let k = at(keys.contact(tenant, old.id));
        expect.push(serde_json::json!([k, encode(old)?]));
        del.push(k);
        list_rem.push(old.id.simple().to_string());
        tomb.push(serde_json::json!([old.id.to_string(), t.encode()]));
    }
    let mut union = Vec::new();
    if let Some((from, into)) = change.move_conversations {
        let dest = at(keys.contact_conversations(tenant, into));
        let src = at(keys.contact_conversations(tenant, from));
        union.push(serde_json::json!([dest, src]));
    }
    let (claims, releases) = change.claims_and_releases();
    let pairs = |v: Vec<super::Owned>| -> Vec<serde_json::Value> {
        v.into_iter().map(|(k, id)| serde_json::json!([k, id.to_string()])).collect()
    };
    let (terms_rem, terms_add) = change.term_changes();
    let removing: Vec<String> = change.removing().iter().map(Uuid::to_string).collect();
    let p = serde_json::json!({
        "expect": expect, "removing": removing, "claim": pairs(claims), "release": pairs(releases),
        "set": set, "del": del, "list_add": list_add, "list_rem": list_rem,
        "terms_rem": terms_rem, "terms_add": terms_add, "tomb": tomb, "union": union,
    });
    Ok((ks, p.to_string()))
}

#[async_trait]
impl ContactStore for RedisContacts {
    async fn apply(&self, tenant: Uuid, change: &Change) -> Result<Applied> {
        let (keys, plan) = plan(&self.keys, tenant, change)?;
        let args: [&dyn ToRedisArgsDyn; 1] = [&plan];
        let reply: Vec<String> = self.redis.script(&self.apply, &keys, &args).await?;
        match reply.as_slice() {
            [ok] if ok == "ok" => Ok(Applied::Done),
            [s] if s == "stale" => Ok(Applied::Stale),
            [t, address, owner] if t == "taken" => Ok(Applied::Taken {
                address: address.clone(),
                owner: owner.parse().map_err(|_| Error::internal("contact owner is no id"))?,
            }),
            _ => Err(Error::internal("unexpected reply from the contact script")),
        }
    }

    async fn get(&self, tenant: Uuid, id: Uuid) -> Result<Option<Contact>> {
        let doc: Option<String> = self.redis.query(cmd("GET").arg(self.keys.contact(tenant, id))).await?;
        Ok(doc.map(|d| decode(&d)).transpose()?.filter(|c| c.tenant_id == tenant))
    }

    async fn tomb(&self, tenant: Uuid, id: Uuid) -> Result<Option<Tomb>> {
        let t: Option<String> =
            self.redis.query(cmd("HGET").arg(self.keys.contact_tombs(tenant)).arg(id.to_string())).await?;
        Ok(t.as_deref().and_then(Tomb::decode))
    }

    async fn by_address(&self, tenant: Uuid, address: &str) -> Result<Option<Uuid>> {
        let id: Option<String> =
            self.redis.query(cmd("HGET").arg(self.keys.contact_addresses(tenant)).arg(address)).await?;
        Ok(id.and_then(|s| s.parse().ok()))
    }

    async fn list(&self, tenant: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Contact>> {
        let ids = self.lex_page(&self.keys.contacts(tenant), before, limit).await?;
        self.docs(tenant, &ids).await
    }

    async fn search(&self, tenant: Uuid, prefix: &str, limit: usize) -> Result<Vec<Contact>> {
        let prefix = clean_term(prefix);
        let min = [b"[".as_slice(), prefix.as_bytes()].concat();
        let max = [b"[".as_slice(), prefix.as_bytes(), &[0xff]].concat();
        // A contact has a few terms per prefix at most: read a few pages' worth, then dedupe.
        let entries: Vec<String> = self
            .redis
            .query(
                cmd("ZRANGEBYLEX")
                    .arg(self.keys.contact_terms(tenant))
                    .arg(min)
                    .arg(max)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit * 4),
            )
            .await?;
        let mut ids: Vec<Uuid> = Vec::new();
        for id in entries.iter().filter_map(|e| entry_id(e)) {
            if !ids.contains(&id) && ids.len() < limit {
                ids.push(id);
            }
        }
        self.docs(tenant, &ids).await
    }

    async fn link_conversation(&self, tenant: Uuid, contact: Uuid, conversation: Uuid) -> Result<()> {
        let key = self.keys.contact_conversations(tenant, contact);
        self.redis.query(cmd("ZADD").arg(key).arg(0).arg(conversation.simple().to_string())).await
    }

    async fn conversations(
        &self,
        tenant: Uuid,
        contact: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Uuid>> {
        self.lex_page(&self.keys.contact_conversations(tenant, contact), before, limit).await
    }

    async fn unlink_conversation(&self, tenant: Uuid, contact: Uuid, conversation: Uuid) -> Result<()> {
        let key = self.keys.contact_conversations(tenant, contact);
        self.redis.query(cmd("ZREM").arg(key).arg(conversation.simple().to_string())).await
    }
}

impl RedisContacts {
    /// Ids of a lex ZSET of 32-hex ids, newest first, below `before`.
    async fn lex_page(&self, key: &str, before: Option<Uuid>, limit: usize) -> Result<Vec<Uuid>> {
        let max = before.map_or_else(|| "+".to_string(), |b| format!("({}", b.simple()));
        let members: Vec<String> =
            self.redis.query(cmd("ZREVRANGEBYLEX").arg(key).arg(max).arg("-").arg("LIMIT").arg(0).arg(limit)).await?;
        Ok(members.iter().filter_map(|m| Uuid::parse_str(m).ok()).collect())
    }
}
