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
    } else if let Some(v4) = ip.to_ipv4() {
        // IPv4-compatible (::a.b.c.d) and NAT64 forms are judged by their IPv4 address.
        classify_v4(v4).filter(|_| s[0..6].iter().all(|x| *x == 0))
    } else {
        None
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SsrfError {
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
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| SsrfError::Resolve {
                host: name.to_string(),
                message: e.to_string(),
            })?
            .map(|a| a.ip())
            .collect(),
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
}
