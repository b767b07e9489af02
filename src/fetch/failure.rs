//! Why one candidate gave no image: a typed per-item error. Its `kind()` is the stable name
//! counted per dataset, shown in summaries and recorded against the URL ("bad-url",
//! "http-404", "truncated", ...); such failures are counted, never fatal.

use crate::net::DownloadError;
use crate::photo::check::Rejection;

#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    /// Not an http(s) URL: a URL-list line or a search result naming something else.
    #[error("{0}")]
    BadUrl(String),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("{}", .0.to_string().trim_end())]
    Rejected(#[from] Rejection),
}

impl ItemError {
    /// The stable name this failure is counted under.
    pub fn kind(&self) -> String {
        match self {
            ItemError::BadUrl(_) => "bad-url".into(),
            ItemError::Download(e) => e.kind(),
            ItemError::Rejected(r) => r.kind().into(),
        }
    }

    /// Transient failures are retried by the next run.
    pub fn is_transient(&self) -> bool {
        matches!(self, ItemError::Download(e) if e.is_transient())
    }
}
