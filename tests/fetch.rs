//! `pipeline fetch` end to end: the real binary against the fake search site on 127.0.0.1
//! (real captured Bing pages, real photos, bad bodies mixed in).

use std::collections::HashSet;

use crate::support::site::{Body, Site};
use crate::support::{Workspace, test_config};

/// Image indexes of the members of `dataset`, with their ranks, read through the library.
fn members(ws: &Workspace, site: &Site, dataset: &str) -> Vec<(usize, u64)> {
    let store = pipeline::store::Store::open(&ws.store()).expect("open store");
    let prefix = site.server.url("/img/");
    let mut out: Vec<(usize, u64)> = store
        .index
        .members(dataset)
        .expect("members")
        .into_iter()
        .map(|(_, member, _)| {
            let n = member
                .url
                .strip_prefix(&prefix)
                .and_then(|f| f.strip_suffix(".jpg"))
                .expect("site URL");
            (n.parse().expect("index"), member.rank)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn fetch_stores_top_unique_valid_images_and_counts_the_rest() {
    let site = Site::start();
    // 35, 42 and 27 unique URLs (SOURCES.md); one past-year URL is already on the gopher page.
    assert_eq!(site.unique_per_page, [35, 42, 26]);
    let ws = Workspace::new(&test_config(&site.server, "[fetch]\nengines = [\"bing\"]\n"));

    let run = ws.run(&["fetch", "brown bear", "--top", "40", "--json"]).expect_code(0);
    let summary = run.json();
    assert_eq!(summary["dataset"], "brown-bear");
    assert_eq!(summary["images"], 40);
    assert_eq!(summary["added"], 40);
    assert_eq!(summary["duplicates"], 2, "exact copy of #0 and re-encoded #1: {summary}");
    assert_eq!(summary["failures"], serde_json::json!({"html": 2, "http-404": 1, "truncated": 1}));
    assert!(summary["pages"].as_u64() >= Some(2), "40 needs the second page: {summary}");

    // The 40 members are the first 40 good images in rank order, each keeping its rank.
    let bad: HashSet<usize> = [2, 4, 6, 8, 10, 12].into();
    let expected: Vec<(usize, u64)> =
        (0..).filter(|n| !bad.contains(n)).take(40).map(|n| (n, n as u64 + 1)).collect();
    assert_eq!(members(&ws, &site, "brown-bear"), expected);

    // Nothing bad is stored: 40 blobs, each a real photo's exact bytes.
    let blobs = ws.blobs();
    assert_eq!(blobs.len(), 40);
    let photo_hashes: HashSet<String> = site
        .bodies
        .iter()
        .filter_map(|b| match b {
            Body::Photo(p) => Some(blake3::hash(&std::fs::read(p).unwrap()).to_hex().to_string()),
            _ => None,
        })
        .collect();
    for blob in &blobs {
        let name = blob.file_stem().unwrap().to_str().unwrap();
        assert!(photo_hashes.contains(name), "{} is not one of the served photos", blob.display());
        assert_eq!(blake3::hash(&std::fs::read(blob).unwrap()).to_hex().as_str(), name);
    }

    let status = ws.status("brown-bear");
    assert_eq!(status["images"], 40);
    assert_eq!(status["duplicates"], 2);
    assert_eq!(status["failed"], 4);
    assert_eq!(status["query"], "brown bear");
    assert!(status["last_fetch"].as_str().is_some_and(|t| t.ends_with('Z')), "{status}");

    // A rerun downloads nothing and searches nothing: the dataset is complete.
    let requests_before = site.server.requests().len();
    let rerun = ws.run(&["fetch", "brown bear", "--top", "40", "--json"]).expect_code(0).json();
    assert_eq!(rerun["added"], 0);
    assert_eq!(rerun["downloaded"], 0);
    assert_eq!(site.server.requests().len(), requests_before, "rerun made requests");

    // Raising --top fetches only what is missing: no member and no finally-failed or
    // duplicate URL of the first run is asked for again.
    let decided: HashSet<String> = members(&ws, &site, "brown-bear")
        .into_iter()
        .map(|(n, _)| n)
        .chain(bad.iter().copied())
        .map(Site::image_path)
        .collect();
    let more = ws.run(&["fetch", "brown bear", "--top", "60", "--json"]).expect_code(0).json();
    assert_eq!(more["images"], 60);
    assert_eq!(more["added"], 20);
    assert_eq!(more["known"], 46, "40 members and 6 decided failures or duplicates skipped");
    let asked_again: Vec<String> = site.server.requests()[requests_before..]
        .iter()
        .filter(|r| decided.contains(*r))
        .cloned()
        .collect();
    assert!(asked_again.is_empty(), "downloaded again: {asked_again:?}");
    assert_eq!(ws.blobs().len(), 60);
}

#[test]
fn blocked_engine_is_an_error_not_zero_results() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, ""));

    // DuckDuckGo answers with its anomaly block; Bing, tried next, fills the dataset.
    let run = ws
        .run(&["fetch", "brown bear", "--top", "5", "--engine", "duckduckgo", "--engine", "bing"])
        .expect_code(0);
    assert!(run.stdout.contains("engine error: duckduckgo blocked the request"), "{}", run.stdout);
    assert_eq!(ws.status("brown-bear")["images"], 5);

    // Google alone answers with its captcha: a partial run (exit 3) that says why.
    let run = ws.run(&["fetch", "polar bear", "--top", "5", "--engine", "google"]).expect_code(3);
    assert!(run.stdout.contains("google blocked the request"), "{}", run.stdout);
    assert_eq!(ws.status("polar-bear")["images"], 0);
    let downloads = site.server.hits("/img/");
    // 5 wanted + 5 ahead, + one more for each of the 6 bad bodies among the first URLs.
    assert!((5..=16).contains(&downloads), "downloads ran ahead of demand: {downloads}");
}

