//! The SSRF guard: webhook URLs must be http(s) and reach only public
//! addresses. It runs when an endpoint is saved and again before each
//! connection (DNS answers can change between the two), unless the
//! operator allows private targets (`SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`url` must be an absolute http or https URL")]
    NotHttp,
    #[error("`url` must not carry credentials")]
    Credentials,
    #[error("`url` resolves to {0}, which is not a public address")]
    Private(IpAddr),
    #[error("`url`'s host does not resolve")]
    Unresolved,
}

/// A parsed webhook URL: scheme, host and port, enough to resolve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

/// Checks the URL's form (not where it resolves).
pub fn parse(url: &str) -> Result<Target, TargetError> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(TargetError::NotHttp);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(TargetError::Credentials);
    }
    let default_port = if https { 443 } else { 80 };
    let port_of = |p: &str| p.parse::<u16>().map_err(|_| TargetError::NotHttp);
    // `[v6]` or `[v6]:port`; otherwise `host` or `host:port`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((h, "")) => (h, default_port),
            Some((h, rest)) => (h, port_of(rest.strip_prefix(':').ok_or(TargetError::NotHttp)?)?),
            None => return Err(TargetError::NotHttp),
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (authority, default_port),
        },
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TargetError::NotHttp);
    }
    Ok(Target {
        https,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// Whether an address is reachable on the public internet: not loopback,
/// private, link-local, shared, documentation, multicast, unspecified or
/// otherwise reserved. An IPv6 address that carries an IPv4 address
/// (IPv4-mapped, IPv4-compatible, IPv4-translated, 6to4, Teredo, NAT64)
/// is judged by the IPv4 address it leads to, since that is where a
/// request to it can end up (`[::127.0.0.1]` is loopback by another name).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Embedded::None => public_v6(v6),
            Embedded::One(v4) => public_v4(v4),
            Embedded::Two(a, b) => public_v4(a) && public_v4(b),
            Embedded::Local => false,
        },
    }
}

/// The IPv4 address(es) an IPv6 address embeds.
enum Embedded {
    None,
    One(Ipv4Addr),
    /// Teredo: the relay server and the client behind it; both must be public.
    Two(Ipv4Addr, Ipv4Addr),
    /// A form that only has meaning on a local network (local-use NAT64).
    Local,
}

fn embedded_v4(ip: Ipv6Addr) -> Embedded {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Embedded::One(v4(hi, lo)),
        // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Embedded::One(v4(hi, lo)),
        // :: and ::1 are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => Embedded::None,
        // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        [0, 0, 0, 0, 0, 0, hi, lo] => Embedded::One(v4(hi, lo)),
        // NAT64 well-known prefix 64:ff9b::/96
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => Embedded::One(v4(hi, lo)),
        // The rest of 64:ff9b::/32, local-use NAT64 64:ff9b:1::/48 (RFC 8215)
        // included: translators of a local network
        [0x0064, 0xff9b, ..] => Embedded::Local,
        // 6to4 2002:a.b.c.d::/48
        [0x2002, hi, lo, ..] => Embedded::One(v4(hi, lo)),
        // Teredo 2001:0::/32: server in bits 32-63, client inverted in 96-127
        [0x2001, 0x0000, shi, slo, _, _, chi, clo] => Embedded::Two(v4(shi, slo), v4(!chi, !clo)),
        _ => Embedded::None,
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    // Only global unicast (2000::/3) reaches the internet; everything else
    // is loopback, link- or site-local, multicast or reserved.
    (first & 0xe000) == 0x2000
        && !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// Resolves the target and refuses it if any address is not public.
pub async fn resolve_public(target: &Target) -> Result<Vec<std::net::SocketAddr>, TargetError> {
    let addrs: Vec<_> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|_| TargetError::Unresolved)?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolved);
    }
    if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(TargetError::Private(bad.ip()));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_without_credentials() {
        assert_eq!(
            parse("https://example.com/hooks").unwrap(),
            Target {
                https: true,
                host: "example.com".into(),
                port: 443
            }
        );
        assert_eq!(parse("http://Example.com:8080/x?y").unwrap().port, 8080);
        assert_eq!(parse("http://[::1]:9000/").unwrap().host, "::1");
        assert_eq!(parse("http://[::1]/").unwrap().port, 80);
        for bad in [
            "ftp://example.com",
            "example.com",
            "http://",
            "http://a b/",
            "javascript:alert(1)",
        ] {
            assert_eq!(parse(bad), Err(TargetError::NotHttp), "{bad}");
        }
        assert_eq!(parse("https://user:pw@example.com/"), Err(TargetError::Credentials));
    }

    #[test]
    fn private_and_reserved_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            // IPv6 forms that carry a loopback or private IPv4 address.
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:0:127.0.0.1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::192.168.0.1",
            "64:ff9b:1::8.8.8.8",
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
            "2001:0:a00:1:8000:63bf:f7f7:f7f7",     // Teredo, server 10.0.0.1
            "64:ff9b::1:a00:1",                     // the rest of 64:ff9b::/32
            "64:ff9b:2::1",
            "fec0::1", // site-local, outside 2000::/3
            "100::1",  // discard prefix
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "::8.8.8.8",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo, client 8.8.8.8
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[tokio::test]
    async fn loopback_names_are_refused_after_resolution() {
        let t = parse("http://localhost:1/").unwrap();
        assert!(matches!(resolve_public(&t).await, Err(TargetError::Private(_))));
        let t = parse("http://127.0.0.1:1/").unwrap();
        assert!(matches!(resolve_public(&t).await, Err(TargetError::Private(_))));
    }
}
