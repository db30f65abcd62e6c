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
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub shutdown_grace_secs: u64,
    pub static_dir: String,
    pub node_id: String,
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
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsConfig {
    pub max_frame_bytes: usize,
    pub queue_len: usize,
    pub max_subscriptions: usize,
    pub max_recovery: usize,
    pub close_timeout_ms: u64,
    pub write_buffer_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: String,
    pub filter: String,
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
        if self.store.backend == Backend::Redis
            && !self.redis.url.starts_with("redis://")
            && !self.redis.url.starts_with("rediss://")
        {
            errs.push(format!("redis.url: `{}` must start with redis:// or rediss://", self.redis.url));
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
        if !matches!(self.log.format.as_str(), "human" | "json") {
            errs.push(format!("log.format: `{}` must be `human` or `json`", self.log.format));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
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
}
