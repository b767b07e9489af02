//! `pipeline.toml`: every tunable of the graph, with its default and its allowed range.
//!
//! The file is optional (built-in defaults apply when it is absent); when present it is
//! parsed strictly: unknown keys are refused and errors name the file, line and column.
//! Structure and limits live here; runtime switches (`--top`, `--json`) are CLI flags.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

use crate::curate::config::CurateConfig;
use crate::dataset::BuildSettings;
use crate::engines::EngineName;
use crate::report::config::ReportConfig;
use crate::train::config::TrainConfig;

/// The whole configuration, as read from `pipeline.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    pub store: StoreConfig,
    pub network: NetworkConfig,
    pub fetch: FetchConfig,
    pub engines: EnginesConfig,
    pub images: ImagesConfig,
    pub dedup: DedupConfig,
    pub build: BuildSettings,
    pub curate: CurateConfig,
    pub train: TrainConfig,
    pub report: ReportConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Root folder of the store (index, blobs, datasets, runs); for a bucket store, this
    /// machine's cache of it.
    pub path: PathBuf,
    /// A bucket store, `s3://bucket/prefix` (`--store` sets it when given an s3:// URL).
    pub bucket: Option<String>,
    /// Where a bucket store is cached on this machine [default:
    /// $XDG_CACHE_HOME/pipeline/s3/BUCKET/PREFIX, or ~/.cache/…].
    pub cache: Option<PathBuf>,
}

impl StoreConfig {
    /// Applies `--store`: an s3:// URL names a bucket store, anything else a folder.
    pub fn choose(&mut self, store: &str) {
        if store.starts_with("s3://") {
            self.bucket = Some(store.to_owned());
        } else {
            self.bucket = None;
            self.path = PathBuf::from(store);
        }
    }

    /// For a bucket store, points `path` at its cache on this machine: a folder named
    /// from the parsed URL's parts (checked when the URL was given).
    pub fn resolve_cache(&mut self) {
        let Some(Ok(url)) = self.bucket.as_deref().map(BucketUrl::parse) else { return };
        self.path = self.cache.clone().unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
                .unwrap_or_else(std::env::temp_dir);
            let place = base.join("pipeline").join("s3").join(&url.bucket);
            url.prefix.iter().fold(place, |path, part| path.join(part))
        });
    }
}

/// A bucket store's URL, `s3://BUCKET[/PREFIX]`, taken apart. Its parts become object keys
/// and this machine's cache folder, so none may be empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    pub bucket: String,
    pub prefix: Vec<String>,
}

impl BucketUrl {
    /// Why `text` is not a bucket URL, if it is not.
    pub fn parse(text: &str) -> Result<BucketUrl, String> {
        let rest = text.strip_prefix("s3://").ok_or("the scheme is not s3://")?;
        let mut parts = rest.strip_suffix('/').unwrap_or(rest).split('/');
        let bucket = parts.next().unwrap_or_default();
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !bucket.contains("..");
        if !bucket_ok {
            return Err(format!("{bucket:?} is not a bucket name (3-63 of a-z 0-9 . -)"));
        }
        let prefix: Vec<String> = parts.map(str::to_owned).collect();
        if let Some(bad) = prefix.iter().find(|p| {
            p.is_empty()
                || *p == "."
                || *p == ".."
                || p.chars().any(|c| c.is_control() || c == '\\')
        }) {
            return Err(format!("the prefix has a part {bad:?}"));
        }
        Ok(BucketUrl { bucket: bucket.to_owned(), prefix })
    }
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Engines tried in order when neither the command nor the query file names any.
    pub engines: Vec<EngineName>,
}

/// `engines.<name>.base_url` for each engine, so tests and mirrors can point it elsewhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnginesConfig {
    pub bing: EngineConfig,
    pub duckduckgo: EngineConfig,
    pub openverse: EngineConfig,
    pub wikimedia: EngineConfig,
    pub google: EngineConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub base_url: Url,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Images whose shorter side is below this are rejected as too small.
    pub min_side: u32,
    /// Images with more pixels than this are rejected before decoding (decompression bombs).
    pub max_pixels: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Two images whose 256-bit perceptual hashes differ in at most this many bits are
    /// near-duplicates. 0 disables near-duplicate detection (exact duplicates are always caught).
    pub phash_distance: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { path: PathBuf::from("store"), bucket: None, cache: None }
    }
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

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig { engines: vec![EngineName::Bing, EngineName::Duckduckgo] }
    }
}

impl EnginesConfig {
    pub fn base_url(&self, engine: EngineName) -> &Url {
        match engine {
            EngineName::Bing => &self.bing.base_url,
            EngineName::Duckduckgo => &self.duckduckgo.base_url,
            EngineName::Openverse => &self.openverse.base_url,
            EngineName::Wikimedia => &self.wikimedia.base_url,
            EngineName::Google => &self.google.base_url,
        }
    }
}

impl Default for EnginesConfig {
    fn default() -> Self {
        let at = |e: EngineName| EngineConfig {
            base_url: Url::parse(e.default_base_url()).expect("built-in engine URLs parse"),
        };
        EnginesConfig {
            bing: at(EngineName::Bing),
            duckduckgo: at(EngineName::Duckduckgo),
            openverse: at(EngineName::Openverse),
            wikimedia: at(EngineName::Wikimedia),
            google: at(EngineName::Google),
        }
    }
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig { min_side: 128, max_pixels: 50_000_000 }
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig { phash_distance: 16 }
    }
}

