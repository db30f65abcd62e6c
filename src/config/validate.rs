//! Checking a loaded configuration: every problem at once, each naming its key and what a
//! valid value looks like, so an operator fixes a broken file in one pass (`check-config`).

use super::*;

/// The longest `auth.refresh_ttl_secs` (ten years).
pub const MAX_REFRESH_TTL_SECS: u64 = 10 * 365 * 86400;

impl Config {
    /// Every problem, not just the first.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            errs.push(format!("server.listen: `{}` is not an address like 127.0.0.1:8080", self.server.listen));
        }
        if !(1..=65_535).contains(&self.server.listen_backlog) {
            errs.push("server.listen_backlog: must be between 1 and 65535".into());
        }
        if self.server.node_id.contains(char::is_whitespace) {
            errs.push("server.node_id: must not contain whitespace".into());
        }
        if self.store.backend == Backend::Redis {
            self.redis.validate(&mut errs);
        }
        if !self.auth.token_secret.is_empty() && self.auth.token_secret.len() < 32 {
            errs.push(
                "auth.token_secret: use at least 32 characters (or leave empty for a random per-process secret)".into(),
            );
        }
        if self.auth.token_ttl_secs == 0 || self.auth.token_ttl_secs > self.auth.token_max_ttl_secs {
            errs.push("auth.token_ttl_secs: must be > 0 and <= auth.token_max_ttl_secs".into());
        }
        if !(1..=MAX_REFRESH_TTL_SECS).contains(&self.auth.refresh_ttl_secs) {
            errs.push("auth.refresh_ttl_secs: must be between 1 and 315360000 (ten years)".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if t.name.trim().is_empty() {
                errs.push(format!("tenants[{i}].name: must not be empty"));
            }
            if t.api_keys.is_empty() {
                errs.push(format!("tenants[{i}].api_keys: give at least one key"));
            }
            for k in &t.api_keys {
                if k.len() < 16 {
                    errs.push(format!("tenants[{i}].api_keys: keys must be at least 16 characters"));
                }
                if !seen.insert(k.clone()) {
                    errs.push(format!("tenants[{i}].api_keys: a key is used twice"));
                }
            }
            if let Some(d) = t.retention_days
                && !(d.is_finite() && d > 0.0 && d <= MAX_RETENTION_DAYS)
            {
                errs.push(format!(
                    "tenants[{i}].retention_days: `{d}` must be a number of days > 0 and <= {MAX_RETENTION_DAYS} (fractions allowed; leave it out to keep messages for ever)"
                ));
            }
        }
        self.media.validate(self.store.backend == Backend::Redis, &mut errs);
        let l = &self.limits;
        for (name, v) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_text_bytes", l.max_text_bytes),
            ("limits.max_name_bytes", l.max_name_bytes),
            ("limits.page_size_default", l.page_size_default),
            ("limits.page_size_max", l.page_size_max),
            ("limits.count_cap", l.count_cap),
            ("ws.max_frame_bytes", self.ws.max_frame_bytes),
            ("ws.queue_len", self.ws.queue_len),
            ("ws.max_subscriptions", self.ws.max_subscriptions),
        ] {
            if v == 0 {
                errs.push(format!("{name}: must be greater than 0"));
            }
        }
        if l.page_size_default > l.page_size_max {
            errs.push("limits.page_size_default: must not exceed limits.page_size_max".into());
        }
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            errs.push(format!("server.public_url: `{}` must start with http:// or https://", self.server.public_url));
        }
        if self.channels.max_attempts == 0 {
            errs.push("channels.max_attempts: must be at least 1".into());
        }
        if self.channels.retry_base_ms == 0 || self.channels.retry_base_ms > self.channels.retry_max_ms {
            errs.push("channels.retry_base_ms: must be > 0 and <= channels.retry_max_ms".into());
        }
        if !matches!(self.log.format.as_str(), "human" | "json") {
            errs.push(format!("log.format: `{}` must be `human` or `json`", self.log.format));
        }
        self.validate_operations(&mut errs);
        self.webhooks.validate(&mut errs);
        self.assignment.validate(&mut errs);
        self.retention.validate(&mut errs);
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// Limits, rate limits, keepalive, origins and the metrics token.
    fn validate_operations(&self, errs: &mut Vec<String>) {
        let (l, ws) = (&self.limits, &self.ws);
        for (name, v) in [
            ("limits.max_webhook_body_bytes", l.max_webhook_body_bytes),
            ("ws.max_connections", ws.max_connections),
            ("ws.max_connections_per_identity", ws.max_connections_per_identity),
        ] {
            if v == 0 {
                errs.push(format!("{name}: must be greater than 0"));
            }
        }
        for (rate, burst, name) in [
            (l.api_rate_per_sec, l.api_burst, "limits.api_burst"),
            (l.provider_rate_per_sec, l.provider_burst, "limits.provider_burst"),
            (l.widget_rate_per_sec, l.widget_burst, "limits.widget_burst"),
            (ws.rate_per_sec, ws.rate_burst, "ws.rate_burst"),
        ] {
            if rate > 0 && burst == 0 {
                errs.push(format!("{name}: must be at least 1 when its rate is set (rate 0 = unlimited)"));
            }
        }
        if ws.ping_interval_secs == 0 || ws.idle_timeout_secs <= ws.ping_interval_secs {
            errs.push("ws.idle_timeout_secs: must be greater than ws.ping_interval_secs, which must be > 0".into());
        }
        for o in &ws.allowed_origins {
            let host = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")).unwrap_or("");
            if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
                errs.push(format!(
                    "ws.allowed_origins: `{o}` must be an origin like https://app.example.com (scheme and host, no path)"
                ));
            }
        }
        if self.store.backend == Backend::Redis && self.auth.token_secret.is_empty() {
            errs.push("auth.token_secret: required with store.backend = \"redis\" (every node must verify the tokens the others mint)".into());
        }
        if !self.metrics.token.is_empty() && self.metrics.token.len() < 16 {
            errs.push("metrics.token: use at least 16 characters (or leave empty for an open /metrics)".into());
        }
    }
}
