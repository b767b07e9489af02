//! DuckDuckGo Images, in two steps: the HTML search page yields the per-query
//! `vqd` token, then `i.js` serves JSON pages of 100 results (Bing's) that
//! carry the offset of the next page.

use serde::Deserialize;
use url::Url;

use super::{EngineError, EngineName, EnginePage, Hit, SearchQuery, endpoint, with_params};

const ENGINE: EngineName = EngineName::Duckduckgo;

/// Statuses DuckDuckGo answers a bot with (duckduckgo_search maps them all
/// to its rate-limit error).
const BLOCKED_STATUSES: [u16; 6] = [202, 301, 400, 403, 418, 429];

/// The bot interstitial served instead of results.
const ANOMALY_BLOCK: &str = "DDG.deep.anomalyDetectionBlock";

/// The search page whose HTML holds the `vqd` token for `query`.
pub fn first_page(base: &Url, query: &SearchQuery) -> Url {
    let mut url = endpoint(base, "/");
    url.query_pairs_mut()
        .append_pair("q", &query.text)
        .append_pair("iar", "images")
        .append_pair("iax", "images")
        .append_pair("ia", "images");
    url
}

/// An `i.js` answer (only the keys used here).
#[derive(Deserialize)]
struct Response {
    results: Vec<Item>,
    next: Option<String>,
}

/// One `i.js` result.
#[derive(Deserialize)]
struct Item {
    image: Option<String>,
    url: Option<String>,
    title: Option<String>,
}

/// Parses the token page (any path but `…/i.js`: no hits, next = the first
/// `i.js` page) or an `i.js` page (hits, next = the same URL with the offset
/// `s` from the answer's `next`).
pub fn parse_page(
    url: &Url,
    status: u16,
    body: &str,
    query: &SearchQuery,
) -> Result<EnginePage, EngineError> {
    if BLOCKED_STATUSES.contains(&status) {
        return Err(EngineError::blocked(ENGINE, format!("HTTP {status}")));
    }
    if status != 200 {
        return Err(EngineError::Status { engine: ENGINE, status });
    }
    if body.contains(ANOMALY_BLOCK) {
        return Err(EngineError::blocked(ENGINE, "anomaly-detection block instead of results"));
    }
    if url.path().ends_with("/i.js") {
        parse_results(url, body)
    } else {
        parse_token_page(url, body, query)
    }
}

/// The token page: no hits, next = the first `i.js` page next to it.
fn parse_token_page(url: &Url, body: &str, query: &SearchQuery) -> Result<EnginePage, EngineError> {
    let vqd = extract_vqd(body).ok_or_else(|| {
        // An answer without a token is how DuckDuckGo rate-limits this step.
        EngineError::blocked(ENGINE, "no vqd token in the search page")
    })?;
    let mut next = url.join("i.js").map_err(|e| {
        EngineError::unparseable(ENGINE, format!("cannot build i.js URL from {url}: {e}"))
    })?;
    next.set_query(None);
    next.query_pairs_mut()
        .append_pair("o", "json")
        .append_pair("q", &query.text)
        .append_pair("l", "us-en")
        .append_pair("vqd", vqd)
        .append_pair("p", if query.safe_search { "1" } else { "-1" })
        .append_pair("f", ",,,,,")
        .append_pair("s", "0");
    Ok(EnginePage { hits: Vec::new(), next: Some(next) })
}

/// The `vqd` token, trying `vqd="…"`, `vqd=…&` and `vqd='…'` in that order
/// (as ddgs does). A candidate counts only if it looks like a token, so the
/// unquoted form does not swallow `'3-…';safe_ddg=0;…` up to a later `&`.
fn extract_vqd(body: &str) -> Option<&str> {
    const FORMS: [(&str, char); 3] = [("vqd=\"", '"'), ("vqd=", '&'), ("vqd='", '\'')];
    FORMS.iter().find_map(|(open, close)| {
        body.match_indices(open).find_map(|(at, _)| {
            let rest = &body[at + open.len()..];
            let token = &rest[..rest.find(*close)?];
            let valid = !token.is_empty()
                && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            valid.then_some(token)
        })
    })
}

/// An `i.js` page. No results ends the search even when the answer still has
/// a `next` (the captured no-results answer does).
fn parse_results(url: &Url, body: &str) -> Result<EnginePage, EngineError> {
    let response: Response = serde_json::from_str(body).map_err(|e| {
        EngineError::unparseable(ENGINE, format!("i.js answer is not the expected JSON: {e}"))
    })?;
    let hits: Vec<Hit> = response
        .results
        .into_iter()
        .filter_map(|item| {
            Some(Hit {
                image_url: item.image.filter(|u| !u.is_empty())?,
                page_url: item.url.filter(|u| !u.is_empty()),
                title: item.title.filter(|t| !t.is_empty()),
                credit: None,
            })
        })
        .collect();
    let next = match response.next {
        Some(next) if !hits.is_empty() => Some(next_page(url, &next)?),
        _ => None,
    };
    Ok(EnginePage { hits, next })
}

/// `url` with `s` set to the offset in the answer's `next` (`i.js?…&s=100&…`),
/// keeping the token and the other parameters of the fetched URL.
fn next_page(url: &Url, next: &str) -> Result<Url, EngineError> {
    let offset = url
        .join(next)
        .ok()
        .and_then(|n| n.query_pairs().find(|(k, _)| k == "s").map(|(_, s)| s.into_owned()))
        .filter(|s| s.parse::<u64>().is_ok())
        .ok_or_else(|| {
            EngineError::unparseable(ENGINE, format!("no numeric `s` in i.js `next`: {next}"))
        })?;
    Ok(with_params(url, &[("s", &offset)]))
}
