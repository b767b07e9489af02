//! Engine page parsers against the real captured pages in
//! `../shared/fixtures/serp` (see its `SOURCES.md`), plus small inline pages
//! for the branches no captured page exercises (marked "synthetic").

use std::collections::HashSet;

use pipeline::credit::Credit;
use pipeline::engines::{EngineError, EngineName, EnginePage, Hit, SearchQuery};
use url::Url;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/serp");

fn fixture(path: &str) -> String {
    let full = format!("{FIXTURES}/{path}");
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read fixture {full}: {e}"))
}

fn query(text: &str, safe_search: bool) -> SearchQuery {
    SearchQuery { text: text.to_owned(), safe_search }
}

/// A test server base with a path prefix, like the fetch tests use.
fn test_base(prefix: &str) -> Url {
    Url::parse(&format!("http://127.0.0.1:9/{prefix}")).expect("valid test base")
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("valid URL in test")
}

fn param(url: &Url, key: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn parse(engine: EngineName, url: &Url, status: u16, body: &str, q: &SearchQuery) -> EnginePage {
    engine
        .parse_page(url, status, body, q)
        .unwrap_or_else(|e| panic!("{engine} page {url} should parse: {e}"))
}

fn parse_err(engine: EngineName, url: &Url, status: u16, body: &str) -> EngineError {
    match engine.parse_page(url, status, body, &query("x", false)) {
        Ok(page) => {
            panic!("{engine} page should fail, got {} hits, next {:?}", page.hits.len(), page.next)
        }
        Err(e) => e,
    }
}

fn blocked_reason(err: EngineError, engine: EngineName) -> String {
    match err {
        EngineError::Blocked { engine: e, reason } if e == engine => reason,
        other => panic!("expected {engine} Blocked, got {other:?}"),
    }
}

fn assert_unparseable(err: EngineError, engine: EngineName) {
    assert!(
        matches!(err, EngineError::Unparseable { engine: e, .. } if e == engine),
        "expected {engine} Unparseable, got {err:?}"
    );
}

/// The next page must stay on the configured base (scheme, host, port, prefix).
fn assert_on_base(next: &Url, base: &Url) {
    assert_eq!(next.scheme(), base.scheme(), "{next}");
    assert_eq!(next.host_str(), base.host_str(), "{next}");
    assert_eq!(next.port(), base.port(), "{next}");
    assert!(next.path().starts_with(base.path()), "{next} is not under {base}");
}

fn unique_images(hits: &[Hit]) -> usize {
    hits.iter().map(|h| h.image_url.as_str()).collect::<HashSet<_>>().len()
}

fn scheme_counts(hits: &[Hit]) -> (usize, usize) {
    let https = hits.iter().filter(|h| h.image_url.starts_with("https://")).count();
    let http = hits.iter().filter(|h| h.image_url.starts_with("http://")).count();
    (https, http)
}

fn hit(image: &str, page: Option<&str>, title: Option<&str>) -> Hit {
    Hit {
        image_url: image.to_owned(),
        page_url: page.map(str::to_owned),
        title: title.map(str::to_owned),
        credit: None,
    }
}

/// The hits without their credits, to compare with [`hit`]s; the credits on their own.
fn split_credits(hits: &[Hit]) -> (Vec<Hit>, Vec<Credit>) {
    let bare = hits.iter().map(|h| Hit { credit: None, ..h.clone() }).collect();
    (bare, hits.iter().map(|h| h.credit.clone().expect("a credit")).collect())
}

fn credit(
    license: Option<&str>,
    url: Option<&str>,
    creator: &str,
    attribution: Option<&str>,
) -> Credit {
    Credit {
        license: license.map(str::to_owned),
        license_url: url.map(str::to_owned),
        creator: Some(creator.to_owned()),
        attribution: attribution.map(str::to_owned),
    }
}

// ---------------------------------------------------------------- first pages

#[test]
fn first_pages_keep_the_base_prefix() {
    let q = query("brown bear", false);
    let safe = query("brown bear", true);
    let cases = [
        (
            EngineName::Bing,
            "bing",
            &q,
            "http://127.0.0.1:9/bing/images/async?q=brown+bear&first=1&count=35&async=1&adlt=off",
        ),
        (
            EngineName::Bing,
            "bing/",
            &safe,
            "http://127.0.0.1:9/bing/images/async?q=brown+bear&first=1&count=35&async=1&adlt=strict",
        ),
        (
            EngineName::Duckduckgo,
            "ddg",
            &q,
            "http://127.0.0.1:9/ddg/?q=brown+bear&iar=images&iax=images&ia=images",
        ),
        (
            EngineName::Openverse,
            "ov",
            &q,
            "http://127.0.0.1:9/ov/v1/images/?q=brown+bear&page=1&page_size=20",
        ),
        (
            EngineName::Openverse,
            "ov",
            &safe,
            "http://127.0.0.1:9/ov/v1/images/?q=brown+bear&page=1&page_size=20&mature=false",
        ),
        (
            EngineName::Wikimedia,
            "wm",
            &q,
            "http://127.0.0.1:9/wm/w/api.php?action=query&format=json&generator=search&gsrnamespace=6\
             &gsrsearch=filetype%3Abitmap+brown+bear&gsrlimit=50&gsroffset=0&prop=imageinfo\
             &iiprop=url%7Csize%7Cmime%7Cextmetadata\
         &iiextmetadatafilter=License%7CLicenseShortName%7CLicenseUrl%7CArtist%7CAttribution\
         &iiurlwidth=1024",
        ),
        (EngineName::Google, "g", &q, "http://127.0.0.1:9/g/search?q=brown+bear&tbm=isch&safe=off"),
        (
            EngineName::Google,
            "g",
            &safe,
            "http://127.0.0.1:9/g/search?q=brown+bear&tbm=isch&safe=active",
        ),
    ];
    for (engine, prefix, q, expected) in cases {
        assert_eq!(engine.first_page(&test_base(prefix), q).as_str(), expected, "{engine}");
    }
}

#[test]
fn first_pages_on_the_default_hosts() {
    let q = query("brown bear", false);
    let expected = [
        "https://www.bing.com/images/async?q=brown+bear&first=1&count=35&async=1&adlt=off",
        "https://duckduckgo.com/?q=brown+bear&iar=images&iax=images&ia=images",
        "https://api.openverse.org/v1/images/?q=brown+bear&page=1&page_size=20",
        "https://commons.wikimedia.org/w/api.php?action=query&format=json&generator=search&gsrnamespace=6\
         &gsrsearch=filetype%3Abitmap+brown+bear&gsrlimit=50&gsroffset=0&prop=imageinfo\
         &iiprop=url%7Csize%7Cmime%7Cextmetadata\
         &iiextmetadatafilter=License%7CLicenseShortName%7CLicenseUrl%7CArtist%7CAttribution\
         &iiurlwidth=1024",
        "https://www.google.com/search?q=brown+bear&tbm=isch&safe=off",
    ];
    for (engine, expected) in EngineName::ALL.into_iter().zip(expected) {
        let base = url(engine.default_base_url());
        assert_eq!(engine.first_page(&base, &q).as_str(), expected, "{engine}");
    }
}

// ----------------------------------------------------------------------- Bing

const BING_PHRONA: &str = "bing/phrona_async_rust_programming.html";
const BING_GOPHER: &str = "bing/retrievalgo_search_golang_gopher.html";
const BING_PASTYEAR: &str = "bing/retrievalgo_search_golang_gopher_pastyear.html";

#[test]
fn bing_async_fragment_gives_35_tiles_and_the_next_offset() {
    let base = test_base("bing");
    let q = query("rust programming", false);
    let first = EngineName::Bing.first_page(&base, &q);
    let page = parse(EngineName::Bing, &first, 200, &fixture(BING_PHRONA), &q);

    assert_eq!(page.hits.len(), 35);
    assert_eq!(unique_images(&page.hits), 35);
    assert_eq!(scheme_counts(&page.hits), (33, 2));
    // `&amp;` in the `m` attribute is decoded; the page URL keeps its non-ASCII.
    assert_eq!(
        page.hits[0],
        hit(
            "https://media.licdn.com/dms/image/v2/D5612AQG_VNcB7VI-Cw/article-cover_image-shrink_600_2000/\
             article-cover_image-shrink_600_2000/0/1681973828533?e=2147483647&v=beta\
             &t=g9s877ixt5AzjxVXsY5WLjDwhHW_V8Jyw5YMpjcO7sA",
            Some(
                "https://www.linkedin.com/pulse/rust-programming-language-jayasrinivasan-ジャヤスリニヴァサン-s"
            ),
            Some("RUST PROGRAMMING LANGUAGE"),
        )
    );
    assert_eq!(
        page.hits[34],
        hit(
            "https://image.slidesharecdn.com/agentleintroductiontorustprogramminglanguage-201106091235/75/\
             The-Rust-Programming-Language-1-2048.jpg",
            Some(
                "https://www.slideshare.net/slideshow/the-rust-programming-language-239114864/239114864"
            ),
            Some("The Rust Programming Language | PDF"),
        )
    );
    let next = page.next.expect("phrona page has a next page");
    assert_eq!(
        next.as_str(),
        "http://127.0.0.1:9/bing/images/async?q=rust+programming&first=36&count=35&async=1&adlt=off"
    );
    assert_on_base(&next, &base);
}

#[test]
fn bing_steps_by_tiles_when_its_next_url_does_not_advance() {
    // The same fragment served for `first=36` (Bing repeats pages past the end):
    // its data-nextUrl still says 36, so the offset moves on by the 35 tiles.
    let q = query("rust programming", false);
    let fetched = url(
        "http://127.0.0.1:9/bing/images/async?q=rust+programming&first=36&count=35&async=1&adlt=off",
    );
    let page = parse(EngineName::Bing, &fetched, 200, &fixture(BING_PHRONA), &q);
    assert_eq!(page.hits.len(), 35);
    let next = page.next.expect("next page");
    assert_eq!(param(&next, "first").as_deref(), Some("71"));
    assert_on_base(&next, &test_base("bing"));
}

#[test]
fn bing_full_search_page_keeps_duplicates_and_follows_bings_offset() {
    let base = test_base("bing");
    let q = query("golang gopher", false);
    let first = EngineName::Bing.first_page(&base, &q);
    let page = parse(EngineName::Bing, &first, 200, &fixture(BING_GOPHER), &q);

    assert_eq!(page.hits.len(), 47);
    assert_eq!(unique_images(&page.hits), 42);
    assert_eq!(scheme_counts(&page.hits), (44, 3));
    assert_eq!(
        page.hits[0],
        hit(
            "https://vectorseek.com/wp-content/uploads/2023/03/Golang-Gopher-Logo-Vector.jpg",
            Some("https://vectorseek.com/vector_logo/golang-gopher-logo-vector/"),
            Some("Golang Gopher Logo PNG (Transparent) SVG AI – Free Download"),
        )
    );
    // Tiles 15-26 (related side panels) carry no `t` in their metadata.
    let untitled: Vec<usize> =
        (0..page.hits.len()).filter(|&i| page.hits[i].title.is_none()).collect();
    assert_eq!(untitled, (14..26).collect::<Vec<_>>());
    // Three side panels have an empty data-nextUrl, the main grid does not; the
    // 12 side tiles are not part of the paged list, so `first` is Bing's 36, not 48.
    let next = page.next.expect("the main grid has a next page");
    assert_eq!(
        next.as_str(),
        "http://127.0.0.1:9/bing/images/async?q=golang+gopher&first=36&count=35&async=1&adlt=off"
    );
    assert_on_base(&next, &base);
}

#[test]
fn bing_empty_next_url_ends_the_search() {
    let q = query("golang gopher", false);
    let first = EngineName::Bing.first_page(&test_base("bing"), &q);
    let page = parse(EngineName::Bing, &first, 200, &fixture(BING_PASTYEAR), &q);
    assert_eq!(page.hits.len(), 27);
    assert_eq!(unique_images(&page.hits), 27);
    assert_eq!(scheme_counts(&page.hits), (27, 0));
    assert_eq!(
        page.hits[0],
        hit(
            "https://fbi.cults3d.com/uploaders/20060779/illustration-file/9407aa86-1de0-4ed5-8e44-9118c39ee156/GolangGopher.png",
            Some("https://cults3d.com/en/3d-model/art/go-golang-gopher-mascots"),
            Some("🧑\u{200d}💻 Go Golang Gopher Mascots・ STL File for 3D printing・Cults"),
        )
    );
    assert_eq!(
        page.hits[26],
        hit(
            "https://static.licdn.com/aero-v1/sc/h/5q92mjc5c51bjlwaj3rs9aa82",
            Some("https://uk.linkedin.com/in/james-m-862207214"),
            Some("James M. - Legal & General | LinkedIn"),
        )
    );
    assert_eq!(page.next, None);
}

#[test]
fn bing_statuses_and_empty_pages() {
    let fetched = EngineName::Bing.first_page(&test_base("bing"), &query("x", false));
    let e = EngineName::Bing;
    assert_eq!(blocked_reason(parse_err(e, &fetched, 403, ""), e), "HTTP 403");
    assert_eq!(blocked_reason(parse_err(e, &fetched, 429, ""), e), "HTTP 429");
    assert_eq!(parse_err(e, &fetched, 500, ""), EngineError::Status { engine: e, status: 500 });
    // Synthetic: the results list with no tile is Bing's own end of results.
    let empty_list = r#"<div id="mmComponent_images_1" class="dgControl" data-nextUrl=""><ul class="dgControl_list "></ul></div>"#;
    let page = parse(e, &fetched, 200, empty_list, &query("x", false));
    assert_eq!(page, EnginePage { hits: vec![], next: None });
    // Neither tiles nor a results list: not Bing's markup, never "0 results".
    assert_unparseable(parse_err(e, &fetched, 200, "<html><body><p>Hello</p></body></html>"), e);
    assert_unparseable(parse_err(e, &fetched, 200, ""), e);
    // Tiles whose metadata names no image.
    assert_unparseable(
        parse_err(
            e,
            &fetched,
            200,
            r#"<ul class="dgControl_list"><li><a class="iusc" m="{}"></a></li></ul>"#,
        ),
        e,
    );
}

#[test]
fn bing_strips_highlight_markers_from_titles() {
    // Synthetic tile: Bing wraps query words in U+E000/U+E001.
    let body = "<ul class=\"dgControl_list\"><li><a class=\"iusc\" m=\"{&quot;murl&quot;:&quot;https://e.com/a.png?x=1&amp;y=2&quot;,\
                &quot;purl&quot;:&quot;https://e.com/&quot;,&quot;t&quot;:&quot;\u{e000}Brown\u{e001} \u{e000}bear\u{e001} cub&quot;}\"></a></li></ul>";
    let fetched = url("http://127.0.0.1:9/bing/images/async?q=brown+bear&first=1&count=35");
    let page = parse(EngineName::Bing, &fetched, 200, body, &query("brown bear", false));
    assert_eq!(
        page.hits,
        vec![hit("https://e.com/a.png?x=1&y=2", Some("https://e.com/"), Some("Brown bear cub"))]
    );
    assert_eq!(page.next.as_ref().and_then(|n| param(n, "first")).as_deref(), Some("2"));
}

// ----------------------------------------------------------------- DuckDuckGo

const DDG_VQD: &str =
    "3-320068370671196460038575011587633753929-199869977846294510399902480995708132308";
const DDG_MINECRAFT_VQD: &str =
    "3-126127733100704423094592086514747332676-199869977846294510399902480995708132308";

fn ddg_ijs(base: &Url, q: &str, p: &str) -> Url {
    let mut u = base.join("i.js").expect("i.js URL");
    u.query_pairs_mut()
        .append_pair("o", "json")
        .append_pair("q", q)
        .append_pair("l", "us-en")
        .append_pair("vqd", DDG_MINECRAFT_VQD)
        .append_pair("p", p)
        .append_pair("f", ",,,,,")
        .append_pair("s", "0");
    u
}

#[test]
fn ddg_token_page_leads_to_ijs_with_the_exact_vqd() {
    let base = test_base("ddg/");
    let body = fixture("duckduckgo/ddscrape_vqd_page_trimmed.html");
    for (safe, p) in [(false, "-1"), (true, "1")] {
        let q = query("node", safe);
        let first = EngineName::Duckduckgo.first_page(&base, &q);
        let page = parse(EngineName::Duckduckgo, &first, 200, &body, &q);
        assert!(page.hits.is_empty());
        let next = page.next.expect("token page leads to i.js");
        assert_eq!(
            next.as_str(),
            format!(
                "http://127.0.0.1:9/ddg/i.js?o=json&q=node&l=us-en&vqd={DDG_VQD}&p={p}&f=%2C%2C%2C%2C%2C&s=0"
            )
        );
        assert_eq!(param(&next, "vqd").as_deref(), Some(DDG_VQD));
        assert_on_base(&next, &base);
    }
}

#[test]
fn ddg_token_forms_and_missing_token() {
    let e = EngineName::Duckduckgo;
    let first = e.first_page(&test_base("ddg"), &query("x", false));
    for (body, token) in [
        (r#"<script>vqd="4-2234";</script>"#, "4-2234"),
        ("<a href=\"/d.js?q=x&vqd=4-99&p=1\">", "4-99"),
        ("<script>vqd='3-1-2';</script>", "3-1-2"),
    ] {
        let page = parse(e, &first, 200, body, &query("x", false));
        let next = page.next.expect("next");
        assert_eq!(param(&next, "vqd").as_deref(), Some(token), "{body}");
    }
    let reason = blocked_reason(parse_err(e, &first, 200, "<html><head></head></html>"), e);
    assert!(reason.contains("vqd"), "{reason}");
    blocked_reason(parse_err(e, &first, 200, ""), e);
}

#[test]
fn ddg_minecraft_default_page() {
    let base = test_base("ddg/");
    let q = query("minecraft", false);
    let fetched = ddg_ijs(&base, "minecraft", "-1");
    let page = parse(
        EngineName::Duckduckgo,
        &fetched,
        200,
        &fixture("duckduckgo/ddscrape_ijs_minecraft_default.json"),
        &q,
    );
    assert_eq!(page.hits.len(), 100);
    assert_eq!(unique_images(&page.hits), 100);
    assert_eq!(scheme_counts(&page.hits), (91, 9));
    assert_eq!(
        page.hits[0],
        hit(
            "https://www.gamepur.com/files/images/2019-11/minecraft-earth-how-to-craft-and-smelt.jpg",
            Some("https://www.gamepur.com/guide/44494-minecraft-earth-how-craft-smelt.html"),
            Some("Minecraft Earth - How to Craft and Smelt"),
        )
    );
    let suffixed = page.hits.iter().filter(|h| h.image_url.ends_with(":large")).count();
    assert_eq!(suffixed, 3);
    let next = page.next.expect("default page has a next page");
    assert_eq!(
        next.as_str(),
        format!(
            "http://127.0.0.1:9/ddg/i.js?o=json&q=minecraft&l=us-en&vqd={DDG_MINECRAFT_VQD}&p=-1&f=%2C%2C%2C%2C%2C&s=100"
        )
    );
    assert_on_base(&next, &base);
}

#[test]
fn ddg_minecraft_strict_page() {
    let base = test_base("ddg/");
    let q = query("minecraft", true);
    let fetched = ddg_ijs(&base, "minecraft", "1");
    let strict = parse(
        EngineName::Duckduckgo,
        &fetched,
        200,
        &fixture("duckduckgo/ddscrape_ijs_minecraft_strict.json"),
        &q,
    );
    assert_eq!(strict.hits.len(), 100);
    assert_eq!(unique_images(&strict.hits), 100);
    assert_eq!(scheme_counts(&strict.hits), (90, 10));
    assert_eq!(
        strict.hits[99],
        hit(
            "http://i.ytimg.com/vi/b-UrP6kYwJU/maxresdefault.jpg",
            Some("http://www.youtube.com/watch?v=b-UrP6kYwJU"),
            Some("Far Cry 3 map for Minecraft [UK] - YouTube"),
        )
    );
    let default = parse(
        EngineName::Duckduckgo,
        &ddg_ijs(&base, "minecraft", "-1"),
        200,
        &fixture("duckduckgo/ddscrape_ijs_minecraft_default.json"),
        &query("minecraft", false),
    );
    let default_images: HashSet<&str> = default.hits.iter().map(|h| h.image_url.as_str()).collect();
    assert_eq!(
        strict.hits.iter().filter(|h| default_images.contains(h.image_url.as_str())).count(),
        94
    );
    let next = strict.next.expect("strict page has a next page");
    assert_eq!(param(&next, "s").as_deref(), Some("100"));
    assert_eq!(param(&next, "p").as_deref(), Some("1"));
    assert_eq!(param(&next, "vqd").as_deref(), Some(DDG_MINECRAFT_VQD));
    assert_on_base(&next, &base);
}

#[test]
fn ddg_no_results_ends_even_though_next_is_present() {
    // The captured no-results answer still carries `next` (s=100).
    let q = query("minecraft", false);
    let fetched = ddg_ijs(&test_base("ddg/"), "minecraft", "-1");
    let page = parse(
        EngineName::Duckduckgo,
        &fetched,
        200,
        &fixture("duckduckgo/ddscrape_ijs_minecraft_noresults.json"),
        &q,
    );
    assert_eq!(page, EnginePage { hits: vec![], next: None });
    // Synthetic: results but no `next` is the last page.
    let last = r#"{"results": [{"image": "https://e.com/a.jpg", "url": "", "title": "A"}]}"#;
    let page = parse(EngineName::Duckduckgo, &fetched, 200, last, &q);
    assert_eq!(
        page,
        EnginePage { hits: vec![hit("https://e.com/a.jpg", None, Some("A"))], next: None }
    );
}

#[test]
fn ddg_2026_page() {
    let base = test_base("ddg/");
    let q = query("rust programming", true);
    let fetched = ddg_ijs(&base, "rust programming", "1");
    let page = parse(
        EngineName::Duckduckgo,
        &fetched,
        200,
        &fixture("duckduckgo/phrona_ijs_rust_programming.json"),
        &q,
    );
    assert_eq!(page.hits.len(), 99);
    assert_eq!(unique_images(&page.hits), 99);
    assert_eq!(scheme_counts(&page.hits), (96, 3));
    assert_eq!(
        page.hits[0],
        hit(
            "https://www.rust-lang.org/static/images/rust-social-wide.jpg",
            Some("https://rust-lang.org/"),
            Some("Rust Programming Language"),
        )
    );
    assert_eq!(
        page.hits[98].image_url,
        "https://miro.medium.com/v2/resize:fit:1358/0*8Bb_5En1ozLXwivi"
    );
    let next = page.next.expect("next page");
    assert_eq!(param(&next, "s").as_deref(), Some("100"));
    assert_eq!(param(&next, "q").as_deref(), Some("rust programming"));
    assert_on_base(&next, &base);
}

#[test]
fn ddg_blocks() {
    let e = EngineName::Duckduckgo;
    let ijs = ddg_ijs(&test_base("ddg/"), "x", "-1");
    let reason = blocked_reason(
        parse_err(e, &ijs, 200, &fixture("duckduckgo/ddscrape_djs_anomaly_block.js")),
        e,
    );
    assert!(reason.contains("anomaly"), "{reason}");
    let token_page = e.first_page(&test_base("ddg"), &query("x", false));
    blocked_reason(
        parse_err(e, &token_page, 200, &fixture("duckduckgo/ddscrape_djs_anomaly_block.js")),
        e,
    );
    for status in [202, 301, 400, 403, 418, 429] {
        assert_eq!(blocked_reason(parse_err(e, &ijs, status, ""), e), format!("HTTP {status}"));
        blocked_reason(parse_err(e, &token_page, status, ""), e);
    }
    assert_eq!(parse_err(e, &ijs, 500, ""), EngineError::Status { engine: e, status: 500 });
    assert_unparseable(parse_err(e, &ijs, 200, "<html>not json</html>"), e);
}

// --------------------------------------------------------------------- Google

#[test]
fn google_captcha_with_200_is_blocked() {
    let e = EngineName::Google;
    let first = e.first_page(&test_base("g"), &query("rust programming", false));
    let body = fixture("google/phrona_async_isch_captcha_sorry.html");
    let reason = blocked_reason(parse_err(e, &first, 200, &body), e);
    assert!(reason.contains("captcha"), "{reason}");
    for status in [302, 403, 429] {
        assert_eq!(
            blocked_reason(parse_err(e, &first, status, &body), e),
            format!("HTTP {status}")
        );
    }
    let sorry = url("http://127.0.0.1:9/g/sorry/index?continue=x");
    blocked_reason(parse_err(e, &sorry, 200, "<html></html>"), e);
    // Synthetic: the short page that links to the captcha.
    let short =
        r#"<html><body><a href="https://www.google.com/sorry/index?q=x">here</a></body></html>"#;
    blocked_reason(parse_err(e, &first, 200, short), e);
    assert_eq!(parse_err(e, &first, 500, ""), EngineError::Status { engine: e, status: 500 });
}

#[test]
fn google_imgres_links() {
    // Synthetic: no real Google Images result page exists in any public fixture.
    let body = r#"<html><body>
        <a href="/imgres?imgurl=https://e.com/a.jpg&imgrefurl=https://e.com/a.html&w=640&h=480&tbnid=A">a</a>
        <a href="https://www.google.com/imgres?imgurl=http%3A%2F%2Fe.org%2Fb.png&imgrefurl=http%3A%2F%2Fe.org%2F&tbnid=B">b</a>
        <a href="/imgres?tbnid=C">no image</a>
        <a href="/search?q=other">other</a>
    </body></html>"#;
    let base = test_base("g");
    let first = EngineName::Google.first_page(&base, &query("x", false));
    let page = parse(EngineName::Google, &first, 200, body, &query("x", false));
    assert_eq!(
        page.hits,
        vec![
            hit("https://e.com/a.jpg", Some("https://e.com/a.html"), None),
            hit("http://e.org/b.png", Some("http://e.org/"), None),
        ]
    );
    let next = page.next.expect("next");
    assert_eq!(next.as_str(), "http://127.0.0.1:9/g/search?q=x&tbm=isch&safe=off&start=2");
    assert_on_base(&next, &base);
    let later = parse(EngineName::Google, &next, 200, body, &query("x", false));
    assert_eq!(later.next.and_then(|n| param(&n, "start")).as_deref(), Some("4"));

    let e = EngineName::Google;
    assert_unparseable(parse_err(e, &first, 200, "<html><body>new markup</body></html>"), e);
    let none = parse(
        e,
        &first,
        200,
        "<p>Your search - x - did not match any image results.</p>",
        &query("x", false),
    );
    assert_eq!(none, EnginePage { hits: vec![], next: None });
}

// ------------------------------------------------------------------ Openverse

/// Status and body (as JSON text) of a talkback tape, which is JSON5.
fn tape(path: &str) -> (u16, String) {
    let tape: serde_json::Value = serde_json::from_str(&json5_to_json(&fixture(path)))
        .unwrap_or_else(|e| panic!("tape {path}: {e}"));
    let status = tape["res"]["status"].as_u64().expect("res.status");
    (u16::try_from(status).expect("status fits u16"), tape["res"]["body"].to_string())
}

/// Just enough JSON5 for the tapes: bare keys, single-quoted strings, trailing commas.
fn json5_to_json(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let next_non_space = |from: usize| chars[from..].iter().copied().find(|c| !c.is_whitespace());
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            out.push('"');
            i += 1;
            while chars[i] != c {
                match chars[i] {
                    '\\' => {
                        let escaped = chars[i + 1];
                        if escaped != '\'' {
                            out.push('\\');
                        }
                        out.push(escaped);
                        i += 2;
                    }
                    '"' => {
                        out.push_str("\\\"");
                        i += 1;
                    }
                    other => {
                        out.push(other);
                        i += 1;
                    }
                }
            }
            out.push('"');
            i += 1;
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if next_non_space(i) == Some(':') {
                out.push_str(&format!("\"{word}\""));
            } else {
                out.push_str(&word);
            }
        } else if c == ',' && matches!(next_non_space(i + 1), Some('}' | ']')) {
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[test]
fn json5_helper_handles_the_tape_syntax() {
    let json = json5_to_json("{ a: 'it\\'s \"x\"', 'b-c': [1, true,], }");
    let value: serde_json::Value = serde_json::from_str(&json).expect(&json);
    assert_eq!(value, serde_json::json!({"a": "it's \"x\"", "b-c": [1, true]}));
}

#[test]
fn openverse_results_page() {
    let base = test_base("ov");
    let q = query("cypress tree", false);
    let fetched = url("http://127.0.0.1:9/ov/v1/images/?q=cypress+tree&page=1&page_size=3");
    let body = fixture("openverse/ridelink_v1_images_cypress_tree_p1_ps3.json");
    let page = parse(EngineName::Openverse, &fetched, 200, &body, &q);
    let (hits, credits) = split_credits(&page.hits);
    let by = |license, creator, title: &str| {
        let version = if license == "by-nc-sa" { "by-nc-sa/2.0" } else { "by/2.0" };
        let url = format!("https://creativecommons.org/licenses/{version}/");
        let name = if license == "by-nc-sa" { "CC BY-NC-SA 2.0" } else { "CC BY 2.0" };
        let attribution = format!(
            "\"{title}\" by {creator} is licensed under {name}. To view a copy of this license, visit {url}."
        );
        let id = if license == "by-nc-sa" { "CC-BY-NC-SA-2.0" } else { "CC-BY-2.0" };
        credit(Some(id), Some(&url), creator, Some(&attribution))
    };
    assert_eq!(
        credits,
        [
            by("by-nc-sa", "PeterThoeny", "Walking through the Cypress Tree Tunnel"),
            by(
                "by",
                "David Paul Ohmer",
                "Cincinnati - Spring Grove Cemetery & Arboretum 'Cypress Tree Needles, Flares & Mist'"
            ),
            by(
                "by",
                "David Paul Ohmer",
                "Cincinnati - Spring Grove Cemetery & Arboretum 'Cypress Tree Needles in Autumn'"
            ),
        ]
    );
    assert_eq!(
        hits,
        vec![
            hit(
                "https://live.staticflickr.com/65535/48500938586_9cf6d9c729_b.jpg",
                Some("https://www.flickr.com/photos/98786299@N00/48500938586"),
                Some("Walking through the Cypress Tree Tunnel"),
            ),
            hit(
                "https://live.staticflickr.com/6127/5997130798_bb33597767_b.jpg",
                Some("https://www.flickr.com/photos/50965924@N00/5997130798"),
                Some(
                    "Cincinnati - Spring Grove Cemetery & Arboretum 'Cypress Tree Needles, Flares & Mist'"
                ),
            ),
            hit(
                "https://live.staticflickr.com/2580/4051347944_c63a52a97b_b.jpg",
                Some("https://www.flickr.com/photos/50965924@N00/4051347944"),
                Some(
                    "Cincinnati - Spring Grove Cemetery & Arboretum 'Cypress Tree Needles in Autumn'"
                ),
            ),
        ]
    );
    let next = page.next.expect("page 1 of 80");
    assert_eq!(next.as_str(), "http://127.0.0.1:9/ov/v1/images/?q=cypress+tree&page=2&page_size=3");
    assert_on_base(&next, &base);

    // The same answer as the last page (page_count 80), and at the 240-result depth.
    let last = url("http://127.0.0.1:9/ov/v1/images/?q=cypress+tree&page=80&page_size=3");
    assert_eq!(parse(EngineName::Openverse, &last, 200, &body, &q).next, None);
    let deep = url("http://127.0.0.1:9/ov/v1/images/?q=cypress+tree&page=12&page_size=20");
    assert_eq!(parse(EngineName::Openverse, &deep, 200, &body, &q).next, None);
    let before = url("http://127.0.0.1:9/ov/v1/images/?q=cypress+tree&page=11&page_size=20");
    let next = parse(EngineName::Openverse, &before, 200, &body, &q).next.expect("page 12");
    assert_eq!(param(&next, "page").as_deref(), Some("12"));
}

#[test]
fn openverse_no_results_tape() {
    let (status, body) = tape("openverse/openverse_tape_querywithnoresults.json5");
    assert_eq!(status, 200);
    let q = query("querywithnoresults", false);
    let first = EngineName::Openverse.first_page(&test_base("ov"), &q);
    assert_eq!(
        parse(EngineName::Openverse, &first, status, &body, &q),
        EnginePage { hits: vec![], next: None }
    );
}

#[test]
fn openverse_throttled_tape_is_blocked() {
    let (status, body) = tape("openverse/openverse_tape_429_throttled.json5");
    assert_eq!(status, 429);
    let e = EngineName::Openverse;
    let first = e.first_page(&test_base("ov"), &query("SearchPage429error", false));
    assert_eq!(
        blocked_reason(parse_err(e, &first, status, &body), e),
        "HTTP 429: Request was throttled. Expected available in 3600 seconds."
    );
    assert_eq!(blocked_reason(parse_err(e, &first, 429, "<html>"), e), "HTTP 429");
    assert_eq!(parse_err(e, &first, 401, ""), EngineError::Status { engine: e, status: 401 });
    assert_unparseable(parse_err(e, &first, 200, r#"{"results": []}"#), e);
}

// ------------------------------------------------------------------ Wikimedia

#[test]
fn wikimedia_search_page_in_rank_order_with_continue() {
    let base = test_base("wm");
    let q = query("cypress trees", false);
    let first = EngineName::Wikimedia.first_page(&base, &q);
    let body = fixture("wikimedia/ridelink_commons_generator_search_imageinfo_cypress_trees.json");
    let page = parse(EngineName::Wikimedia, &first, 200, &body, &q);
    let (hits, credits) = split_credits(&page.hits);
    // "Public domain" is the Public Domain Mark; the artist's HTML is text.
    assert_eq!(credits[0], credit(Some("PDM"), None, "Attributed to Kanō Eitoku", None));
    assert_eq!(credits[1], credit(Some("PDM"), None, "Kanō Eitoku", None));

    let titles: Vec<&str> = page.hits.iter().filter_map(|h| h.title.as_deref()).collect();
    assert_eq!(
        titles,
        [
            "File:Kano Eitoku - Cypress Trees.jpg",
            "File:Kano Eitoku - Cypress Trees - Google Art Project.jpg",
            "File:狩野永徳《檜図屏風》1590年、16世紀、桃山時代、東京国立博物館.jpg",
        ]
    );
    // The thumbnail, not the 89 MB original.
    assert_eq!(
        hits[0],
        hit(
            "https://thumb.wikimedia.org/wikipedia/commons/thumb/4/47/Kano_Eitoku_-_Cypress_Trees.jpg/\
             1280px-Kano_Eitoku_-_Cypress_Trees.jpg?utm_source=commons.wikimedia.org&utm_campaign=imageinfo\
             &utm_content=thumbnail",
            Some("https://commons.wikimedia.org/wiki/File:Kano_Eitoku_-_Cypress_Trees.jpg"),
            Some("File:Kano Eitoku - Cypress Trees.jpg"),
        )
    );
    assert!(page.hits.iter().all(|h| h.image_url.starts_with("https://thumb.wikimedia.org/")));
    let next = page.next.expect("continue present");
    let expected =
        first.as_str().replace("gsroffset=0", "gsroffset=3") + "&continue=gsroffset%7C%7C";
    assert_eq!(next.as_str(), expected);
    assert_eq!(param(&next, "continue").as_deref(), Some("gsroffset||"));
    assert_on_base(&next, &base);
}

#[test]
fn wikimedia_article_search_without_imageinfo() {
    // 20 en.wikipedia articles (pageimages thumbnails, no imageinfo): nothing
    // to download here, but the API says there is more, so paging goes on.
    let base = test_base("wm");
    let q = query("new york", false);
    let first = EngineName::Wikimedia.first_page(&base, &q);
    let page = parse(
        EngineName::Wikimedia,
        &first,
        200,
        &fixture("wikimedia/wpandroid_generator_search_enwiki_fv2.json"),
        &q,
    );
    assert!(page.hits.is_empty());
    let next = page.next.expect("continue present");
    assert_eq!(param(&next, "gsroffset").as_deref(), Some("20"));
    assert_eq!(param(&next, "continue").as_deref(), Some("gsroffset||"));
    assert_eq!(param(&next, "gsrsearch").as_deref(), Some("filetype:bitmap new york"));
    assert_on_base(&next, &base);
}

#[test]
fn wikimedia_imageinfo_format_version_2() {
    let first = EngineName::Wikimedia.first_page(&test_base("wm"), &query("kinkaku", false));
    let page = parse(
        EngineName::Wikimedia,
        &first,
        200,
        &fixture("wikimedia/wpandroid_imageinfo_kinkaku_fv2.json"),
        &query("kinkaku", false),
    );
    let (hits, credits) = split_credits(&page.hits);
    assert_eq!(credits, [credit(Some("PDM"), None, "Fg2", None)], "License `pd`");
    assert_eq!(
        EnginePage { hits, next: page.next },
        EnginePage {
            hits: vec![hit(
                "https://upload.wikimedia.org/wikipedia/commons/thumb/c/c9/Kinkaku3402CBcropped.jpg/1280px-Kinkaku3402CBcropped.jpg",
                Some("https://commons.wikimedia.org/wiki/File:Kinkaku3402CBcropped.jpg"),
                Some("File:Kinkaku3402CBcropped.jpg"),
            )],
            next: None,
        }
    );
    // imageinfo with licence metadata only (no URL): nothing to fetch, and no continue.
    let page = parse(
        EngineName::Wikimedia,
        &first,
        200,
        &fixture("wikimedia/wpandroid_imageinfo_extmetadata_license_fv2.json"),
        &query("mark selby", false),
    );
    assert_eq!(page, EnginePage { hits: vec![], next: None });
}

#[test]
fn wikimedia_errors() {
    let e = EngineName::Wikimedia;
    let first = e.first_page(&test_base("wm"), &query("x", false));
    let limited = r#"{"error":{"code":"ratelimited","info":"You've exceeded your rate limit."}}"#;
    assert_eq!(
        blocked_reason(parse_err(e, &first, 200, limited), e),
        "API error ratelimited: You've exceeded your rate limit."
    );
    let bad =
        r#"{"error":{"code":"badvalue","info":"Unrecognized value for parameter \"prop\"."}}"#;
    assert_eq!(
        parse_err(e, &first, 200, bad),
        EngineError::Unparseable {
            engine: e,
            reason: "API error badvalue: Unrecognized value for parameter \"prop\".".into()
        }
    );
    assert_eq!(
        blocked_reason(
            parse_err(e, &first, 403, "Forbidden. Please comply with the User-Agent policy"),
            e
        ),
        "HTTP 403"
    );
    blocked_reason(parse_err(e, &first, 429, ""), e);
    assert_eq!(parse_err(e, &first, 503, ""), EngineError::Status { engine: e, status: 503 });
    assert_unparseable(parse_err(e, &first, 200, "{}"), e);
    assert_unparseable(parse_err(e, &first, 200, "<html>"), e);
    // No match: MediaWiki answers with `batchcomplete` and no `query`.
    let none = parse(e, &first, 200, r#"{"batchcomplete":""}"#, &query("x", false));
    assert_eq!(none, EnginePage { hits: vec![], next: None });
}
