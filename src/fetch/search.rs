//! The search stage: pages through each engine in order and emits candidates.
//!
//! Results are merged by image URL across pages and engines: the first place a URL is
//! seen gives its rank. An engine stops at its last page, at a page that adds no URL new to
//! that engine (Bing repeats its last page past the end), after [`MAX_PAGES`], or at its first error;
//! an error is reported and the next engine is tried, never taken as "no results". A result
//! whose image URL is not http(s) is a counted `bad-url` failure, never read.

use std::collections::HashSet;

use tracing::{debug, warn};

use super::{Candidate, Emitter, Item, ItemError, Location, State};
use crate::engines::{EngineName, SearchQuery};

/// Pages fetched from one engine at most (Bing serves about 1000 results, 35 a page).
const MAX_PAGES: usize = 40;

/// Emits candidates until the engines run dry or the run stops; returns the engine
/// failures as messages.
pub async fn run(out: &Emitter<'_>, query: &SearchQuery, engines: &[EngineName]) -> Vec<String> {
    let ctx = out.ctx;
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    let mut rank = 0u64;
    for &engine in engines {
        let base = ctx.config.engines.base_url(engine);
        let mut next = Some(engine.first_page(base, query));
        let mut pages = 0;
        // "No new results" is about this engine's own results: a fallback engine whose
        // first page repeats what the first engine found still has pages to give.
        let mut own = HashSet::new();
        while let Some(url) = next.take() {
            if ctx.stop.is_cancelled() || pages == MAX_PAGES {
                break;
            }
            pages += 1;
            let fetched = tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => return failures,
                fetched = ctx.http.get_page(&url) => fetched,
            };
            let page = match fetched {
                // Parsed at the URL the redirects ended at: a captcha wall shows there.
                Ok(fetched) => {
                    engine.parse_page(&fetched.url, fetched.status, &fetched.text, query)
                }
                Err(e) => {
                    let message = format!("{engine}: {url}: {e}");
                    warn!("Search page failed: {message}.");
                    failures.push(message);
                    break;
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    warn!("{e}.");
                    failures.push(e.to_string());
                    break;
                }
            };
            ctx.stats.pages.inc();
            let mut new = 0;
            for hit in page.hits {
                if own.insert(hit.image_url.clone()) {
                    new += 1;
                }
                if !seen.insert(hit.image_url.clone()) {
                    continue;
                }
                rank += 1;
                let (location, state) = match Location::remote(&hit.image_url) {
                    Ok(location) => (location, State::New),
                    Err(why) => {
                        let at = format!("{engine}: {url}: result {}", hit.image_url);
                        let failed = State::Failed { error: ItemError::BadUrl(why), at };
                        (Location::Remote(hit.image_url), failed)
                    }
                };
                let candidate = Candidate {
                    rank,
                    location,
                    source: engine.to_string(),
                    query: query.text.clone(),
                    page_url: hit.page_url,
                    title: hit.title,
                };
                if !out.emit(Item { candidate, state }).await {
                    return failures;
                }
            }
            debug!(%engine, page = pages, new, "Search page parsed.");
            // A page that only repeats this engine's results is Bing's way of saying "the end";
            // the DuckDuckGo token page has no hits but a next page, so look at `next` too.
            if new > 0 || pages == 1 {
                next = page.next;
            }
        }
    }
    failures
}
