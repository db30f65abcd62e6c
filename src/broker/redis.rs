//! The multi-node broker: Redis pub/sub between nodes, and event envelopes for outside consumers.
//!
//! Owns publishing ephemeral frames and events, and starts the control task (`control`) that
//! owns this node's subscriptions over a dedicated pub/sub link (`link`) and hands what
//! arrives to the one [`Handler`]. Durable message frames are published by the store's append
//! script, not here; every kind travels on the room's channel `P:room:{<room>}` encoded as a
//! typed [`Publication`] (`crate::wire::publication`), so a receiver tells them apart without
//! parsing JSON.
//!
//! Events are published as JSON on `P:events:<tenant>` (for `SUBSCRIBE`rs) and appended to
//! `P:events:{<tenant>}:stream` (for consumers that must not miss any), besides the in-process
//! broadcast for in-process observers (webhooks do not read it). The node's event publisher
//! hands them over in batches (`Broker::publish_events`): one pipeline per batch on one
//! server, one per slot on a cluster, in the batch's order. While this node has conversation watchers
//! of a tenant (`crate::watch`), the control task also subscribes to that tenant's event
//! channel and hands what arrives — this node's events and every other node's — to them.
//! Ended sign-in sessions go out on `P:sessions:ended`, which every node always listens to.

mod control;
mod link;

use super::{Broker, Event, Handler};
use crate::config::RedisConfig;
use crate::error::{Error, Result};
use crate::redis::{Keys, RedisClient};
use crate::store::Store;
use crate::wire::Publication;
use async_trait::async_trait;
use redis::cmd;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

/// See the module docs.
#[derive(Debug)]
pub struct RedisBroker {
    redis: RedisClient,
    keys: Keys,
    interest: mpsc::UnboundedSender<control::Interest>,
    events: broadcast::Sender<Event>,
    events_stream_max_len: u64,
}

impl RedisBroker {
    /// Starts the subscription control task; it stops when the broker is dropped.
    /// `redis` is the shared command connection (publishing), `store` answers the sync reads.
    pub fn start(redis: RedisClient, config: &RedisConfig, handler: Handler, store: Arc<dyn Store>) -> RedisBroker {
        let keys = Keys::new(&config.key_prefix);
        let (interest, rx) = mpsc::unbounded_channel();
        let control = control::Control {
            url: config.url.clone(),
            cluster: config.cluster,
            // Checked (readable, PEM) when the store connected just before.
            ca: config.tls_ca().ok().flatten(),
            timeout: Duration::from_millis(config.command_timeout_ms),
            keys: keys.clone(),
            handler,
            store,
            interest: rx,
        };
        tokio::spawn(control.run());
        RedisBroker {
            redis,
            keys,
            interest,
            events: broadcast::channel(4096).0,
            events_stream_max_len: config.events_stream_max_len,
        }
    }
}

impl RedisBroker {
    /// An event's `PUBLISH` and, unless the stream is off (`redis.events_stream_max_len = 0`),
    /// its capped `XADD`.
    fn event_commands(&self, tenant: Uuid, json: &str) -> (redis::Cmd, Option<redis::Cmd>) {
        let mut publish = cmd(self.redis.publish_command());
        publish.arg(self.keys.events_channel(tenant)).arg(json);
        let xadd = (self.events_stream_max_len > 0).then(|| {
            let mut xadd = cmd("XADD");
            xadd.arg(self.keys.events_stream(tenant))
                .arg("MAXLEN")
                .arg("~")
                .arg(self.events_stream_max_len)
                .arg("*")
                .arg("event")
                .arg(json);
            xadd
        });
        (publish, xadd)
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, publication: Publication) -> Result<()> {
        let (Some(room), Some(payload)) = (publication.room(), publication.encode()) else {
            return Err(Error::internal("only room publications cross nodes"));
        };
        let publish = self.redis.publish_command();
        self.redis.query::<()>(cmd(publish).arg(self.keys.room_channel(room)).arg(payload)).await
    }

    async fn publish_event(&self, event: &Event) -> Result<()> {
        self.publish_events(std::slice::from_ref(event)).await
    }

    async fn publish_events(&self, events: &[Event]) -> Result<()> {
        let mut encoded: Vec<(Uuid, String)> = Vec::with_capacity(events.len());
        for event in events {
            // No receiver is fine: nobody may listen in-process.
            let _ = self.events.send(event.clone());
            let json = serde_json::to_string(event).map_err(|e| Error::internal_from("encode event", e))?;
            encoded.push((event.tenant_id, json));
        }
        if !self.redis.is_cluster() {
            // One server: the whole batch in one pipeline, commands run in the order sent.
            let mut pipe = redis::pipe();
            for (tenant, json) in &encoded {
                let (publish, xadd) = self.event_commands(*tenant, json);
                pipe.add_command(publish).ignore();
                if let Some(x) = xadd {
                    pipe.add_command(x).ignore();
                }
            }
            return self.redis.pipe::<()>(&pipe).await;
        }
        // A cluster: the channel and the stream of a tenant are in two slots (and tenants in
        // others), so one pipeline per slot — each in the batch's order — sent together.
        let mut slots: Vec<(String, redis::Pipeline)> = Vec::new();
        let mut add = |slot: String, c: redis::Cmd| match slots.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, p)) => {
                p.add_command(c).ignore();
            }
            None => {
                let mut p = redis::pipe();
                p.add_command(c).ignore();
                slots.push((slot, p));
            }
        };
        for (tenant, json) in &encoded {
            let (publish, xadd) = self.event_commands(*tenant, json);
            add(self.keys.events_channel(*tenant), publish);
            if let Some(x) = xadd {
                add(self.keys.events_stream(*tenant), x);
            }
        }
        let done = futures_util::future::join_all(slots.iter().map(|(_, p)| self.redis.pipe::<()>(p))).await;
        done.into_iter().collect()
    }

    async fn end_session(&self, sid: &str) -> Result<()> {
        // Every node's control task listens on this channel from the moment it connects.
        let publish = self.redis.publish_command();
        self.redis.query::<()>(cmd(publish).arg(self.keys.sessions_channel()).arg(sid)).await
    }

    fn room_interest(&self, room: Uuid) {
        // Only fails once the control task is gone, i.e. while shutting down.
        let _ = self.interest.send(control::Interest::Room(room));
    }

    fn tenant_interest(&self, tenant: Uuid) {
        let _ = self.interest.send(control::Interest::Tenant(tenant));
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
