//! The fake search site: the real captured Bing pages, their image URLs rewritten to this
//! server, served page by page; real photos from ../shared/data behind those URLs, mixed
//! with bad bodies at fixed positions. DuckDuckGo and Google answer with their real block
//! pages.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::{Response, Server, photos, shared};

/// What the image URL with index `n` (in order of first appearance) serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Photo(PathBuf),
    /// An HTML error page with `Content-Type: image/jpeg`.
    HtmlAsJpeg,
    /// An HTML page served honestly as `text/html`.
    HtmlPage,
    /// The first 60% of a real JPEG.
    Truncated(PathBuf),
    /// The same bytes as image `n`.
    CopyOf(usize),
    /// Image `n` resized to 90% and re-encoded at quality 70.
    ReencodedOf(usize),
    NotFound,
}

/// The three Bing pages, in paging order: 35, 42 and 27 unique image URLs.
const BING_PAGES: [&str; 3] = [
    "fixtures/serp/bing/phrona_async_rust_programming.html",
    "fixtures/serp/bing/retrievalgo_search_golang_gopher.html",
    "fixtures/serp/bing/retrievalgo_search_golang_gopher_pastyear.html",
];

pub struct Site {
    pub server: Server,
    /// Body of image index n.
    pub bodies: Vec<Body>,
    /// Unique image URLs per Bing page.
    pub unique_per_page: Vec<usize>,
}

struct Content {
    pages: Vec<String>,
    images: Vec<Vec<u8>>,
    bodies: Vec<Body>,
}

impl Site {
    pub fn start() -> Site {
        Site::start_with_delay(std::time::Duration::ZERO)
    }

    /// A site whose images take `delay` each to answer.
    pub fn start_with_delay(delay: std::time::Duration) -> Site {
        Site::serving("brown_bear", delay)
    }

    /// A site whose good images are the photos of `../shared/data/<set>`, in name order,
    /// again from the first when there are fewer photos than image URLs.
    pub fn serving(set: &str, delay: std::time::Duration) -> Site {
        let content: Arc<OnceLock<Content>> = Arc::new(OnceLock::new());
        let served = content.clone();
        let server = Server::start(move |target| {
            let response = respond(served.get().expect("site ready"), target);
            if target.starts_with("/img/") { response.with_delay(delay) } else { response }
        });
        let mut urls: HashMap<String, usize> = HashMap::new();
        let mut pages = Vec::new();
        let mut unique_per_page = Vec::new();
        for page in BING_PAGES {
            let html = std::fs::read_to_string(shared(page)).expect("bing fixture");
            let before = urls.len();
            pages.push(rewrite_murls(&html, &mut urls, |n| server.url(&Site::image_path(n))));
            unique_per_page.push(urls.len() - before);
        }
        let bodies = plan(set, urls.len());
        let images = bodies.iter().map(|b| render(b, &bodies)).collect();
        content.set(Content { pages, images, bodies: bodies.clone() }).ok().expect("set once");
        Site { server, bodies, unique_per_page }
    }

    /// `/img/N.jpg` for image index `n`.
    pub fn image_path(n: usize) -> String {
        format!("/img/{n}.jpg")
    }
}

/// Replaces every `murl` (the image URL) in a Bing page with `to(n)`, numbering new URLs in
/// order of first appearance (a URL repeated on a page keeps its number).
pub fn rewrite_murls(
    html: &str,
    urls: &mut HashMap<String, usize>,
    mut to: impl FnMut(usize) -> String,
) -> String {
    const KEY: &str = "murl&quot;:&quot;";
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(KEY) {
        let value_start = start + KEY.len();
        let value_len = rest[value_start..].find("&quot;").expect("murl value ends");
        let original = &rest[value_start..value_start + value_len];
        let next = urls.len();
        let n = *urls.entry(original.to_owned()).or_insert(next);
        out.push_str(&rest[..value_start]);
        out.push_str(&to(n));
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

/// Image indexes 2, 4, 6, 8, 10 and 12 serve bad bodies (all on the first page); every
/// other index serves the next JPEG photo of `set`.
fn plan(set: &str, count: usize) -> Vec<Body> {
    let jpegs: Vec<PathBuf> =
        photos(set).into_iter().filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect();
    let mut cycle = jpegs.into_iter().cycle();
    let mut photo = move || cycle.next().expect("photos");
    (0..count)
        .map(|n| match n {
            2 => Body::HtmlAsJpeg,
            4 => Body::Truncated(photo()),
            6 => Body::CopyOf(0),
            8 => Body::ReencodedOf(1),
            10 => Body::NotFound,
            12 => Body::HtmlPage,
            _ => Body::Photo(photo()),
        })
        .collect()
}

fn render(body: &Body, all: &[Body]) -> Vec<u8> {
    match body {
        Body::Photo(path) => std::fs::read(path).expect("photo"),
        Body::HtmlAsJpeg | Body::HtmlPage => {
            b"<!DOCTYPE html><html><head><title>404</title></head><body>Not here</body></html>"
                .to_vec()
        }
        Body::Truncated(path) => {
            let bytes = std::fs::read(path).expect("photo");
            bytes[..bytes.len() * 6 / 10].to_vec()
        }
        Body::CopyOf(n) => render(&all[*n], all),
        Body::ReencodedOf(n) => {
            let original =
                image::load_from_memory(&render(&all[*n], all)).expect("decodable original");
            let (w, h) = (original.width() * 9 / 10, original.height() * 9 / 10);
            let smaller =
                original.resize_exact(w, h, image::imageops::FilterType::Triangle).to_rgb8();
            let mut out = Cursor::new(Vec::new());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70)
                .encode_image(&smaller)
                .expect("encode");
            out.into_inner()
        }
        Body::NotFound => Vec::new(),
    }
}

fn respond(content: &Content, target: &str) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(n) = path.strip_prefix("/img/").and_then(|f| f.strip_suffix(".jpg")) {
        let Some(n) = n.parse::<usize>().ok().filter(|n| *n < content.images.len()) else {
            return Response::status(404);
        };
        return match &content.bodies[n] {
            Body::NotFound => Response::status(404),
            Body::HtmlPage => Response::ok("text/html; charset=utf-8", content.images[n].clone()),
            _ => Response::ok("image/jpeg", content.images[n].clone()),
        };
    }
    if path == "/bing/images/async" {
        let first: usize = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("first="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let page = match first {
            0..=35 => 0,
            36..=70 => 1,
            _ => 2,
        };
        return Response::ok("text/html; charset=utf-8", content.pages[page].clone());
    }
    if path.starts_with("/duckduckgo") {
        let block = std::fs::read(shared("fixtures/serp/duckduckgo/ddscrape_djs_anomaly_block.js"))
            .unwrap();
        return Response::ok("application/javascript", block);
    }
    if path.starts_with("/google") {
        let captcha =
            std::fs::read(shared("fixtures/serp/google/phrona_async_isch_captcha_sorry.html"))
                .unwrap();
        return Response::ok("text/html", captcha);
    }
    Response::status(404)
}
