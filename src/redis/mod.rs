//! Redis as shared plumbing: the command client, the key layout and the stream work queue.
//!
//! Everything on Redis — the store, the broker, the channel outbox, customer webhooks, agent
//! presence — talks to it through these three pieces, so connection handling, deadlines,
//! error mapping and key names exist once. This module issues commands but decides nothing:
//! what the keys hold and when they change belongs to the component that uses them.

mod client;
mod keys;
mod pump;
pub mod queue;

pub use client::{RedisClient, ToRedisArgsDyn, cluster_builder, single_client, unavailable, urls};
pub use keys::Keys;
pub use pump::{Pump, pump};
pub use queue::{Entry, StreamQueue};
