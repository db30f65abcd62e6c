//! Configuration: `config/default.toml` (compiled in) < `--config FILE` < `SWITCHBOARD_*` env.
//!
//! Env keys use `__` between levels: `SWITCHBOARD_SERVER__LISTEN=0.0.0.0:8080`,
//! `SWITCHBOARD_STORE__BACKEND=redis`. `validate()` lists every problem at once so an operator
//! fixes a broken file in one pass.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use uuid::Uuid;

/// The documented defaults, so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    pub limits: LimitsConfig,
    pub ws: WsConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub channels: ChannelsConfig,
    pub webhooks: WebhooksConfig,
    pub assignment: AssignmentConfig,
}

/// Agent assignment (`crate::agents`); every key is documented in `config/default.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentConfig {
    pub auto: bool,
    pub strategy: Strategy,
    pub presence_ttl_secs: u64,
}

/// How auto-assignment picks an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The next available agent after the one picked last, in identity order.
    RoundRobin,
}

impl AssignmentConfig {
    fn validate(&self, errs: &mut Vec<String>) {
        if self.presence_ttl_secs < 3 {
            errs.push("assignment.presence_ttl_secs: must be at least 3".into());
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    pub request_timeout_ms: u64,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub max_attempts: u32,
}

/// Customer webhooks (`crate::webhooks`); every key is documented in `config/default.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub allow_private_targets: bool,
    pub max_per_tenant: usize,
    pub request_timeout_ms: u64,
    pub intercept_timeout_ms: u64,
    pub max_concurrency_per_endpoint: usize,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub retry_horizon_secs: u64,
    pub secret_grace_secs: u64,
    pub deliveries_kept: usize,
    pub lease_secs: u64,
    pub refresh_ms: u64,
}

impl WebhooksConfig {
    fn validate(&self, errs: &mut Vec<String>) {
        for (name, v) in [
            ("webhooks.max_per_tenant", self.max_per_tenant as u64),
            ("webhooks.request_timeout_ms", self.request_timeout_ms),
            ("webhooks.intercept_timeout_ms", self.intercept_timeout_ms),
            ("webhooks.max_concurrency_per_endpoint", self.max_concurrency_per_endpoint as u64),
            ("webhooks.retry_horizon_secs", self.retry_horizon_secs),
            ("webhooks.deliveries_kept", self.deliveries_kept as u64),
            ("webhooks.lease_secs", self.lease_secs),
            ("webhooks.refresh_ms", self.refresh_ms),
        ] {
            if v == 0 {
                errs.push(format!("{name}: must be greater than 0"));
            }
        }
        if self.retry_base_ms == 0 || self.retry_base_ms > self.retry_max_ms {
            errs.push("webhooks.retry_base_ms: must be > 0 and <= webhooks.retry_max_ms".into());
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub shutdown_grace_secs: u64,
    pub static_dir: String,
    pub node_id: String,
    /// Public base URL providers reach this node at (signed webhook URLs, status callbacks).
    pub public_url: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub backend: Backend,
    pub idempotency_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    pub cluster: bool,
    pub key_prefix: String,
    pub history_max_len: u64,
    pub command_timeout_ms: u64,
    pub events_stream_max_len: u64,
    pub provider_ref_ttl_secs: u64,
    /// PEM file of the CA that signed the server certificate of a `rediss://` Redis; empty =
    /// the bundled public roots (managed Redis services).
    #[serde(default)]
    pub tls_ca_file: String,
    /// `false` (default): a room written before a Redis restart starts a new epoch at its next
    /// write (or resume), since after a restart nobody can prove no acknowledged write was lost.
    /// `true` keeps epochs across restarts: for a Redis that loses nothing on restart
    /// (`appendfsync always`). See redis.md "When Redis loses acknowledged writes".
    #[serde(default)]
    pub trust_restarts: bool,
}

impl RedisConfig {
    /// The CA certificate(s) to trust for `rediss://`, read from `tls_ca_file`.
    pub fn tls_ca(&self) -> anyhow::Result<Option<Vec<u8>>> {
        if self.tls_ca_file.is_empty() {
            return Ok(None);
        }
        let pem = std::fs::read(&self.tls_ca_file)
            .map_err(|e| anyhow::anyhow!("redis.tls_ca_file `{}`: {e}", self.tls_ca_file))?;
        anyhow::ensure!(
            String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"),
            "redis.tls_ca_file `{}`: no PEM certificate in it",
            self.tls_ca_file
        );
        Ok(Some(pem))
    }

    /// Problems that would only surface once Redis is in use.
    fn validate(&self, errs: &mut Vec<String>) {
        let urls: Vec<&str> = self.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() || urls.iter().any(|u| !u.starts_with("redis://") && !u.starts_with("rediss://")) {
            errs.push(format!("redis.url: `{}` must start with redis:// or rediss://", self.url));
        }
        if let Err(e) = self.tls_ca() {
            errs.push(e.to_string());
        }
        if !self.tls_ca_file.is_empty() && urls.iter().any(|u| u.starts_with("redis://")) {
            errs.push("redis.tls_ca_file: only used with rediss:// URLs".into());
        }
        if urls.len() > 1 && !self.cluster {
            errs.push("redis.url: several URLs are only meaningful with redis.cluster = true".into());
        }
        // Braces would become the hash tag of every key and put all rooms in one cluster slot.
        if self.key_prefix.is_empty()
            || self.key_prefix.contains(['{', '}'])
            || self.key_prefix.contains(char::is_whitespace)
        {
            errs.push("redis.key_prefix: must be non-empty, without braces or whitespace".into());
        }
        if self.history_max_len == 0 {
            errs.push("redis.history_max_len: must be greater than 0".into());
        }
        if self.command_timeout_ms == 0 {
            errs.push("redis.command_timeout_ms: must be greater than 0".into());
        }
        if self.provider_ref_ttl_secs == 0 {
            errs.push("redis.provider_ref_ttl_secs: must be greater than 0".into());
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub token_secret: String,
    pub token_ttl_secs: u64,
    pub token_max_ttl_secs: u64,
    pub dev_api_key: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    #[serde(default)]
    pub id: Option<Uuid>,
    pub name: String,
    pub api_keys: Vec<String>,
    /// Default conversation timers of the tenant (`resolve_after`, `close_after`: seconds or
    /// ISO-8601 durations); a conversation may override them.
    #[serde(default)]
    pub timers: crate::model::Timers,
}

impl TenantConfig {
    /// A configured id, else one derived from the name so it is stable across restarts and nodes.
    pub fn tenant_id(&self) -> Uuid {
        self.id.unwrap_or_else(|| {
            Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("switchboard:tenant:{}", self.name).as_bytes())
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_text_bytes: usize,
    pub max_medias: usize,
    pub max_name_bytes: usize,
    pub page_size_default: usize,
    pub page_size_max: usize,
    pub max_webhook_body_bytes: usize,
    pub api_rate_per_sec: u32,
    pub api_burst: u32,
    pub provider_rate_per_sec: u32,
    pub provider_burst: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsConfig {
    pub max_frame_bytes: usize,
    pub queue_len: usize,
    pub max_subscriptions: usize,
    pub max_recovery: usize,
    pub close_timeout_ms: u64,
    /// How long a connection opened without a token may take to send its `auth` frame.
    pub auth_timeout_ms: u64,
    pub write_buffer_bytes: usize,
    pub read_buffer_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_identity: usize,
    /// Browser origins allowed to open a WebSocket; empty = any.
    pub allowed_origins: Vec<String>,
    pub ping_interval_secs: u64,
    pub idle_timeout_secs: u64,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub max_rate_limited_frames: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: String,
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Bearer token `GET /metrics` requires; empty = open.
    pub token: String,
}

impl Config {
    /// Layers defaults, an optional file and the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, Vec<String>> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(f) = file {
            if !f.exists() {
                return Err(vec![format!("config file {} does not exist", f.display())]);
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(Env::prefixed("SWITCHBOARD_").split("__").ignore(&["config"]));
        let cfg: Config = fig.extract().map_err(|e| e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The defaults alone, for tests and tools.
    pub fn defaults() -> Config {
        Figment::from(Toml::string(DEFAULT_TOML)).extract().expect("config/default.toml is valid")
    }

    /// Every problem, not just the first.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            errs.push(format!("server.listen: `{}` is not an address like 127.0.0.1:8080", self.server.listen));
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
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_text_bytes", l.max_text_bytes),
            ("limits.max_name_bytes", l.max_name_bytes),
            ("limits.page_size_default", l.page_size_default),
            ("limits.page_size_max", l.page_size_max),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::defaults().validate().unwrap();
    }

    #[test]
    fn validate_lists_every_problem() {
        let mut c = Config::defaults();
        c.server.listen = "nope".into();
        c.limits.page_size_max = 0;
        c.auth.token_secret = "short".into();
        let errs = c.validate().unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("server.listen")));
        assert!(errs.iter().any(|e| e.starts_with("auth.token_secret")));
    }

    #[test]
    fn tenant_timers_read_iso_durations_and_seconds() {
        let path = std::env::temp_dir().join(format!("switchboard-timers-{}.toml", uuid::Uuid::new_v4()));
        let toml = "[auth]\ntoken_secret = \"0123456789abcdef0123456789abcdef\"\n[[tenants]]\nname = \"acme\"\n\
                    api_keys = [\"sk_live_0123456789abcdef\"]\ntimers = { resolve_after = \"PT30M\", close_after = 86400 }\n";
        std::fs::write(&path, toml).unwrap();
        let c = Config::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        let t = c.unwrap().tenants[0].timers;
        assert_eq!((t.resolve_after, t.close_after), (Some(1800), Some(86_400)));
    }

    #[test]
    fn redis_settings_are_checked_only_for_the_redis_backend() {
        let mut c = Config::defaults();
        c.auth.token_secret = "x".repeat(32);
        c.redis.key_prefix = "a{b}".into();
        c.redis.url = "redis://a:1,redis://b:2".into();
        c.validate().unwrap();
        c.store.backend = Backend::Redis;
        let errs = c.validate().unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        c.redis.cluster = true;
        c.redis.key_prefix = "sb".into();
        c.validate().unwrap();
    }
}
