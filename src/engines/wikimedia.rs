//! Wikimedia Commons: the MediaWiki action API, `generator=search` over the
//! File namespace with `prop=imageinfo`, paged by copying the answer's
//! `continue` object into the next request.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::{
    EngineError, EngineName, EnginePage, Hit, SearchQuery, endpoint, expect_ok, with_params,
};
use crate::credit::{Credit, license_id, text_of_html};

const ENGINE: EngineName = EngineName::Wikimedia;

/// The first `api.php` search page for `query`: bitmap files only, 50 per page.
pub fn first_page(base: &Url, query: &SearchQuery) -> Url {
    let mut url = endpoint(base, "/w/api.php");
    url.query_pairs_mut()
        .append_pair("action", "query")
        .append_pair("format", "json")
        .append_pair("generator", "search")
        .append_pair("gsrnamespace", "6")
        .append_pair("gsrsearch", &format!("filetype:bitmap {}", query.text))
        .append_pair("gsrlimit", "50")
        .append_pair("gsroffset", "0")
        .append_pair("prop", "imageinfo")
        .append_pair("iiprop", "url|size|mime|extmetadata")
        .append_pair(
            "iiextmetadatafilter",
            "License|LicenseShortName|LicenseUrl|Artist|Attribution",
        )
        .append_pair("iiurlwidth", "1024");
    url
}

/// An `action=query` answer (only the keys used here).
#[derive(Deserialize)]
struct Response {
    error: Option<ApiError>,
    #[serde(rename = "continue")]
    continuation: Option<Map<String, Value>>,
    query: Option<Query>,
    batchcomplete: Option<Value>,
}

/// MediaWiki's in-body error (it comes with HTTP 200).
#[derive(Deserialize)]
struct ApiError {
    code: String,
    #[serde(default)]
    info: String,
}

#[derive(Deserialize)]
struct Query {
    pages: Pages,
}

/// `query.pages`: an object keyed by page id (format version 1) or an array
/// (format version 2). Neither is in rank order.
#[derive(Deserialize)]
#[serde(untagged)]
enum Pages {
    ById(BTreeMap<String, Page>),
    List(Vec<Page>),
}

#[derive(Deserialize)]
struct Page {
    title: Option<String>,
    /// Search rank.
    index: Option<u64>,
    imageinfo: Option<Vec<ImageInfo>>,
}

#[derive(Deserialize)]
struct ImageInfo {
    url: Option<String>,
    thumburl: Option<String>,
    descriptionurl: Option<String>,
    #[serde(default)]
    extmetadata: BTreeMap<String, Field>,
}

/// One `extmetadata` field: its value is a string (often HTML).
#[derive(Deserialize)]
struct Field {
    value: Value,
}

impl ImageInfo {
    /// The `extmetadata` field `key` as text (HTML dropped), if not empty.
    fn field(&self, key: &str) -> Option<String> {
        let text = match &self.extmetadata.get(key)?.value {
            Value::String(s) => text_of_html(s),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    /// Its licence (the machine-readable `License`, else `LicenseShortName`) and credit.
    fn credit(&self) -> Credit {
        let license = ["License", "LicenseShortName"]
            .into_iter()
            .filter_map(|key| self.field(key))
            .find_map(|code| license_id(&code.replace(' ', "-"), None));
        Credit {
            license,
            license_url: self.field("LicenseUrl"),
            creator: self.field("Artist"),
            attribution: self.field("Attribution"),
        }
    }
}

/// Parses one `api.php` answer fetched from `url`. Hits are in search rank
/// (`index`) order; pages without an image URL are skipped. The next page is
/// `url` with every `continue` key set; none when the answer has no `continue`.
pub fn parse_page(
    url: &Url,
    status: u16,
    body: &str,
    _query: &SearchQuery,
) -> Result<EnginePage, EngineError> {
    expect_ok(ENGINE, status)?;
    let response: Response = serde_json::from_str(body).map_err(|e| {
        EngineError::unparseable(ENGINE, format!("answer is not the expected JSON: {e}"))
    })?;
    if let Some(error) = response.error {
        let reason = format!("API error {}: {}", error.code, error.info);
        return Err(if error.code.contains("ratelimit") {
            EngineError::blocked(ENGINE, reason)
        } else {
            EngineError::unparseable(ENGINE, reason)
        });
    }
    // A search with no match answers `{"batchcomplete": ""}` without `query`.
    if response.query.is_none() && response.batchcomplete.is_none() {
        return Err(EngineError::unparseable(
            ENGINE,
            "answer has neither `query` nor `batchcomplete`",
        ));
    }
    let mut pages = match response.query.map(|q| q.pages) {
        Some(Pages::ById(pages)) => pages.into_values().collect(),
        Some(Pages::List(pages)) => pages,
        None => Vec::new(),
    };
    pages.sort_by_key(|page| page.index.unwrap_or(u64::MAX));
    let hits = pages.into_iter().filter_map(page_hit).collect();
    let next = response.continuation.map(|continuation| {
        let params: Vec<(&str, String)> = continuation
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (key.as_str(), value)
            })
            .collect();
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        with_params(url, &params)
    });
    Ok(EnginePage { hits, next })
}

/// The hit for one search result page, if it has an image URL.
fn page_hit(page: Page) -> Option<Hit> {
    let info = page.imageinfo?.into_iter().next()?;
    let credit = Some(info.credit());
    // The `iiurlwidth` thumbnail, not the original: Commons originals reach
    // 20,000 px and 90 MB, far more than training needs.
    let image_url = info.thumburl.or(info.url).filter(|u| !u.is_empty())?;
    Some(Hit {
        image_url,
        page_url: info.descriptionurl.filter(|u| !u.is_empty()),
        title: page.title.filter(|t| !t.is_empty()),
        credit,
    })
}
