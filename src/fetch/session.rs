//! What a command that runs the graph holds over its runs: the HTTP client, the hosts'
//! opt-out rules, the stop token, and the signals (SIGINT, SIGTERM) that cancel it (the
//! graph then drains, and a second signal, or a drain longer than [`DRAIN_DEADLINE`],
//! exits at once). `fetch`, `import`, `refresh` and a shard worker each open one.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Context, DRAIN_DEADLINE, Hosts, Stats};
use crate::config::Config;
use crate::interrupts::Interrupts;
use crate::net::{Http, NetworkConfig};
use crate::store::Store;

/// Why a session could not open.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("building the HTTP client: {0}")]
    Http(String),
    #[error("listening for SIGINT and SIGTERM: {0}")]
    Signals(#[from] std::io::Error),
}

pub struct Session {
    pub http: Arc<Http>,
    /// Each host's opt-out rules, read once for all the runs.
    pub hosts: Arc<Hosts>,
    /// Cancelled by the first signal (and by a run's own end: top reached, a fatal error).
    pub stop: CancellationToken,
    interrupts: Interrupts,
}

impl Session {
    pub fn open(network: &NetworkConfig) -> Result<Session, SessionError> {
        let http = Arc::new(Http::new(network).map_err(|e| SessionError::Http(e.to_string()))?);
        let stop = CancellationToken::new();
        let cancel = stop.clone();
        let interrupts = Interrupts::listen(move || cancel.cancel(), Some(DRAIN_DEADLINE))?;
        Ok(Session { http, hosts: Arc::default(), stop, interrupts })
    }

    /// The context of a run on `store`. Its stop is a child of the session's: a signal
    /// stops every run, a run's own end (its top reached) stops it alone.
    pub fn context(&self, config: Config, store: Arc<Store>) -> Arc<Context> {
        Arc::new(Context {
            config,
            store,
            http: self.http.clone(),
            hosts: self.hosts.clone(),
            stats: Stats::default(),
            stop: self.stop.child_token(),
        })
    }

    /// The exit status a signal asked for (130 or 143), if one came.
    pub fn signal(&self) -> Option<u8> {
        self.interrupts.code()
    }
}
