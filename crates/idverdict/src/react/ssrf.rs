//! SSRF guard for callback targets: a configured URL must not be a way into the machine or
//! its private network. Checked twice: before the request (clear error, no request made) and
//! inside the HTTP client's resolver, so the address connected to is the address checked
//! (a name that re-resolves to 127.0.0.1 between the two cannot slip through).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why an address is refused, or `None` when it is public.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared address space (CGNAT)")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking (198.18.0.0/15)")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if matches!(
        (o[0], o[1], o[2]),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
    ) {
        Some("documentation")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("broadcast, multicast or reserved")
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("private (unique local)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("broadcast, multicast or reserved")
    } else if s[0] == 0x2002 {
        // 6to4 relays are deprecated; such an address reaches whatever IPv4 host it embeds.
        Some("6to4 (2002::/16)")
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: the embedded IPv4 server and client addresses are obfuscated.
        Some("Teredo (2001::/32)")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("documentation")
    } else if s[0] == 0x0100 && s[1..4].iter().all(|x| *x == 0) {
        Some("discard-only (100::/64)")
    } else if s[0] == 0x0064 && s[1] == 0xff9b {
        // NAT64. Through the well-known prefix (64:ff9b::/96) the gateway connects to the
        // IPv4 address in the last 32 bits; a DNS64 resolver hands these out for public
        // hosts, so that embedded address is judged. Any other address under 64:ff9b::/32
        // (the local-use 64:ff9b:1::/48 among them) is a network's own translator.
        if s[2..6].iter().all(|x| *x == 0) {
            classify_v4(embedded_v4(ip)).map(|_| "NAT64 form of an internal IPv4")
        } else {
            Some("local NAT64 (64:ff9b::/32)")
        }
    } else if s[0..6].iter().all(|x| *x == 0) {
        // IPv4-compatible (::a.b.c.d), deprecated: judged by the IPv4 address.
        classify_v4(embedded_v4(ip))
    } else {
        None
    }
}

/// The IPv4 address in the last 32 bits of an IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// Why a host name is refused before it is even resolved: names that mean this machine by
/// definition (`localhost` and everything under it, in any case, with or without the trailing
/// dot of a fully qualified name), and IP literals that are refused. A resolver may well send
/// `localhost.` to the loopback address, so the dot must not get a name past the check.
pub fn classify_name(name: &str) -> Option<&'static str> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Some("empty host name");
    }
    if name == "localhost"
        || name.ends_with(".localhost")
        || matches!(
            name.as_str(),
            "localhost.localdomain" | "ip6-localhost" | "ip6-loopback"
        )
    {
        return Some("loopback name");
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    literal.parse::<IpAddr>().ok().and_then(classify)
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SsrfError {
    #[error("refused target {host}: {reason} (set delivery.allow_private_targets to allow)")]
    RefusedName { host: String, reason: &'static str },
    #[error("refused target {host} ({ip}): {reason} address (set delivery.allow_private_targets to allow)")]
    Refused {
        host: String,
        ip: IpAddr,
        reason: &'static str,
    },
    #[error("cannot resolve {host}: {message}")]
    Resolve { host: String, message: String },
    #[error("invalid callback URL: {0}")]
    Url(String),
}

/// Resolve the URL's host and refuse it if any address is private (unless allowed).
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), SsrfError> {
    let parsed = url::Url::parse(url).map_err(|e| SsrfError::Url(e.to_string()))?;
    if allow_private {
        return Ok(());
    }
    let host = parsed
        .host()
        .ok_or_else(|| SsrfError::Url("no host".to_string()))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => {
            if let Some(reason) = classify_name(name) {
                return Err(SsrfError::RefusedName {
                    host: name.to_string(),
                    reason,
                });
            }
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| SsrfError::Resolve {
                    host: name.to_string(),
                    message: e.to_string(),
                })?
                .map(|a| a.ip())
                .collect()
        }
    };
    for ip in addrs {
        if let Some(reason) = classify(ip) {
            return Err(SsrfError::Refused {
                host: host.to_string(),
                ip,
                reason,
            });
        }
    }
    Ok(())
}

/// A DNS resolver for the callback client that drops refused addresses.
#[derive(Debug, Clone, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            if let Some(reason) = classify_name(&host) {
                return Err(format!("refused target {host}: {reason}").into());
            }
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| classify(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let reason = all
                    .first()
                    .and_then(|a| classify(a.ip()))
                    .unwrap_or("no address");
                return Err(format!("refused target {host}: {reason}").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The resolver to install, if the guard is on.
pub fn resolver(allow_private: bool) -> Option<Arc<GuardedResolver>> {
    (!allow_private).then(|| Arc::new(GuardedResolver))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<&'static str> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn refuses_internal_ranges() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "ff02::1",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "100::1",
            "::127.0.0.1",
        ] {
            assert!(c(ip).is_some(), "{ip} should be refused");
        }
        assert_eq!(c("127.0.0.1"), Some("loopback"));
        assert_eq!(c("10.0.0.1"), Some("private"));
        assert_eq!(c("169.254.169.254"), Some("link-local"));
        assert_eq!(c("0.0.0.0"), Some("unspecified"));
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "198.20.0.1",
            "192.0.1.1",
            // A DNS64 resolver's answer for a public IPv4-only host.
            "64:ff9b::808:808",
        ] {
            assert_eq!(c(ip), None, "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn check_url_refuses_literal_and_localhost() {
        let e = check_url("http://127.0.0.1:9/cb", false).await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = check_url("http://[::1]:9/cb", false).await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(check_url("http://localhost:9/cb", false).await.is_err());
        assert!(check_url("http://127.0.0.1:9/cb", true).await.is_ok());
    }

    #[tokio::test]
    async fn names_meaning_this_machine_are_refused_before_resolution() {
        // Refused by name: no resolver is asked, whatever it would have answered.
        for url in [
            "http://localhost./cb",
            "http://LOCALHOST../cb",
            "http://api.localhost./cb",
            "http://localhost.localdomain/cb",
        ] {
            let e = check_url(url, false).await.unwrap_err();
            assert!(matches!(e, SsrfError::RefusedName { .. }), "{url}: {e}");
        }
        // IP literals with the dot are addresses, refused as such.
        for url in ["http://127.0.0.1./cb", "http://0x7f.1./cb"] {
            let e = check_url(url, false).await.unwrap_err();
            assert!(matches!(e, SsrfError::Refused { .. }), "{url}: {e}");
        }
        assert_eq!(classify_name("localhost."), Some("loopback name"));
        assert_eq!(classify_name("[::1]"), Some("loopback"));
        assert_eq!(classify_name("example.com."), None);
        assert_eq!(classify_name("notlocalhost.example"), None);
    }

    #[tokio::test]
    async fn the_client_resolver_refuses_them_too() {
        use reqwest::dns::Resolve;
        for name in ["localhost.", "x.localhost", "127.0.0.1"] {
            let resolved = GuardedResolver
                .resolve(name.parse().unwrap())
                .await
                .map(|a| a.collect::<Vec<_>>());
            assert!(resolved.is_err(), "{name}: {resolved:?}");
        }
    }
}
