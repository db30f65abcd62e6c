//! Which IP addresses count as public for webhook targets: the SSRF guard's address policy.
//!
//! The blocks are the IANA IPv4 and IPv6 Special-Purpose Address Registries (as updated
//! 2025), plus multicast, the deprecated site-local block and, for IPv6, everything outside
//! the global unicast space 2000::/3 (the IPv6 Address Space registry reserves the rest). Prefix
//! matching is `ipnet`'s. The table itself is written out here, on purpose: no maintained crate
//! carries the current registries (`ip_rfc` is a 2020 copy of std's unstable `is_global` and
//! misses e.g. 3fff::/20, 5f00::/16, 2001:30::/28, 100:0:0:1::/64; std's `is_global` is still
//! unstable), and the list changes rarely; check it against the registries when they change.
//!
//! Every special-purpose block is refused, including the few IANA marks "globally reachable"
//! (PCP/TURN anycast 192.0.0.9-10, AS112 and AMT relays, ORCHIDv2, drone remote ID): they are
//! network infrastructure, never a customer's webhook receiver. One exception: addresses that
//! merely *spell* an IPv4 address in IPv6 — IPv4-mapped `::ffff:a.b.c.d`, SIIT
//! `::ffff:0:a.b.c.d` and the well-known NAT64 prefix `64:ff9b::/96` — are judged as that IPv4
//! address, so `::ffff:8.8.8.8` is as public as 8.8.8.8 and `::ffff:0:7f00:1` as loopback as
//! 127.0.0.1. Tunnel prefixes that embed an IPv4 (6to4 2002::/16, Teredo 2001::/32) and the
//! deprecated IPv4-compatible `::a.b.c.d` are refused whatever they embed.

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IANA IPv4 Special-Purpose Address Registry, plus multicast (224.0.0.0/4).
const V4: &[&str] = &[
    "0.0.0.0/8",       // "this network" (RFC 791)
    "10.0.0.0/8",      // private-use (RFC 1918)
    "100.64.0.0/10",   // shared address space / CGNAT (RFC 6598)
    "127.0.0.0/8",     // loopback (RFC 1122)
    "169.254.0.0/16",  // link local (RFC 3927)
    "172.16.0.0/12",   // private-use (RFC 1918)
    "192.0.0.0/24",    // IETF protocol assignments, incl. DS-Lite, PCP/TURN anycast, NAT64 discovery (RFC 6890)
    "192.0.2.0/24",    // documentation TEST-NET-1 (RFC 5737)
    "192.31.196.0/24", // AS112-v4 (RFC 7535)
    "192.52.193.0/24", // AMT (RFC 7450)
    "192.88.99.0/24",  // deprecated 6to4 relay anycast (RFC 7526)
    "192.168.0.0/16",  // private-use (RFC 1918)
    "192.175.48.0/24", // direct delegation AS112 service (RFC 7534)
    "198.18.0.0/15",   // benchmarking (RFC 2544)
    "198.51.100.0/24", // documentation TEST-NET-2 (RFC 5737)
    "203.0.113.0/24",  // documentation TEST-NET-3 (RFC 5737)
    "224.0.0.0/4",     // multicast (RFC 5771)
    "240.0.0.0/4",     // reserved, incl. limited broadcast 255.255.255.255 (RFC 1112, RFC 919)
];

/// IANA IPv6 Special-Purpose Address Registry, plus multicast and site-local; the
/// embedded-IPv4 forms judged by their IPv4 (see the module docs) are handled before this.
const V6: &[&str] = &[
    "::/96",             // unspecified, loopback, deprecated IPv4-compatible (RFC 4291)
    "::ffff:0:0/96",     // IPv4-mapped, when not judged as its IPv4 (RFC 4291)
    "64:ff9b:1::/48",    // local-use IPv4/IPv6 translation (RFC 8215)
    "100::/64",          // discard-only (RFC 6666)
    "100:0:0:1::/64",    // dummy IPv6 prefix (RFC 9780)
    "2001::/23",         // IETF protocol assignments: Teredo, benchmarking, AMT, AS112, ORCHID… (RFC 2928)
    "2001:db8::/32",     // documentation (RFC 3849)
    "2002::/16",         // 6to4 (RFC 3056)
    "2620:4f:8000::/48", // direct delegation AS112 service (RFC 7534)
    "3fff::/20",         // documentation (RFC 9637)
    "5f00::/16",         // segment routing SIDs (RFC 9602)
    "fc00::/7",          // unique local (RFC 4193)
    "fe80::/10",         // link-local unicast (RFC 4291)
    "fec0::/10",         // deprecated site-local (RFC 3879)
    "ff00::/8",          // multicast (RFC 4291)
];

/// True for addresses a webhook may reach (see the module docs for the policy).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match translated_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !V4.iter().any(|n| n.parse::<Ipv4Net>().is_ok_and(|n| n.contains(&ip)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let global_unicast: Ipv6Net = "2000::/3".parse().expect("valid prefix");
    global_unicast.contains(&ip) && !V6.iter().any(|n| n.parse::<Ipv6Net>().is_ok_and(|n| n.contains(&ip)))
}

/// The IPv4 address `ip` is only another spelling of: IPv4-mapped `::ffff:0:0/96`, SIIT
/// `::ffff:0:0:0/96` (RFC 2765) or well-known-prefix NAT64 `64:ff9b::/96` (RFC 6052).
fn translated_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32);
    match s[..6] {
        [0, 0, 0, 0, 0, 0xffff] | [0, 0, 0, 0, 0xffff, 0] | [0x64, 0xff9b, 0, 0, 0, 0] => Some(tail()),
        _ => None,
    }
}

/// The IPv4 address embedded in a tunnel or translation address, for error messages:
/// the forms of `translated_v4`, IPv4-compatible `::a.b.c.d`, 6to4 `2002:AABB:CCDD::/48` and
/// Teredo `2001:0:…` (whose client address is stored inverted).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let join = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    match s {
        _ if translated_v4(ip).is_some() => translated_v4(ip),
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) > (0, 1) => Some(join(hi, lo)),
        [0x2002, hi, lo, ..] => Some(join(hi, lo)),
        [0x2001, 0, _, _, _, _, hi, lo] => Some(join(!hi, !lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn the_tables_parse() {
        assert!(V4.iter().all(|n| n.parse::<Ipv4Net>().is_ok()));
        assert!(V6.iter().all(|n| n.parse::<Ipv6Net>().is_ok()));
    }

    #[test]
    fn special_purpose_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "192.88.99.1",
            "192.31.196.1",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::8.8.8.8",
            "::127.0.0.1",
            "::8.8.8.8",
            "2001:db8::1",
            "2002:7f00:1::",
            "2002:808:808::1",
            "::ffff:0:7f00:1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "3fff::1",
            "5f00::1",
            "2620:4f:8000::1",
            "4000::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "::ffff:0:808:808",
            "64:ff9b::808:808",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn embedded_ipv4_is_unwrapped() {
        let v4 = |s: &str| embedded_v4(s.parse().unwrap()).map(|a| a.to_string());
        assert_eq!(v4("2002:7f00:1::").as_deref(), Some("127.0.0.1"));
        assert_eq!(v4("::ffff:0:7f00:1").as_deref(), Some("127.0.0.1"));
        assert_eq!(v4("64:ff9b::a00:1").as_deref(), Some("10.0.0.1"));
        assert_eq!(v4("2001:0:4136:e378:8000:63bf:3fff:fdd2").as_deref(), Some("192.0.2.45"));
        assert_eq!(v4("2606:4700::1"), None);
    }
}
