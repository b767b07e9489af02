//! `serve`: trained runs over HTTP, for people who just want a photo colorized: a page
//! (`templates/serve/index.html`: one file, nothing from elsewhere) and a JSON API
//! (`api`); each run's colorizer is loaded once and runs on its own thread (`worker`).
//!
//! Clients are not trusted: a body is capped at `network.max_bytes`; an image is validated
//! as a fetched one is (magic bytes, `images.max_pixels` from its header, a decode of the
//! whole stream, the process's decode budget) before its full decode; past `queue`
//! requests at once the answer is 503 with `Retry-After`; a request has `timeout` to
//! finish and a client [`HEADER_TIMEOUT`] to send its headers. On SIGINT or SIGTERM it
//! stops accepting, finishes the requests in flight, and returns.

pub mod api;
pub mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::photo::check::Validator;
use crate::photo::config::ImagesConfig;
use worker::Worker;

/// How long a client has to send a request's headers (a slow client holds a connection
/// and nothing more).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take to finish once a shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// How the server is bounded.
pub struct Limits {
    /// Requests at once, per server (reading, decoding, queued, colorizing).
    pub queue: usize,
    /// Per request, its body's upload included.
    pub timeout: Duration,
    /// Largest body (`network.max_bytes`).
    pub max_body: u64,
    pub images: ImagesConfig,
}

/// Serves the runs of `workers` (started with room for `limits.queue` images each) on
/// `listener` until `shutdown` completes, then lets the requests in flight finish (for up
/// to 30 s).
pub async fn serve(
    listener: TcpListener,
    workers: Vec<Worker>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(api::Shared {
        workers,
        admitted: tokio::sync::Semaphore::new(limits.queue),
        timeout: limits.timeout,
        max_body: limits.max_body,
        validator: Validator::new(limits.images),
    });
    let app = api::router(shared);
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait, then accept again.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    Ok(())
}
