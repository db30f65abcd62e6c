//! The memory backend's [`JobQueue`]: none at all. Jobs go straight to this process, and a
//! retry is a timer here — on this backend nothing else survives a restart either (not the
//! rooms a delivery is for, nor the messages a re-hosted media belongs to), so a durable queue
//! would only keep work for things that are gone. Owns nothing else.

use super::{JobQueue, Queued};
use crate::app::AppState;
use crate::error::Result;
use async_trait::async_trait;

/// Keeps nothing: every push is handed back to run in this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryQueue;

#[async_trait]
impl<J: Queued> JobQueue<J> for MemoryQueue {
    fn durable(&self) -> bool {
        false
    }

    async fn push(&self, _jobs: &[J]) -> Result<bool> {
        Ok(false)
    }

    fn start(&self, _state: &AppState, _each: fn(&AppState, J)) {}

    async fn ack(&self, _token: &str) -> Result<()> {
        Ok(())
    }
}