#[test]
fn query_file_runs_one_query() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, ""));
    std::fs::write(
        ws.path("bears.toml"),
        "query = \"brown bear\"\ndataset = \"bears\"\ntop = 3\nengines = [\"bing\"]\n",
    )
    .unwrap();
    let summary = ws.run(&["fetch", "--query-file", "bears.toml", "--json"]).expect_code(0).json();
    assert_eq!(summary["dataset"], "bears");
    assert_eq!(summary["images"], 3);
}

/// A real Bing page whose first results point at local files: `file:///dev/zero` (its
/// length reads 0, its bytes never end) and a real photo on this disk.
#[test]
fn results_naming_local_files_are_bad_urls_and_never_read() {
    let html = std::fs::read_to_string(crate::support::shared(
        "fixtures/serp/bing/phrona_async_rust_programming.html",
    ))
    .unwrap();
    let local_photo = crate::support::photos("brown_bear").remove(0);
    let photo_url = url::Url::from_file_path(&local_photo).unwrap().to_string();
    let bears = crate::support::photos("brown_bear");
    let page: std::sync::Arc<std::sync::OnceLock<String>> = Default::default();
    let served = page.clone();
    let server = crate::support::server::Server::start(move |target| {
        use crate::support::server::Response;
        match target.strip_prefix("/img/").and_then(|f| f.strip_suffix(".jpg")) {
            Some(n) => Response::ok(
                "image/jpeg",
                std::fs::read(&bears[n.parse::<usize>().unwrap() + 1]).unwrap(),
            ),
            None if target.starts_with("/bing/") => {
                Response::ok("text/html", served.get().unwrap().clone())
            }
            None => Response::status(404),
        }
    });
    let mut urls = std::collections::HashMap::new();
    let rewritten = crate::support::site::rewrite_murls(&html, &mut urls, |n| match n {
        0 => "file:///dev/zero".to_owned(),
        1 => photo_url.clone(),
        n => server.url(&Site::image_path(n)),
    });
    page.set(rewritten).unwrap();
    let ws = Workspace::new(&test_config(&server, "[fetch]\nengines = [\"bing\"]\n"));

    let summary = ws.run(&["fetch", "brown bear", "--top", "3", "--json"]).expect_code(0).json();
    assert_eq!(summary["images"], 3);
    assert_eq!(summary["failures"], serde_json::json!({"bad-url": 2}), "{summary}");
    let local = blake3::hash(&std::fs::read(&local_photo).unwrap()).to_hex().to_string();
    assert!(
        ws.blobs().iter().all(|b| !b.to_string_lossy().contains(&local)),
        "a local file was copied into the store"
    );
}

