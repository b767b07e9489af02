//! Why a request gave no body: each failure's stable name (counted in stats) and whether it
//! is transient (retried now and by the next run). Shared by the client and the retry
//! policy, below both.

use super::guard::RefusedUrl;

/// Most redirects followed before a URL fails with "redirects".
pub const MAX_REDIRECTS: usize = 5;

/// The failure kind of an image whose site opted out of AI training.
pub const OPTED_OUT: &str = "opted-out";

/// Why a request gave no body. `reason()` is the stable name counted in stats.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0}")]
    Refused(#[from] RefusedUrl),
    #[error("not a URL: {0}")]
    BadUrl(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("body larger than network.max_bytes ({0} bytes)")]
    TooLarge(u64),
    #[error("body shorter than its Content-Length ({got} of {expected} bytes)")]
    ShortBody { got: u64, expected: u64 },
    #[error("served as HTML ({0})")]
    Html(String),
    #[error("timed out")]
    Timeout,
    #[error("more than {MAX_REDIRECTS} redirects")]
    Redirects,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("connection reset by the server")]
    Reset,
    #[error("network error: {0}")]
    Network(String),
    /// The site asked for its images not to train AI (`X-Robots-Tag: noai`, ...).
    #[error("opted out of AI training: {0}")]
    OptedOut(String),
}

impl DownloadError {
    /// The stable name this failure is counted under.
    pub fn kind(&self) -> String {
        match self {
            DownloadError::Refused(r) => r.kind().to_owned(),
            DownloadError::BadUrl(_) => "bad-url".into(),
            DownloadError::Status(code) => format!("http-{code}"),
            DownloadError::TooLarge(_) => "too-large".into(),
            DownloadError::ShortBody { .. } => "short-body".into(),
            DownloadError::Html(_) => "html".into(),
            DownloadError::Timeout => "timeout".into(),
            DownloadError::Redirects => "redirects".into(),
            DownloadError::Connect(_) => "connect".into(),
            DownloadError::Reset => "connection-reset".into(),
            DownloadError::Network(_) => "network".into(),
            DownloadError::OptedOut(_) => OPTED_OUT.into(),
        }
    }

    /// Transient failures are retried within a run and again by the next run.
    pub fn is_transient(&self) -> bool {
        match self {
            DownloadError::Status(code) => *code == 429 || *code >= 500,
            DownloadError::ShortBody { .. }
            | DownloadError::Timeout
            | DownloadError::Connect(_)
            | DownloadError::Reset
            | DownloadError::Network(_) => true,
            _ => false,
        }
    }

    pub(super) fn from_reqwest(e: reqwest::Error) -> DownloadError {
        // The guard's refusals travel inside reqwest's error chain: find them first.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<RefusedUrl>() {
                return DownloadError::Refused(refused.clone());
            }
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset)
            {
                return DownloadError::Reset;
            }
            source = err.source();
        }
        if e.is_timeout() {
            DownloadError::Timeout
        } else if e.is_redirect() {
            DownloadError::Redirects
        } else if e.is_connect() {
            DownloadError::Connect(root_cause(&e))
        } else {
            DownloadError::Network(root_cause(&e))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