/// A configuration or query file that cannot be used. The message names the file and,
/// for syntax and type errors, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key} = {value}: {allowed}")]
    Invalid { path: PathBuf, key: &'static str, value: String, allowed: &'static str },
}

impl Config {
    /// Loads `path`; a missing file gives the built-in defaults only when `required` is false
    /// (the default `./pipeline.toml`), while a file named with `--config` must exist.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
        }
    }

    /// Parses and validates the text of a config file named `path` (used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_toml(path, text)?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, value: String, allowed| {
            Err(ConfigError::Invalid { path: path.to_owned(), key, value, allowed })
        };
        let n = &self.network;
        if !(1..=1024).contains(&n.concurrency) {
            return invalid("network.concurrency", n.concurrency.to_string(), "allowed: 1 to 1024");
        }
        if !(1..=1024).contains(&n.per_host) {
            return invalid("network.per_host", n.per_host.to_string(), "allowed: 1 to 1024");
        }
        if !(n.connect_timeout_s > 0.0 && n.connect_timeout_s <= 3600.0) {
            let v = n.connect_timeout_s.to_string();
            return invalid("network.connect_timeout_s", v, "allowed: above 0 up to 3600 seconds");
        }
        if !(n.total_timeout_s > 0.0 && n.total_timeout_s <= 86400.0) {
            let v = n.total_timeout_s.to_string();
            return invalid("network.total_timeout_s", v, "allowed: above 0 up to 86400 seconds");
        }
        if n.retries > 10 {
            return invalid("network.retries", n.retries.to_string(), "allowed: 0 to 10");
        }
        if n.max_bytes < 1024 {
            return invalid("network.max_bytes", n.max_bytes.to_string(), "allowed: at least 1024");
        }
        if n.user_agent.trim().is_empty() {
            return invalid("network.user_agent", "\"\"".into(), "must not be empty");
        }
        if let Some(Err(_)) = self.store.bucket.as_deref().map(BucketUrl::parse) {
            let v = self.store.bucket.clone().unwrap_or_default();
            return invalid(
                "store.bucket",
                v,
                "expected s3://BUCKET[/PREFIX], no empty, . or .. parts",
            );
        }
        if self.fetch.engines.is_empty() {
            return invalid("fetch.engines", "[]".into(), "name at least one engine");
        }
        for engine in EngineName::ALL {
            let url = self.engines.base_url(engine);
            if !matches!(url.scheme(), "http" | "https") {
                return invalid("engines.*.base_url", url.to_string(), "must be http or https");
            }
        }
        if self.images.min_side == 0 {
            return invalid("images.min_side", "0".into(), "allowed: 1 or more pixels");
        }
        if self.images.max_pixels < u64::from(self.images.min_side).pow(2) {
            let v = self.images.max_pixels.to_string();
            return invalid("images.max_pixels", v, "must be at least images.min_side squared");
        }
        if self.dedup.phash_distance > 64 {
            let v = self.dedup.phash_distance.to_string();
            return invalid("dedup.phash_distance", v, "allowed: 0 to 64 bits");
        }
        let b = &self.build;
        if !(16..=4096).contains(&b.size) {
            return invalid("build.size", b.size.to_string(), "allowed: 16 to 4096 pixels");
        }
        if !(0.0..1.0).contains(&b.test_fraction) {
            let v = b.test_fraction.to_string();
            return invalid("build.test_fraction", v, "allowed: 0 up to (not including) 1");
        }
        if !(1..=100_000).contains(&b.shard_size) {
            return invalid("build.shard_size", b.shard_size.to_string(), "allowed: 1 to 100000");
        }
        if let Err((key, value, allowed)) = self.curate.check() {
            return invalid(key, value, allowed);
        }
        if let Err((key, value, allowed)) = self.report.check() {
            return invalid(key, value, allowed);
        }
        if let Err(message) = self.train.check() {
            return Err(ConfigError::Parse { path: path.to_owned(), message });
        }
        Ok(())
    }
}

/// Parses TOML into `T`, turning syntax, type and unknown-key errors into a message that
/// names the file, line and column.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let place = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        });
        ConfigError::Parse {
            path: path.to_owned(),
            message: format!("{}{}", place.unwrap_or_default(), e.message()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::parse(Path::new("pipeline.toml"), "").unwrap();
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = Config::parse(Path::new("p.toml"), "[network]\nconcurrency = 4\nspeed = 9\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml: line 3, column 1: unknown field `speed`"), "{err}");
    }

    #[test]
    fn negative_timeout_names_the_allowed_range() {
        let err = Config::parse(Path::new("p.toml"), "[network]\ntotal_timeout_s = -1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "p.toml: network.total_timeout_s = -1: allowed: above 0 up to 86400 seconds"
        );
    }

    #[test]
    fn unknown_engine_is_refused() {
        let err = Config::parse(Path::new("p.toml"), "[fetch]\nengines = [\"yahoo\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2, column 12") && err.contains("unknown variant `yahoo`"),
            "{err}"
        );
    }
}
