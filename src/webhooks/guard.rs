//! The SSRF guard: webhook targets must be http(s) URLs on public addresses.
//!
//! Checked twice: `check_url` when a webhook is created or updated (resolving its host and
//! refusing it if *any* address is internal), and `GuardedResolver`, the DNS resolver of the
//! webhook HTTP client, on every connection a delivery or intercept call opens — so a host that
//! re-points at 10.0.0.1 after validation is refused at connect time (only its public addresses
//! are used). URLs with an IP literal never reach a resolver; `check_literal` runs before each
//! request for them. `webhooks.allow_private_targets = true` turns all of this off. Which
//! addresses are public is `super::ranges`' policy.

use crate::error::{Error, Result};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};

/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

pub use super::ranges::is_public;

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("invalid_url", message)
}

/// Parses `raw` and checks scheme, length and host form (no DNS).
pub fn parse(raw: &str) -> Result<Url> {
    if raw.len() > MAX_URL_LEN {
        return Err(invalid(format!("url must be at most {MAX_URL_LEN} bytes")));
    }
    let url = Url::parse(raw).map_err(|e| invalid(format!("url is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("url must be an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("url must not contain credentials"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url must have a host"));
    }
    Ok(url)
}

fn refused(ip: IpAddr) -> Error {
    let inside = match ip {
        IpAddr::V6(v6) => super::ranges::embedded_v4(v6).map(|v4| format!(" (embedding {v4})")).unwrap_or_default(),
        IpAddr::V4(_) => String::new(),
    };
    invalid(format!(
        "url resolves to {ip}{inside}, a special-purpose address (loopback, private, link-local, documentation, \
         translation, reserved…); set webhooks.allow_private_targets to allow it"
    ))
}

/// The host of `url` when it is an IP literal (`[::1]` is bracketed in URLs).
fn literal(url: &Url) -> Option<IpAddr> {
    url.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// For a URL whose host is an IP literal: refuses it unless public. Hostnames pass (the
/// resolver checks them at connect time).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<()> {
    let Some(ip) = literal(url) else { return Ok(()) };
    if allow_private || is_public(ip) { Ok(()) } else { Err(refused(ip)) }
}

/// Full validation on create/update: syntax, then every address the host resolves to.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<Url> {
    let url = parse(raw)?;
    check_literal(&url, allow_private)?;
    if allow_private || literal(&url).is_some() {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| invalid(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(invalid(format!("{host} has no address")));
    }
    if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(refused(bad.ip()));
    }
    Ok(url)
}

/// DNS for the webhook HTTP client: system resolution, internal addresses dropped.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = all.into_iter().filter(|a| allow || is_public(a.ip())).collect();
            if ok.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no public address (SSRF guard)").into();
                return Err(e);
            }
            let addrs: Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_checked() {
        assert!(check_url("ftp://example.com/x", true).await.is_err());
        assert!(check_url("http://user:pw@example.com/", true).await.is_err());
        assert!(check_url("not a url", true).await.is_err());
        assert!(check_url("http://127.0.0.1:9/", false).await.is_err());
        assert!(check_url("http://[::1]:9/", false).await.is_err());
        assert!(check_url("http://localhost:9/", false).await.is_err());
        assert!(check_url("http://127.0.0.1:9/", true).await.is_ok());
        assert!(check_url("https://93.184.216.34/hook", false).await.is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_addresses() {
        let name = |s: &str| s.parse::<Name>().unwrap();
        assert!(GuardedResolver { allow_private: false }.resolve(name("localhost")).await.is_err());
        let mut ok = GuardedResolver { allow_private: true }.resolve(name("localhost")).await.unwrap();
        assert!(ok.next().is_some_and(|a| a.ip().is_loopback()));
    }
}
