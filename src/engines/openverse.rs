//! Openverse: the official `/v1/images/` JSON API (openly licensed images),
//! paged by `page`/`page_size` and capped at 240 results for anonymous use.

use serde::Deserialize;
use url::Url;

use super::{
    EngineError, EngineName, EnginePage, Hit, SearchQuery, endpoint, query_number, with_params,
};
use crate::credit::{Credit, license_id};

const ENGINE: EngineName = EngineName::Openverse;

/// Largest page an anonymous client may ask for.
const PAGE_SIZE: u64 = 20;

/// How deep an anonymous client may page (results, not pages).
const MAX_DEPTH: u64 = 240;

/// Page 1 of the `/v1/images/` search for `query`.
pub fn first_page(base: &Url, query: &SearchQuery) -> Url {
    let mut url = endpoint(base, "/v1/images/");
    url.query_pairs_mut()
        .append_pair("q", &query.text)
        .append_pair("page", "1")
        .append_pair("page_size", &PAGE_SIZE.to_string());
    if query.safe_search {
        url.query_pairs_mut().append_pair("mature", "false");
    }
    url
}

/// A `/v1/images/` answer (only the keys used here).
#[derive(Deserialize)]
struct Response {
    page_count: u64,
    results: Vec<Item>,
}

/// One result.
#[derive(Deserialize)]
struct Item {
    url: Option<String>,
    foreign_landing_url: Option<String>,
    title: Option<String>,
    license: Option<String>,
    license_version: Option<String>,
    license_url: Option<String>,
    creator: Option<String>,
    attribution: Option<String>,
}

impl Item {
    /// Its licence (from `license` and `license_version`) and credit, as the API gives
    /// them.
    fn credit(&self) -> Credit {
        let given = |field: &Option<String>| field.clone().filter(|v| !v.trim().is_empty());
        Credit {
            license: self
                .license
                .as_deref()
                .and_then(|code| license_id(code, self.license_version.as_deref())),
            license_url: given(&self.license_url),
            creator: given(&self.creator),
            attribution: given(&self.attribution),
        }
    }
}

/// The body of an error answer, e.g. a 429's
/// `{"detail": "Request was throttled. Expected available in 3600 seconds."}`.
#[derive(Deserialize)]
struct ErrorBody {
    detail: String,
}

/// Parses one `/v1/images/` page fetched from `url` (whose `page` and
/// `page_size` say where it is). Next is `page + 1` while the API reports more
/// pages and the 240-result anonymous depth is not reached.
pub fn parse_page(
    url: &Url,
    status: u16,
    body: &str,
    _query: &SearchQuery,
) -> Result<EnginePage, EngineError> {
    match status {
        200 => {}
        403 | 429 => {
            let reason = match serde_json::from_str::<ErrorBody>(body) {
                Ok(error) => format!("HTTP {status}: {}", error.detail),
                Err(_) => format!("HTTP {status}"),
            };
            return Err(EngineError::blocked(ENGINE, reason));
        }
        _ => {
            return Err(EngineError::Status { engine: ENGINE, status });
        }
    }
    let response: Response = serde_json::from_str(body).map_err(|e| {
        EngineError::unparseable(ENGINE, format!("answer is not the expected JSON: {e}"))
    })?;
    let hits = response
        .results
        .into_iter()
        .filter_map(|item| {
            let credit = Some(item.credit());
            Some(Hit {
                image_url: item.url.filter(|u| !u.is_empty())?,
                page_url: item.foreign_landing_url.filter(|u| !u.is_empty()),
                title: item.title.filter(|t| !t.is_empty()),
                credit,
            })
        })
        .collect();
    let page = query_number(ENGINE, url, "page")?.unwrap_or(1);
    let page_size = query_number(ENGINE, url, "page_size")?.unwrap_or(PAGE_SIZE);
    let next = (page < response.page_count && page.saturating_mul(page_size) < MAX_DEPTH)
        .then(|| with_params(url, &[("page", &(page + 1).to_string())]));
    Ok(EnginePage { hits, next })
}
