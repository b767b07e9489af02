//! HTTP for every stage that touches the network: search pages and image downloads.
//!
//! One reqwest client per command, built from `[network]`: connect and total deadlines,
//! bounded redirects, a byte cap, per-host limits, the retry policy (`retry`), and the
//! address guard that refuses special-purpose destinations unless `network.allow_private`
//! is set.
//!
//! Owns the client, the guard, the retry policy, `[network]`, and the opt-out signals a
//! site sends (`optout`, `[opt_outs]`); imports only `setting`.

mod client;
mod config;
mod error;
mod guard;
pub mod optout;
mod retry;

pub use client::{Body, Http, Page};
pub use config::{NetworkConfig, default_user_agent};
pub use error::{DownloadError, OPTED_OUT};
pub use guard::{RefusedUrl, forbidden_ip};
pub use optout::{HostRules, OptOutConfig};

/// TLS for every HTTP client of the process (ours and the S3 client's): rustls on ring.
/// A second call finds it installed.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
