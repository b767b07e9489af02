//! Google Images, best effort: the HTML `/search?tbm=isch` page, read through
//! its `/imgres?imgurl=…&imgrefurl=…` links. Google's captcha walls are
//! detected in all four known forms and reported as blocks.

use scraper::Html;
use url::Url;

use super::{
    EngineError, EngineName, EnginePage, Hit, SearchQuery, endpoint, query_number, selector,
    with_params,
};

const ENGINE: EngineName = EngineName::Google;

/// Bodies shorter than this that mention `/sorry/` are the captcha redirect page.
const SORRY_BODY_MAX: usize = 2000;

/// The first `/search?tbm=isch` page for `query`.
pub fn first_page(base: &Url, query: &SearchQuery) -> Url {
    let mut url = endpoint(base, "/search");
    url.query_pairs_mut()
        .append_pair("q", &query.text)
        .append_pair("tbm", "isch")
        .append_pair("safe", if query.safe_search { "active" } else { "off" });
    url
}

/// Parses one result page fetched from `url` (after redirects). Next is
/// `start` + hits on this page; none when the page says nothing matched.
pub fn parse_page(
    url: &Url,
    status: u16,
    body: &str,
    _query: &SearchQuery,
) -> Result<EnginePage, EngineError> {
    if url.host_str() == Some("sorry.google.com") || url.path().contains("/sorry/") {
        return Err(EngineError::blocked(ENGINE, format!("redirected to the captcha page {url}")));
    }
    match status {
        200 => {}
        302 | 403 | 429 => return Err(EngineError::blocked(ENGINE, format!("HTTP {status}"))),
        _ => {
            return Err(EngineError::Status { engine: ENGINE, status });
        }
    }
    if body.len() < SORRY_BODY_MAX && body.contains("/sorry/") {
        return Err(EngineError::blocked(ENGINE, "short page pointing to /sorry/ (captcha)"));
    }
    let doc = Html::parse_document(body);
    if doc.select(&selector("form#captcha-form")).next().is_some()
        || body.contains("unusual traffic")
    {
        return Err(EngineError::blocked(ENGINE, "captcha page (\"unusual traffic\")"));
    }

    let hits: Vec<Hit> = doc
        .select(&selector(r#"a[href*="/imgres?"]"#))
        .filter_map(|link| imgres_hit(url, link.attr("href")?))
        .collect();
    if hits.is_empty() {
        if body.contains("did not match any") {
            return Ok(EnginePage { hits, next: None });
        }
        // Google changes its markup often; an empty page is not "no results".
        return Err(EngineError::unparseable(
            ENGINE,
            "no `/imgres?` links with an `imgurl` and no \"did not match any\" notice",
        ));
    }
    let start = query_number(ENGINE, url, "start")?.unwrap_or(0);
    let next_start = start.saturating_add(hits.len() as u64).to_string();
    let next = with_params(url, &[("start", &next_start)]);
    Ok(EnginePage { hits, next: Some(next) })
}

/// The hit of one `/imgres?` link: `imgurl` is the image, `imgrefurl` its page.
fn imgres_hit(page: &Url, href: &str) -> Option<Hit> {
    let link = page.join(href).ok()?;
    let param = |key: &str| {
        link.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    Some(Hit {
        image_url: param("imgurl")?,
        page_url: param("imgrefurl"),
        title: None,
        credit: None,
    })
}
