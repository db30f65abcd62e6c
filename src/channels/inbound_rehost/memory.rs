//! The memory backend's [`RehostQueue`]: none at all. A job runs and retries in this process
//! — on this backend the messages it would update do not survive a restart either.

use super::RehostQueue;
use crate::app::AppState;
use crate::channels::inbound_media::Job;
use crate::error::Result;
use async_trait::async_trait;

/// Keeps nothing: every push is handed back to run in this process.
#[derive(Debug, Default)]
pub struct MemoryRehost;

#[async_trait]
impl RehostQueue for MemoryRehost {
    async fn push(&self, _job: &Job) -> Result<bool> {
        Ok(false)
    }

    fn start(&self, _state: &AppState) {}

    async fn ack(&self, _token: &str) -> Result<()> {
        Ok(())
    }
}
