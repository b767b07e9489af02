//! Bing Images: the `/images/async` HTML fragment. Each result is an `a.iusc`
//! tile whose `m` attribute holds Bing's JSON metadata for it (`murl` image,
//! `purl` page, `t` title); paging is the 1-based image offset `first`.

use scraper::{ElementRef, Html};
use serde::Deserialize;
use url::Url;

use super::{
    EngineError, EngineName, EnginePage, Hit, SearchQuery, endpoint, expect_ok, query_number,
    selector, with_params,
};

const ENGINE: EngineName = EngineName::Bing;

/// Results Bing serves per `/images/async` page.
const PAGE_SIZE: &str = "35";

/// Private-use characters Bing wraps around the query words in titles.
const HIGHLIGHT_MARKERS: [char; 2] = ['\u{e000}', '\u{e001}'];

/// The first `/images/async` page for `query`.
pub fn first_page(base: &Url, query: &SearchQuery) -> Url {
    let mut url = endpoint(base, "/images/async");
    url.query_pairs_mut()
        .append_pair("q", &query.text)
        .append_pair("first", "1")
        .append_pair("count", PAGE_SIZE)
        .append_pair("async", "1")
        .append_pair("adlt", if query.safe_search { "strict" } else { "off" });
    url
}

/// The JSON in a tile's `m` attribute (only the keys used here).
#[derive(Deserialize)]
struct TileMeta {
    murl: Option<String>,
    purl: Option<String>,
    t: Option<String>,
}

/// Parses an `/images/async` fragment (or a full `/images/search` page, which
/// has the same tiles) fetched from `url`.
///
/// Hits keep page order, duplicates included. The next page starts where Bing's
/// own `data-nextUrl` says (its `first`), else `first` + tiles on this page;
/// there is none when every `data-nextUrl` on the page is empty or the results
/// list holds no tile.
pub fn parse_page(
    url: &Url,
    status: u16,
    body: &str,
    _query: &SearchQuery,
) -> Result<EnginePage, EngineError> {
    expect_ok(ENGINE, status)?;
    let doc = Html::parse_document(body);
    let tiles: Vec<ElementRef> = doc.select(&selector("a.iusc")).collect();
    // HTML attribute names are lowercased by the parser: `data-nextUrl` is `data-nexturl`.
    let next_urls: Vec<&str> =
        doc.select(&selector("[data-nexturl]")).filter_map(|el| el.attr("data-nexturl")).collect();

    if tiles.is_empty() {
        let has_list =
            !next_urls.is_empty() || doc.select(&selector("ul.dgControl_list")).next().is_some();
        if has_list {
            // The results list is there and empty: Bing's own "no (more) results".
            return Ok(EnginePage { hits: Vec::new(), next: None });
        }
        return Err(EngineError::unparseable(
            ENGINE,
            "no `a.iusc` tiles and no results list (`ul.dgControl_list`, `[data-nextUrl]`)",
        ));
    }

    let hits: Vec<Hit> = tiles.iter().filter_map(tile_hit).collect();
    if hits.is_empty() {
        return Err(EngineError::unparseable(
            ENGINE,
            format!(
                "none of the {} `a.iusc` tiles has an `m` attribute with a `murl`",
                tiles.len()
            ),
        ));
    }

    let non_empty: Vec<&str> = next_urls.iter().copied().filter(|v| !v.trim().is_empty()).collect();
    if !next_urls.is_empty() && non_empty.is_empty() {
        return Ok(EnginePage { hits, next: None });
    }
    let first = query_number(ENGINE, url, "first")?.unwrap_or(1);
    // A full search page also holds side panels of related tiles that are not
    // part of the paged list, so Bing's own offset beats counting tiles.
    let tile_count = tiles.len() as u64;
    let next_first = non_empty
        .iter()
        .find_map(|next| bing_first(url, next))
        .filter(|&f| f > first)
        .unwrap_or(first.saturating_add(tile_count));
    let next = with_params(url, &[("first", &next_first.to_string())]);
    Ok(EnginePage { hits, next: Some(next) })
}

/// The hit described by one tile, if its `m` JSON names an image.
fn tile_hit(tile: &ElementRef) -> Option<Hit> {
    // `attr` returns the value with HTML entities already decoded.
    let meta: TileMeta = serde_json::from_str(tile.attr("m")?).ok()?;
    let image_url = meta.murl.filter(|u| !u.is_empty())?;
    let title = meta
        .t
        .map(|t| t.replace(HIGHLIGHT_MARKERS, "").trim().to_owned())
        .filter(|t| !t.is_empty());
    Some(Hit { image_url, page_url: meta.purl.filter(|u| !u.is_empty()), title, credit: None })
}

/// The `first` parameter of a `data-nextUrl` value (a site-relative URL).
fn bing_first(page: &Url, next: &str) -> Option<u64> {
    let next = page.join(next).ok()?;
    let (_, first) = next.query_pairs().find(|(k, _)| k == "first")?;
    first.parse().ok()
}
