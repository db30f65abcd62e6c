//! Retry pacing shared by every outbox (channel deliveries, customer webhooks).
//!
//! Lives below both so neither imports the other: exponential backoff from a base, capped,
//! with ±25% jitter so that many deliveries failing together do not retry in lockstep.

use rand::Rng;
use std::time::Duration;

/// Backoff before attempt `n + 1`: base·2ⁿ capped at `max_ms`, with ±25% jitter.
pub fn backoff(base_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempt.min(20)).min(max_ms);
    let jitter = rand::thread_rng().gen_range(0.75..=1.25);
    Duration::from_millis(((exp as f64) * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_grows_and_is_capped() {
        let d0 = backoff(100, 10_000, 0).as_millis();
        let d3 = backoff(100, 10_000, 3).as_millis();
        let d30 = backoff(100, 10_000, 30).as_millis();
        assert!((75..=125).contains(&d0), "{d0}");
        assert!((600..=1000).contains(&d3), "{d3}");
        assert!((7500..=12500).contains(&d30), "{d30}");
    }
}
