//! `[network]` of `pipeline.toml`: how the HTTP client behaves (concurrency, timeouts,
//! retries, the byte cap, the User-Agent, which private addresses are allowed). Imports
//! nothing of the crate but `setting`.

use ipnet::IpNet;
use serde::Deserialize;

use crate::setting::Invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Downloads in flight at once, over all hosts.
    pub concurrency: usize,
    /// Downloads in flight at once to one host.
    pub per_host: usize,
    /// Seconds allowed to open a connection.
    pub connect_timeout_s: f64,
    /// Seconds allowed for a whole request, body included.
    pub total_timeout_s: f64,
    /// Extra attempts after a 429, a 5xx, a reset or a timeout.
    pub retries: u32,
    /// Largest body accepted, in bytes.
    pub max_bytes: u64,
    /// Sent with every request.
    pub user_agent: String,
    /// Allow URLs that resolve to loopback, private, link-local or unspecified addresses.
    pub allow_private: bool,
    /// Loopback or private addresses and networks allowed even so, e.g. ["10.1.2.3",
    /// "192.168.0.0/16"] for a mirror on the LAN.
    #[serde(deserialize_with = "addresses")]
    pub private_allowlist: Vec<IpNet>,
}

/// IP addresses (a host) or CIDR networks.
fn addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| {
            t.parse::<IpNet>().or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from)).map_err(
                |_| {
                    serde::de::Error::custom(format!(
                        "{t:?} is not an IP address or network (like \"10.0.0.0/8\")"
                    ))
                },
            )
        })
        .collect()
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            concurrency: 32,
            per_host: 8,
            connect_timeout_s: 10.0,
            total_timeout_s: 60.0,
            retries: 2,
            max_bytes: 20 * 1024 * 1024,
            user_agent: default_user_agent(),
            allow_private: false,
            private_allowlist: Vec::new(),
        }
    }
}

/// An honest User-Agent: who we are, and where to read about it.
pub fn default_user_agent() -> String {
    format!(
        "pipeline/{} (image dataset builder; https://github.com/pipeline-rs/pipeline)",
        env!("CARGO_PKG_VERSION")
    )
}

impl NetworkConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        if !(1..=1024).contains(&self.concurrency) {
            return Invalid::err("network.concurrency", self.concurrency, "allowed: 1 to 1024");
        }
        if !(1..=1024).contains(&self.per_host) {
            return Invalid::err("network.per_host", self.per_host, "allowed: 1 to 1024");
        }
        if !(self.connect_timeout_s > 0.0 && self.connect_timeout_s <= 3600.0) {
            let allowed = "allowed: above 0 up to 3600 seconds";
            return Invalid::err("network.connect_timeout_s", self.connect_timeout_s, allowed);
        }
        if !(self.total_timeout_s > 0.0 && self.total_timeout_s <= 86400.0) {
            let allowed = "allowed: above 0 up to 86400 seconds";
            return Invalid::err("network.total_timeout_s", self.total_timeout_s, allowed);
        }
        if self.retries > 10 {
            return Invalid::err("network.retries", self.retries, "allowed: 0 to 10");
        }
        if self.max_bytes < 1024 {
            return Invalid::err("network.max_bytes", self.max_bytes, "allowed: at least 1024");
        }
        if self.user_agent.trim().is_empty() {
            return Invalid::err("network.user_agent", "\"\"", "must not be empty");
        }
        Ok(())
    }
}
