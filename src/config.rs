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
    pub retention: RetentionConfig,
    pub media: MediaConfig,
}

/// The retention sweep (`crate::conversations::retention`): how often each node trims the
/// history of tenants with `retention_days`, and how many messages one trim step removes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub sweep_secs: u64,
    pub batch: usize,
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
    /// Connections the kernel queues before `accept` (capped by `net.core.somaxconn`).
    pub listen_backlog: u32,
    pub shutdown_grace_secs: u64,
    pub static_dir: String,
    /// Directory served at `/sdk/`: the JS client's ES modules (`clients/js/src`), which the
    /// chat page and the widget import.
    pub sdk_dir: String,
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
    /// How long an agent sign-in's refresh token (an idle session) lives; ten years at most.
    pub refresh_ttl_secs: u64,
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
    /// Messages older than this many days are removed (in the background, oldest first);
    /// fractions allowed (`0.5` = 12 hours). Absent = kept for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<f64>,
}

impl TenantConfig {
    /// A configured id, else one derived from the name so it is stable across restarts and nodes.
    pub fn tenant_id(&self) -> Uuid {
        self.id.unwrap_or_else(|| {
            Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("switchboard:tenant:{}", self.name).as_bytes())
        })
    }

    /// How long the tenant's messages are kept (`retention_days`), when it sets one.
    pub fn retention(&self) -> Option<chrono::TimeDelta> {
        let days = self.retention_days.filter(|d| d.is_finite() && *d > 0.0)?;
        Some(chrono::TimeDelta::milliseconds((days.min(MAX_RETENTION_DAYS) * 86_400_000.0).round() as i64))
    }
}

/// The longest `retention_days` accepted (a thousand years: beyond it, keep everything).
pub const MAX_RETENTION_DAYS: f64 = 365_000.0;

impl RetentionConfig {
    fn validate(&self, errs: &mut Vec<String>) {
        if self.sweep_secs == 0 {
            errs.push("retention.sweep_secs: must be at least 1".into());
        }
        if self.batch == 0 || self.batch > 10_000 {
            errs.push("retention.batch: must be between 1 and 10000".into());
        }
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
    /// `GET /v1.0/conversations/counts` counts each tab up to this many (then `capped`).
    #[serde(default = "count_cap")]
    pub count_cap: usize,
    pub max_webhook_body_bytes: usize,
    pub api_rate_per_sec: u32,
    pub api_burst: u32,
    pub provider_rate_per_sec: u32,
    pub provider_burst: u32,
    /// Widget requests (`/v1.0/widget/…`, no API key) per second per client address.
    #[serde(default = "widget_rate")]
    pub widget_rate_per_sec: u32,
    #[serde(default = "widget_burst")]
    pub widget_burst: u32,
    /// Sign-in attempts (`POST /v1.0/sessions`) per minute per email; 0 = unlimited.
    #[serde(default = "login_per_email")]
    pub login_per_email_per_min: u32,
    /// Sign-in and invite-accept attempts per minute per client address; 0 = unlimited.
    #[serde(default = "login_per_address")]
    pub login_per_address_per_min: u32,
}

fn login_per_email() -> u32 {
    5
}

fn login_per_address() -> u32 {
    20
}

fn count_cap() -> usize {
    10_000
}

fn widget_rate() -> u32 {
    5
}

fn widget_burst() -> u32 {
    30
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
    /// Presence (`crate::hub::presence`): a room's join/leave announcements leave at most once
    /// per this many ms, coalesced.
    pub presence_interval_ms: u64,
    /// Rooms with more local connections than this announce no presence and list no `online`
    /// identities; `presence_stats` answers counts on demand.
    pub presence_max_members: usize,
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
}

mod media;
pub(crate) mod validate;

pub use media::{MediaBackend, MediaConfig, S3Config};

#[cfg(test)]
mod tests;
