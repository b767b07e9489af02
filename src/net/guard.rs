//! The address guard: which destinations a request may reach.
//!
//! Host names are checked after DNS (a resolver that drops forbidden addresses, so a name
//! that only resolves to 127.0.0.1 fails before any connection), IP literals before the
//! request, and both again on every redirect hop. While the guard is on the client uses no
//! proxy: a proxy would resolve and reach the target past the guarded resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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
    /// The failure name recorded for the URL.
    pub fn kind(&self) -> &'static str {
        match self {
            RefusedUrl::Scheme(_) => "bad-url",
            RefusedUrl::Private(_) => "private-address",
            RefusedUrl::NoHost => "bad-url",
        }
    }
}

/// Networks a fetch must not reach (IANA special-purpose registries): this host, private
/// (RFC 1918, unique local), shared (CGNAT), loopback, link-local, IETF protocol
/// assignments, documentation, benchmarking, multicast, reserved and broadcast; Teredo and
/// local-use NAT64, whose targets cannot be checked. IPv6 forms that carry an IPv4 address
/// (mapped, compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that address.
const FORBIDDEN: [&str; 24] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/32",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

fn forbidden_nets() -> &'static [IpNet] {
    static NETS: std::sync::OnceLock<Vec<IpNet>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| FORBIDDEN.iter().map(|n| n.parse().expect("constant network")).collect())
}

/// True for addresses a fetch must not reach: see `FORBIDDEN`.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = embedded_ipv4(v6)
    {
        return forbidden_ip(IpAddr::V4(v4));
    }
    forbidden_nets().iter().any(|net| net.contains(&ip))
}

/// The IPv4 address an IPv6 one carries: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        // `::` and `::1` stay IPv6 (unspecified, loopback); both are forbidden either way.
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) > (0, 1) => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
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
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(forbidden_ip(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "::ffff:8.8.8.8",
        ] {
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
