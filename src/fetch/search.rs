//! The search stage: pages through each engine in order and emits candidates.
//!
//! Results are merged by image URL across pages and engines: the first place a URL is
//! seen gives its rank. An engine stops at its last page, at a page that adds no URL new to
//! that engine (Bing repeats its last page past the end), after [`MAX_PAGES`], or at its first error;
//! an error is reported and the next engine is tried, never taken as "no results". A result
//! whose image URL is not http(s) is a counted `bad-url` failure, never read.

use std::collections::HashSet;

use tracing::{debug, warn};

use url::Url;

use super::{Candidate, Context, Emitter, Item, ItemError, Location, State};
use crate::engines::{EngineName, EnginePage, Hit, SearchQuery};

/// Pages fetched from one engine at most (Bing serves about 1000 results, 35 a page).
const MAX_PAGES: usize = 40;

/// Emits candidates until the engines run dry or the run stops; returns the engine
/// failures as messages.
pub async fn run(out: &Emitter<'_>, query: &SearchQuery, engines: &[EngineName]) -> Vec<String> {
    let ctx = out.ctx;
    let mut merged = Merged::default();
    let mut failures = Vec::new();
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
            let page = tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => return failures,
                page = page(ctx, engine, &url, query) => page,
            };
            let page = match page {
                Ok(page) => page,
                Err(message) => {
                    warn!("{message}.");
                    failures.push(message);
                    break;
                }
            };
            ctx.stats.pages.inc();
            let new = page.hits.iter().filter(|hit| own.insert(hit.image_url.clone())).count();
            if !merged.emit(out, engine, &url, query, page.hits).await {
                return failures;
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

/// One result page of `engine`, parsed at the URL the redirects ended at (a captcha wall
/// shows there); why not, as a message.
async fn page(
    ctx: &Context,
    engine: EngineName,
    url: &Url,
    query: &SearchQuery,
) -> Result<EnginePage, String> {
    let fetched = ctx.http.get_page(url).await.map_err(|e| format!("{engine}: {url}: {e}"))?;
    engine.parse_page(&fetched.url, fetched.status, &fetched.text, query).map_err(|e| e.to_string())
}

/// The results so far, over every engine: the first place a URL is seen gives its rank.
#[derive(Default)]
struct Merged {
    seen: HashSet<String>,
    rank: u64,
}

impl Merged {
    /// Emits the hits not seen before as candidates (a non-http(s) one as a `bad-url`
    /// failure); false when the source should stop.
    async fn emit(
        &mut self,
        out: &Emitter<'_>,
        engine: EngineName,
        url: &Url,
        query: &SearchQuery,
        hits: Vec<Hit>,
    ) -> bool {
        for hit in hits {
            if !self.seen.insert(hit.image_url.clone()) {
                continue;
            }
            self.rank += 1;
            let (location, state) = match Location::remote(&hit.image_url) {
                Ok(location) => (location, State::New),
                Err(why) => {
                    let at = format!("{engine}: {url}: result {}", hit.image_url);
                    let failed = State::Failed { error: ItemError::BadUrl(why), at };
                    (Location::Remote(hit.image_url), failed)
                }
            };
            let candidate = Candidate {
                rank: self.rank,
                location,
                source: engine.to_string(),
                query: query.text.clone(),
                page_url: hit.page_url,
                title: hit.title,
                credit: hit.credit,
            };
            if !out.emit(Item { candidate, state }).await {
                return false;
            }
        }
        true
    }
}
