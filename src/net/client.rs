//! The HTTP client: one per command, shared by the search and download stages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::redirect;
use tokio::sync::Semaphore;
use url::Url;

use super::error::MAX_REDIRECTS;
use super::guard::{AddressPolicy, GuardedResolver};
use super::retry::{Failure, Verdict, retrying, verdict};
use super::{DownloadError, NetworkConfig, OptOutConfig};

/// A downloaded body.
#[derive(Debug)]
pub struct Body {
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

/// A fetched search page.
#[derive(Debug)]
pub struct Page {
    /// Where the redirects ended.
    pub url: Url,
    pub status: u16,
    pub text: String,
}

/// The shared client plus the per-host concurrency limits.
pub struct Http {
    client: reqwest::Client,
    retries: u32,
    max_bytes: u64,
    per_host: usize,
    policy: Arc<AddressPolicy>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Http {
    pub fn new(config: &NetworkConfig) -> Result<Http, reqwest::Error> {
        super::install_tls();
        let policy = Arc::new(AddressPolicy {
            allow_private: config.allow_private,
            allowlist: config.private_allowlist.clone(),
        });
        let hops = policy.clone();
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(DownloadError::Redirects.to_string());
            }
            match hops.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(&config.user_agent)
            .connect_timeout(Duration::from_secs_f64(config.connect_timeout_s))
            .timeout(Duration::from_secs_f64(config.total_timeout_s))
            .redirect(redirects)
            .pool_max_idle_per_host(config.per_host);
        if !config.allow_private {
            // A proxy (`HTTP(S)_PROXY`) would resolve and reach targets past the guard.
            builder = builder.dns_resolver(Arc::new(GuardedResolver(policy.clone()))).no_proxy();
        }
        Ok(Http {
            client: builder.build()?,
            retries: config.retries,
            max_bytes: config.max_bytes,
            per_host: config.per_host,
            policy,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    fn host_slots(&self, url: &Url) -> Arc<Semaphore> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut hosts = self.hosts.lock().expect("host map lock");
        hosts.entry(key).or_insert_with(|| Arc::new(Semaphore::new(self.per_host))).clone()
    }

    /// Downloads an image URL: retries transient failures with backoff (honouring
    /// `Retry-After`), refuses HTML responses, bodies over the byte cap, and responses
    /// whose headers opt out of AI training (before reading their body).
    pub async fn get_image(
        &self,
        url: &str,
        opt_outs: &OptOutConfig,
    ) -> Result<Body, DownloadError> {
        let url = Url::parse(url).map_err(|e| DownloadError::BadUrl(format!("{url}: {e}")))?;
        self.with_retries(&url, |resp| async move {
            if !resp.status().is_success() {
                return Err(DownloadError::Status(resp.status().as_u16()));
            }
            if let Some(signal) = opt_outs.in_headers(resp.headers()) {
                return Err(DownloadError::OptedOut(signal));
            }
            if let Some(ct) = content_type(&resp)
                && (ct.starts_with("text/html") || ct.starts_with("application/xhtml"))
            {
                return Err(DownloadError::Html(ct));
            }
            self.read_body(resp).await
        })
        .await
    }

    /// Fetches a search result page and returns the URL it ended at (after redirects), its
    /// status and text, whatever the status, so the engine can tell a block page from an
    /// error; 429 and 5xx are retried first.
    pub async fn get_page(&self, url: &Url) -> Result<Page, DownloadError> {
        self.with_retries(url, |resp| async move {
            let (url, status) = (resp.url().clone(), resp.status().as_u16());
            let body = self.read_body(resp).await?;
            Ok(Page { url, status, text: String::from_utf8_lossy(&body.bytes).into_owned() })
        })
        .await
    }

    /// Sends GET `url` until it gets a response that is not worth retrying (or retries run
    /// out, see `retry`), then hands that response to `on_response`.
    async fn with_retries<T, F, Fut>(&self, url: &Url, on_response: F) -> Result<T, DownloadError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<T, DownloadError>>,
    {
        self.policy.check_url(url)?;
        let slots = self.host_slots(url);
        retrying(self.retries, |retries_left| {
            let (slots, on_response) = (&slots, &on_response);
            async move {
                let _slot = slots.acquire().await.expect("host semaphore never closes");
                let resp = match self.client.get(url.clone()).send().await {
                    Ok(resp) => resp,
                    Err(e) if retries_left => {
                        return Err(Failure::from_error(DownloadError::from_reqwest(e)));
                    }
                    Err(e) => return Err(Failure::Final(DownloadError::from_reqwest(e))),
                };
                match verdict(resp.status(), resp.headers(), SystemTime::now()) {
                    Verdict::Retry(after) if retries_left => {
                        let error = DownloadError::Status(resp.status().as_u16());
                        Err(Failure::Retry { error, after })
                    }
                    Verdict::Handle if retries_left => {
                        on_response(resp).await.map_err(Failure::from_error)
                    }
                    // A long Retry-After, or the last try: the answer stands as it is.
                    _ => on_response(resp).await.map_err(Failure::Final),
                }
            }
        })
        .await
    }

    async fn read_body(&self, mut resp: reqwest::Response) -> Result<Body, DownloadError> {
        let expected = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if expected.is_some_and(|n| n > self.max_bytes) {
            return Err(DownloadError::TooLarge(self.max_bytes));
        }
        let content_type = content_type(&resp);
        let mut buf = Vec::with_capacity(expected.unwrap_or(64 * 1024) as usize);
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // The connection closed before the promised length: a lying Content-Length
                // (or a cut connection) rather than a network fault worth a retry.
                Err(e) if !e.is_timeout() && expected.is_some_and(|n| n > buf.len() as u64) => {
                    let got = buf.len() as u64;
                    return Err(DownloadError::ShortBody { got, expected: expected.unwrap_or(0) });
                }
                Err(e) => return Err(DownloadError::from_reqwest(e)),
            };
            if (buf.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(DownloadError::TooLarge(self.max_bytes));
            }
            buf.extend_from_slice(&chunk);
        }
        if let Some(expected) = expected
            && (buf.len() as u64) < expected
        {
            return Err(DownloadError::ShortBody { got: buf.len() as u64, expected });
        }
        Ok(Body { bytes: Bytes::from(buf), content_type })
    }
}

fn content_type(resp: &reqwest::Response) -> Option<String> {
    let value = resp.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.trim().to_ascii_lowercase())
}
