//! One pub/sub connection to Redis, single server or cluster, behind one small interface.
//!
//! Owns the transport of subscriptions only: connect, (un)subscribe, the next received message,
//! a liveness ping, and noticing that the connection is gone. It does not decide *what* to
//! subscribe to or what to do after a loss — the control task does, and it replaces the whole
//! link on any failure rather than trusting a half-repaired one.
//!
//! On one server it is a RESP2 `PubSub` connection (works with any Redis). On a cluster it is a
//! RESP3 cluster connection whose push messages arrive on a channel: `SSUBSCRIBE` goes to the
//! shard owning each room channel, and the library's `Disconnection` push tells us a shard
//! connection was lost.

use crate::redis::{cluster_builder, single_client};
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{Msg, PushInfo, PushKind, RedisResult};
use std::time::Duration;
use tokio::sync::mpsc;

pub(super) enum Link {
    Single { sink: PubSubSink, stream: PubSubStream },
    Cluster { conn: ClusterConnection, pushes: mpsc::UnboundedReceiver<PushInfo> },
}

impl Link {
    /// Opens a fresh pub/sub connection with no subscriptions.
    /// `ca`: the PEM CA to trust for `rediss://` (see `redis.tls_ca_file`).
    pub async fn connect(url: &str, cluster: bool, ca: Option<&[u8]>, timeout: Duration) -> RedisResult<Link> {
        if cluster {
            let (tx, pushes) = mpsc::unbounded_channel();
            let client = cluster_builder(url, ca)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(tx)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(1)
                .build()?;
            let conn = client.get_async_connection().await?;
            Ok(Link::Cluster { conn, pushes })
        } else {
            let client = single_client(url, ca)?;
            let (sink, stream) = client.get_async_pubsub().await?.split();
            Ok(Link::Single { sink, stream })
        }
    }

    /// Subscribes to `channels` (no-op when empty).
    pub async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        match self {
            Link::Single { sink, .. } => sink.subscribe(channels).await,
            Link::Cluster { conn, .. } => {
                // One command per channel: a multi-channel SSUBSCRIBE must stay within one slot.
                let all = channels.iter().map(|c| {
                    let mut conn = conn.clone();
                    async move { conn.ssubscribe(c).await }
                });
                futures_util::future::try_join_all(all).await.map(|_| ())
            }
        }
    }

    pub async fn unsubscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        match self {
            Link::Single { sink, .. } => sink.unsubscribe(channels).await,
            Link::Cluster { conn, .. } => {
                let all = channels.iter().map(|c| {
                    let mut conn = conn.clone();
                    async move { conn.sunsubscribe(c).await }
                });
                futures_util::future::try_join_all(all).await.map(|_| ())
            }
        }
    }

    /// The next message on a subscribed channel; `None` once the connection is lost.
    /// Cancel-safe: it only receives from a channel.
    pub async fn next(&mut self) -> Option<Msg> {
        match self {
            Link::Single { stream, .. } => futures_util::StreamExt::next(stream).await,
            Link::Cluster { pushes, .. } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::Disconnection => return None,
                    PushKind::Message | PushKind::SMessage => {
                        if let Some(m) = Msg::from_push_info(push) {
                            return Some(m);
                        }
                    }
                    _ => {} // (un)subscribe confirmations and the like
                }
            },
        }
    }

    /// A round trip on the link, so a silently dead connection is noticed.
    pub async fn ping(&mut self) -> RedisResult<()> {
        match self {
            Link::Single { sink, .. } => sink.ping::<redis::Value>().await.map(|_| ()),
            Link::Cluster { conn, .. } => redis::cmd("PING").query_async::<redis::Value>(conn).await.map(|_| ()),
        }
    }
}
