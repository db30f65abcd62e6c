//! The SSRF guard: webhook targets must be http(s) URLs on public addresses.
//!
//! Checked twice: `check_url` when a webhook is created or updated (resolving its host and
//! refusing it if *any* address is internal), and `GuardedResolver`, the DNS resolver of the
//! webhook HTTP client, on every connection a delivery or intercept call opens — so a host that
//! re-points at 10.0.0.1 after validation is refused at connect time (only its public addresses
//! are used). URLs with an IP literal never reach a resolver; `check_literal` runs before each
//! request for them. `webhooks.allow_private_targets = true` turns all of this off.

use crate::error::{Error, Result};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// True for addresses a webhook may reach: not loopback, private, link-local, unique-local,
/// unspecified, multicast, broadcast, shared (CGNAT) or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address too.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(s[..6] == [0, 0, 0, 0, 0, 0] // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0) // site local (deprecated) fec0::/10
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network" 0.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved 240.0.0.0/4
}

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
    invalid(format!(
        "url resolves to {ip}, a loopback/private/link-local/reserved address (set webhooks.allow_private_targets to allow it)"
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

    #[test]
    fn internal_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

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
