//! The address guard: which destinations a request may reach.
//!
//! Host names are checked after DNS (a resolver that drops forbidden addresses, so a name
//! that only resolves to 127.0.0.1 fails before any connection), IP literals before the
//! request, and both again on every redirect hop.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a URL was refused before any connection was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedUrl {
    #[error("only http and https URLs are fetched, not {0}")]
    Scheme(String),
    #[error(
        "{0} is a loopback, private, link-local or unspecified address (network.allow_private or network.private_allowlist would allow it)"
    )]
    Private(String),
    #[error("URL has no host")]
    NoHost,
}

impl RefusedUrl {
    /// The failure reason recorded for the URL.
    pub fn reason(&self) -> &'static str {
        match self {
            RefusedUrl::Scheme(_) => "bad-url",
            RefusedUrl::Private(_) => "private-address",
            RefusedUrl::NoHost => "bad-url",
        }
    }
}

/// True for addresses a fetch must not reach: loopback, private (RFC 1918, unique local),
/// link-local, unspecified, shared (CGNAT), broadcast and multicast.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Which forbidden addresses are reachable after all: all of them (`network.allow_private`)
/// or the listed ones (`network.private_allowlist`, e.g. a mirror on the LAN).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    pub allow_private: bool,
    pub allowlist: Vec<IpNet>,
}

impl AddressPolicy {
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || !forbidden_ip(ip) || self.allowlist.iter().any(|n| n.contains(&ip))
    }

    /// Checks what can be checked without DNS: scheme, host presence, IP-literal hosts.
    pub fn check_url(&self, url: &Url) -> Result<(), RefusedUrl> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RefusedUrl::Scheme(url.scheme().to_owned()));
        }
        let ip = match url.host() {
            None => return Err(RefusedUrl::NoHost),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        if !self.allows(ip) {
            return Err(RefusedUrl::Private(ip.to_string()));
        }
        Ok(())
    }
}

/// A resolver that keeps only the addresses the policy allows, failing when none is left.
pub struct GuardedResolver(pub Arc<AddressPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                all.iter().copied().filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() && !all.is_empty() {
                let shown = format!("{host} ({})", all[0].ip());
                return Err(Box::new(RefusedUrl::Private(shown)) as Box<_>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(forbidden_ip(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1", "100.128.0.1"] {
            assert!(!forbidden_ip(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn literal_urls() {
        let strict = AddressPolicy::default();
        let check = |u: &str| strict.check_url(&Url::parse(u).unwrap());
        assert_eq!(
            check("http://127.0.0.1:8080/a.jpg"),
            Err(RefusedUrl::Private("127.0.0.1".into()))
        );
        assert_eq!(check("http://[::1]/a.jpg"), Err(RefusedUrl::Private("::1".into())));
        assert_eq!(check("ftp://example.com/a.jpg"), Err(RefusedUrl::Scheme("ftp".into())));
        assert_eq!(check("https://example.com/a.jpg"), Ok(()));
        let all = AddressPolicy { allow_private: true, allowlist: vec![] };
        assert!(all.check_url(&Url::parse("http://127.0.0.1/").unwrap()).is_ok());
        let listed =
            AddressPolicy { allow_private: false, allowlist: vec!["10.0.0.0/8".parse().unwrap()] };
        assert!(listed.check_url(&Url::parse("http://10.9.8.7/").unwrap()).is_ok());
        assert!(listed.check_url(&Url::parse("http://192.168.0.1/").unwrap()).is_err());
    }
}