/// A store that refuses every blob write (plain files where the fan-out folders go, which
/// stops root too) is a fatal error: the run ends with exit 1 instead of waiting forever
/// for demand only the failed sink returns, and the store lock is released.
#[test]
fn a_store_that_refuses_writes_ends_the_run_and_frees_the_store() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, "[fetch]\nengines = [\"bing\"]\n"));
    let blobs = ws.store().join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    for n in 0..256 {
        std::fs::write(blobs.join(format!("{n:02x}")), b"not a folder").unwrap();
    }
    let mut child = ws
        .command(&["fetch", "brown bear", "--top", "5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("fetch hung after the store refused a write");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("blobs/"), "the error names the path: {stderr}");
    ws.run(&["verify"]).expect_code(0);
}

/// DuckDuckGo as the fallback after Bing: its first `i.js` page repeats Bing's results,
/// its second has new ones. "No new results" is judged against DuckDuckGo's own URLs, so
/// it goes on to the second page.
#[test]
fn a_fallback_engine_pages_on_past_results_another_engine_gave() {
    use crate::support::server::Response;
    let bing = std::fs::read_to_string(crate::support::shared(
        "fixtures/serp/bing/phrona_async_rust_programming.html",
    ))
    .unwrap();
    let token_page = std::fs::read(crate::support::shared(
        "fixtures/serp/duckduckgo/ddscrape_vqd_page_trimmed.html",
    ))
    .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(
        &std::fs::read(crate::support::shared(
            "fixtures/serp/duckduckgo/phrona_ijs_rust_programming.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let bears = crate::support::photos("brown_bear");
    let pages: std::sync::Arc<std::sync::OnceLock<(String, String, String)>> = Default::default();
    let served = pages.clone();
    let server = crate::support::server::Server::start(move |target| {
        let (bing, first, second) = served.get().unwrap();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if let Some(n) = path.strip_prefix("/img/").and_then(|f| f.strip_suffix(".jpg")) {
            let n: usize = n.parse().unwrap();
            let photo = if n < 100 { n } else { n - 100 + 35 };
            return Response::ok("image/jpeg", std::fs::read(&bears[photo]).unwrap());
        }
        match path {
            "/bing/images/async" => Response::ok("text/html", bing.clone()),
            "/duckduckgo/" => Response::ok("text/html", token_page.clone()),
            "/duckduckgo/i.js" if query.contains("s=100") => {
                Response::ok("application/json", second.clone())
            }
            "/duckduckgo/i.js" => Response::ok("application/json", first.clone()),
            _ => Response::status(404),
        }
    });
    let mut urls = std::collections::HashMap::new();
    let bing =
        crate::support::site::rewrite_murls(&bing, &mut urls, |n| server.url(&Site::image_path(n)));
    assert_eq!(urls.len(), 35);
    // i.js page 1: Bing's 35 images again, and a next page; page 2: 20 new ones, the end.
    let with_images = |from: usize, count: usize, next: Option<&str>| {
        let mut page = answer.clone();
        let results = page["results"].as_array_mut().unwrap();
        results.truncate(count);
        for (k, result) in results.iter_mut().enumerate() {
            result["image"] = server.url(&Site::image_path(from + k)).into();
        }
        page["next"] = next.into();
        page.to_string()
    };
    let first = with_images(0, 35, answer["next"].as_str());
    let second = with_images(100, 20, None);
    pages.set((bing, first, second)).unwrap();
    let ws = Workspace::new(&test_config(&server, ""));

    let summary = ws
        .run(&[
            "fetch",
            "brown bear",
            "--top",
            "45",
            "--engine",
            "bing",
            "--engine",
            "duckduckgo",
            "--json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(summary["images"], 45, "{summary}");
}

/// Google's wall as a redirect: the search answers 302 to `/sorry/index`, whose page has
/// no telling text. The engine sees the URL the redirect ended at and calls it a block.
#[test]
fn a_redirect_to_the_google_captcha_is_a_block() {
    use crate::support::server::Response;
    let server = crate::support::server::Server::start(|target| {
        if target.starts_with("/google/search") {
            Response::redirect("/google/sorry/index?continue=search")
        } else if target.starts_with("/google/sorry/") {
            Response::ok("text/html", "<html><body></body></html>")
        } else {
            Response::status(404)
        }
    });
    let ws = Workspace::new(&test_config(&server, ""));
    let run = ws.run(&["fetch", "polar bear", "--top", "5", "--engine", "google"]).expect_code(3);
    assert!(run.stdout.contains("redirected to the captcha page"), "{}", run.stdout);
}
