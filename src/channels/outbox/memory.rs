//! The memory backend's [`JobQueue`]: none at all. Jobs go straight to this process's
//! workers, and a retry is a timer here — on this backend nothing else survives a restart
//! either, so a durable queue would keep deliveries for rooms that are gone.

use super::{Job, JobQueue};
use crate::app::AppState;
use crate::error::Result;
use async_trait::async_trait;

/// Keeps nothing: every push is handed back to run in this process.
#[derive(Debug, Default)]
pub struct MemoryQueue;

#[async_trait]
impl JobQueue for MemoryQueue {
    fn durable(&self) -> bool {
        false
    }

    async fn push(&self, _jobs: &[Job]) -> Result<bool> {
        Ok(false)
    }

    fn start(&self, _state: &AppState) {}

    async fn ack(&self, _token: &str) -> Result<()> {
        Ok(())
    }
}
