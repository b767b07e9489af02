//! The retry policy: which answers are retried, after how long, and the loop (backon's
//! exponential backoff with jitter, honouring `Retry-After`).
//!
//! 429 and 5xx are retried after their `Retry-After` (delta-seconds or any of the three
//! HTTP-date forms, through `httpdate`) when it is at most [`MAX_RETRY_AFTER`], else after
//! the backoff; a longer `Retry-After` is not waited for: the answer is final. Transient
//! network failures are retried after the backoff.

use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::DownloadError;

/// First retry waits about this long; each later one about twice as long (with jitter).
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// The longest backoff between two tries.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this is not waited for: the URL fails as rate-limited.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What to do with an answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not a retryable status: the answer is handled (and reading it may still fail in a
    /// way worth a retry).
    Handle,
    /// Retry, after this long (`None`: the backoff's delay).
    Retry(Option<Duration>),
    /// A retryable status whose `Retry-After` is over the cap: the answer stands.
    Stand,
}

/// The verdict on an answer's status and headers, at time `now`.
pub fn verdict(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Verdict {
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return Verdict::Handle;
    }
    match retry_after(headers, now) {
        Some(wait) if wait > MAX_RETRY_AFTER => Verdict::Stand,
        wait => Verdict::Retry(wait),
    }
}

/// `Retry-After` as a wait from `now`: delta-seconds, or an HTTP date (IMF-fixdate,
/// RFC 850 or asctime); a date in the past is no wait.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Why one try gave no value.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try, after `after` (`None`: the backoff's delay).
    Retry { error: DownloadError, after: Option<Duration> },
    /// The answer stands.
    Final(DownloadError),
}

impl Failure {
    /// A failure from handling an answer: retried when transient.
    pub fn from_error(error: DownloadError) -> Failure {
        if error.is_transient() {
            Failure::Retry { error, after: None }
        } else {
            Failure::Final(error)
        }
    }
}

/// Runs `attempt` until it gives a value, a final failure, or `retries` retries are
/// spent. `attempt` is told whether a retry is still left: on the last try it should
/// hand back the answer as it is.
pub async fn retrying<T, F, Fut>(retries: u32, mut attempt: F) -> Result<T, DownloadError>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut tries = 0;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(BACKOFF_BASE)
        .with_max_delay(BACKOFF_MAX)
        .with_factor(2.0)
        .with_max_times(retries as usize)
        .with_jitter();
    let once = || {
        tries += 1;
        attempt(tries <= retries)
    };
    once.retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|failure| matches!(failure, Failure::Retry { .. }))
        .adjust(|failure, backoff| match failure {
            Failure::Retry { after: Some(after), .. } => Some(*after),
            _ => backoff,
        })
        .await
        .map_err(|failure| match failure {
            Failure::Retry { error, .. } | Failure::Final(error) => error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_in_every_legal_form() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let busy = StatusCode::SERVICE_UNAVAILABLE;
        let secs = |s| Verdict::Retry(Some(Duration::from_secs(s)));
        assert_eq!(verdict(busy, &after("30"), now), secs(30));
        assert_eq!(verdict(busy, &after("Sun, 06 Nov 1994 08:50:07 GMT"), now), secs(30));
        assert_eq!(verdict(busy, &after("Sunday, 06-Nov-94 08:50:07 GMT"), now), secs(30));
        assert_eq!(verdict(busy, &after("Sun Nov  6 08:50:07 1994"), now), secs(30));
        assert_eq!(verdict(busy, &after("Sun, 06 Nov 1994 08:00:00 GMT"), now), secs(0));
        assert_eq!(verdict(busy, &HeaderMap::new(), now), Verdict::Retry(None));
        assert_eq!(verdict(busy, &after("soon"), now), Verdict::Retry(None));
        // Over the cap: not waited for, not retried.
        assert_eq!(verdict(busy, &after("120"), now), Verdict::Stand);
        assert_eq!(verdict(busy, &after("Sun, 06 Nov 1994 09:49:37 GMT"), now), Verdict::Stand);
        assert_eq!(verdict(StatusCode::NOT_FOUND, &after("1"), now), Verdict::Handle);
        assert_eq!(verdict(StatusCode::TOO_MANY_REQUESTS, &after("1"), now), secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_retry_after_or_a_jittered_backoff_and_stop() {
        // Retry-After is waited exactly; then the value comes.
        let started = tokio::time::Instant::now();
        let tries = AtomicU32::new(0);
        let value = retrying(3, |_| {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 | 1 => Err(Failure::Retry {
                        error: DownloadError::Status(503),
                        after: Some(Duration::from_secs(20)),
                    }),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(value.unwrap(), 2);
        assert_eq!(started.elapsed(), Duration::from_secs(40));

        // The backoff: 0.5 s, then about 1 s, jittered (backon adds up to one delay).
        let started = tokio::time::Instant::now();
        let last_try_knew = std::sync::Mutex::new(Vec::new());
        let result: Result<(), _> = retrying(2, |left| {
            last_try_knew.lock().unwrap().push(left);
            async { Err(Failure::from_error(DownloadError::Timeout)) }
        })
        .await;
        assert!(matches!(result, Err(DownloadError::Timeout)));
        assert_eq!(*last_try_knew.lock().unwrap(), [true, true, false], "the last try knows");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1500) && waited <= Duration::from_secs(3),
            "{waited:?}"
        );

        // A final failure is not retried.
        let tries = AtomicU32::new(0);
        let result: Result<(), _> = retrying(5, |_| {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err(Failure::Final(DownloadError::Status(503))) }
        })
        .await;
        assert!(matches!(result, Err(DownloadError::Status(503))));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
