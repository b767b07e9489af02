//! `pipeline report` rendered by a real browser (headless Chromium through chromedriver on
//! 127.0.0.1), with assertions on the rendered DOM: a store fetched from the fake search
//! site (failures and duplicates included), other imported photos as the cross-domain set,
//! a dataset never built, two tiny trained runs and one that logged nothing. Every photo
//! is from `../shared/data/demo_cc0` (CC0 or public domain), so the screenshots the test
//! writes for the README may be bundled.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::site::Site;
use crate::support::{Workspace, folder, photos, test_config};

const CONFIG: &str = "[build]\nsize = 72\ntest_fraction = 0.25\n\n[train]\nngf = 8\nndf = 8\ncrop = 64\nbatch_size = 4\ncheckpoint_every = 1\nkeep_last = 2\n\n[report]\npage_size = 16\ncross_domain = [\"other\"]\n";

/// Where the tests leave a screenshot of each page kind, for the README.
fn screenshot(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-screenshots")
        .join(format!("report-{name}.jpg"))
}

/// Checks what every page must hold: each `<img>` loaded, each relative link and source a
/// file of the report, nothing fetched from outside the folder.
fn check_page(browser: &Browser, report: &Path, page: &str) {
    browser.open(&report.join(page));
    let broken = browser.eval(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'));",
    );
    assert_eq!(broken, Value::Array(vec![]), "{page}: images that did not load");
    let fetched = browser.eval(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('file:'));",
    );
    assert_eq!(fetched, Value::Array(vec![]), "{page}: fetched from outside the folder");
    let targets = browser.eval(
        "return [...document.querySelectorAll('a[href], img[src], link[href]')].map(e => e.getAttribute(e.tagName === 'IMG' ? 'src' : 'href'));",
    );
    for target in targets.as_array().unwrap().iter().filter_map(Value::as_str) {
        if target.contains("://") {
            continue; // where an image came from (http, https, file): not part of the report
        }
        let file = target.split('#').next().unwrap();
        assert!(report.join(file).is_file(), "{page}: {target} is not a file of the report");
    }
}

/// The text of every element matching `selector`.
fn texts(browser: &Browser, selector: &str) -> Vec<String> {
    let script = format!(
        "return [...document.querySelectorAll({selector:?})].map(e => e.textContent.trim());"
    );
    serde_json::from_value(browser.eval(&script)).unwrap()
}

/// `reason -> count` from the bars matching `selector` (reason and count spans in turn).
fn bars(browser: &Browser, selector: &str) -> serde_json::Map<String, Value> {
    let reasons = texts(browser, &format!("{selector} .reason"));
    let counts = texts(browser, &format!("{selector} .count"));
    assert_eq!(reasons.len(), counts.len());
    reasons
        .into_iter()
        .zip(counts)
        .map(|(r, n)| (r, Value::from(n.parse::<u64>().unwrap())))
        .collect()
}

/// The cell of the eval table for `run`'s `column` (model or baseline) in row `metric`.
fn cell(browser: &Browser, table: usize, metric: &str, run: &str, column: &str) -> f64 {
    let run_filter = if column == "model" { format!("[data-run={run:?}]") } else { String::new() };
    let script = format!(
        "return document.querySelectorAll('table.eval')[{table}].querySelector('tr[data-metric={metric:?}] td{run_filter}[data-column={column:?}]').textContent;"
    );
    browser.eval(&script).as_str().unwrap().trim().parse().unwrap()
}

#[test]
fn the_report_renders_every_member_and_the_numbers_of_eval_and_status() {
    let site = Site::serving("demo_cc0", std::time::Duration::ZERO);
    let ws = Workspace::new(&test_config(&site.server, CONFIG));
    ws.run(&["fetch", "animals", "--top", "30", "--engine", "bing", "--dataset", "animals"])
        .expect_code(0);
    let cc0 = photos("demo_cc0");
    folder(&ws, "other-photos", &cc0[cc0.len() - 6..]);
    ws.run(&["import", "other-photos", "--dataset", "other"]).expect_code(0);
    folder(&ws, "more", &cc0[..3]);
    ws.run(&["import", "more", "--dataset", "unbuilt"]).expect_code(0);
    ws.run(&["build", "animals", "other"]).expect_code(0);
    for (run, epochs) in [("tiny-a", "2"), ("tiny-b", "3")] {
        let args = ["train", "animals", "--run", run, "--epochs", epochs, "--device", "cpu"];
        ws.run(&args).expect_code(0);
    }
    // A run that has not logged anything yet: its record only.
    std::fs::create_dir_all(ws.store().join("runs/silent")).unwrap();
    std::fs::copy(
        ws.store().join("runs/tiny-a/config.json"),
        ws.store().join("runs/silent/config.json"),
    )
    .unwrap();

    let summary = ws.run(&["report", "--json", "--device", "cpu"]).expect_code(0).json();
    assert_eq!((summary["datasets"].as_u64(), summary["runs"].as_u64()), (Some(3), Some(3)));
    let report = ws.store().join("report");
    let status = ws.status("animals");
    let browser = Browser::start();

    // Overview: the failure counts are status's, every run has a row.
    check_page(&browser, &report, "index.html");
    assert_eq!(
        Value::Object(bars(&browser, "section[data-dataset=animals] .failures")),
        status["failures"]
    );
    let failed = texts(&browser, "section[data-dataset=animals] td.failed");
    assert_eq!(failed, [status["failed"].to_string()]);
    assert_eq!(texts(&browser, "#runs tr").len(), 1 + 3, "a header and three runs");
    assert_eq!(texts(&browser, "section[data-dataset=unbuilt] .not-built").len(), 1);
    browser.screenshot(&screenshot("overview"));

    // Galleries: every member once over the pages, 16 a page, each thumbnail loaded.
    let members = status["images"].as_u64().unwrap() as usize;
    assert_eq!(members, 30);
    let tests = status["build"]["test"].as_u64().unwrap() as usize;
    let mut seen = BTreeSet::new();
    for page in 1..=members.div_ceil(16) {
        let file = if page == 1 {
            "dataset-animals.html".into()
        } else {
            format!("dataset-animals-p{page}.html")
        };
        check_page(&browser, &report, &file);
        let ids: Vec<String> = serde_json::from_value(browser.eval(
            "return [...document.querySelectorAll('figure.member')].map(f => f.dataset.id);",
        ))
        .unwrap();
        let images = browser.eval("return document.querySelectorAll('figure.member img').length;");
        assert_eq!(images.as_u64(), Some(ids.len() as u64), "{file}: one image per member");
        assert!(ids.len() <= 16, "{file}: {} members", ids.len());
        seen.extend(ids);
        if page == 1 {
            let test =
                browser.eval("return document.querySelectorAll('figure.member.test').length;");
            assert!(test.as_u64() > Some(0), "the test split is marked");
            browser.screenshot(&screenshot("dataset"));
        }
    }
    assert_eq!(seen.len(), members);

    // Failures: the bars are status's counts, each failed URL listed.
    check_page(&browser, &report, "dataset-animals-failures.html");
    assert_eq!(Value::Object(bars(&browser, "#failure-bars")), status["failures"]);
    let listed = texts(&browser, "#failed-urls tr").len() - 1;
    assert_eq!(listed as u64, status["failed"].as_u64().unwrap(), "one row per failed URL");
    assert_eq!(texts(&browser, "#duplicates tr").len() - 1, 2, "the two duplicates skipped");
    browser.screenshot(&screenshot("failures"));

    // A dataset never built says so.
    check_page(&browser, &report, "dataset-unbuilt.html");
    assert_eq!(texts(&browser, "#not-built").len(), 1);

    // A run: its eval table is `eval --json`'s numbers, to the four decimals shown.
    check_page(&browser, &report, "run-tiny-b.html");
    for (table, dataset, split) in [(0, "animals", "test"), (1, "other", "all")] {
        let args = [
            "eval",
            "--run",
            "tiny-b",
            "--dataset",
            dataset,
            "--split",
            split,
            "--json",
            "--device",
            "cpu",
        ];
        let eval = ws.run(&args).expect_code(0).json();
        for (metric, key) in [
            ("PSNR (dB, RGB)", "psnr"),
            ("SSIM (RGB, 11x11 gauss)", "ssim"),
            ("CIEDE2000 (mean)", "ciede2000"),
        ] {
            for column in ["model", "baseline"] {
                let shown = cell(&browser, table, metric, "tiny-b", column);
                let expected = eval[column][key].as_f64().unwrap();
                assert!(
                    (shown - expected).abs() < 0.6e-4,
                    "{dataset} {metric} {column}: page {shown}, eval {expected}"
                );
            }
        }
    }
    assert!(tests > 0);
    assert_eq!(texts(&browser, "#per-image tr").len(), 1 + tests, "a row per test image");
    assert_eq!(texts(&browser, "#best .strip").len(), tests.min(5));
    assert_eq!(texts(&browser, "#worst .strip").len(), tests.min(5));
    assert_eq!(texts(&browser, ".cross[data-dataset=other] .strip").len(), 6, "every photo");
    // The slider shows the first epoch's samples when moved to the start.
    let first = browser.eval(
        "const r = document.getElementById('sample-range'); r.value = 0; r.dispatchEvent(new Event('input')); return [document.getElementById('sample').getAttribute('src'), document.getElementById('sample-epoch').textContent];",
    );
    assert_eq!(first, serde_json::json!(["runs/tiny-b/samples/epoch-00001.jpg", "1"]));
    browser.open(&report.join("run-tiny-b.html"));
    browser.screenshot(&screenshot("run"));

    // A run without metrics says so instead of failing.
    check_page(&browser, &report, "run-silent.html");
    let problems = texts(&browser, ".problem").join("\n");
    assert!(problems.contains("no metrics yet"), "{problems}");

    // Two runs side by side on the same images: gray | tiny-a | tiny-b | original.
    check_page(&browser, &report, "compare-other-train-test.html");
    let columns = browser.eval("return [...document.querySelectorAll('.strip')[0].querySelectorAll('figcaption')].map(c => c.textContent);");
    assert_eq!(columns, serde_json::json!(["gray", "tiny-a", "tiny-b", "original"]));
    assert_eq!(texts(&browser, ".strip").len(), 6);
    browser.screenshot(&screenshot("compare"));

    // Again over the same store: nothing made twice, no page rewritten.
    let again = ws.run(&["report", "--json", "--device", "cpu"]).expect_code(0).json();
    assert_eq!(
        (again["thumbnails_made"].as_u64(), again["pages_written"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    let made = summary["thumbnails_made"].as_u64().unwrap();
    assert!(made >= 30, "every member has a thumbnail: {summary}");
    assert_eq!(again["thumbnails_cached"].as_u64(), Some(made), "{again}");
}

#[test]
fn an_empty_store_gets_a_page_that_says_so_and_a_missing_run_an_error() {
    let ws = Workspace::new("");
    let run = ws.run(&["report", "--run", "nope"]).expect_code(1);
    assert!(run.stderr.contains("no run named \"nope\""), "{}", run.stderr);
    assert!(!ws.store().join("report").exists(), "nothing written before the error");
    ws.run(&["report"]).expect_code(0);
    let browser = Browser::start();
    check_page(&browser, &ws.store().join("report"), "index.html");
    assert_eq!(texts(&browser, "#empty-store").len(), 1);
    assert_eq!(texts(&browser, "#no-runs").len(), 1);
}

#[test]
fn a_run_folder_whose_name_is_no_run_name_is_left_out_with_a_note() {
    let ws = Workspace::new("");
    ws.run(&["status"]).expect_code(0);
    for name in ["odd #1", "ünï", "ok-run"] {
        std::fs::create_dir_all(ws.store().join("runs").join(name)).unwrap();
    }
    let summary = ws.run(&["report", "--json"]).expect_code(0).json();
    assert_eq!(summary["runs"], 1, "{summary}");
    let problems = summary["problems"].to_string();
    assert!(problems.contains("odd #1") && problems.contains("ünï"), "{problems}");
    let browser = Browser::start();
    check_page(&browser, &ws.store().join("report"), "index.html");
    assert_eq!(texts(&browser, "#runs tr").len(), 1 + 1);
}

/// Markup, quotes and script, as anyone who writes a bucket, a search result or a URL list
/// can send them.
const HOSTILE: &str = "\"'><script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";

/// Issue 20, findings 5 and 7: every field that reaches a page is text, every link is
/// http(s) or a path inside the site, and the site names neither the store's path nor an
/// importer's folders. The hostile strings come from where they would: a bucket's member
/// list and counts (every member field, failure reasons) and a URL list's lines.
#[test]
fn hostile_strings_reach_every_page_as_text_and_every_link_is_http_or_in_the_site() {
    let bucket = crate::bucket_trust::Merged::new("hostile");
    let mut lines = bucket.members();
    for (i, line) in lines.iter_mut().enumerate() {
        let member = &mut line["member"];
        member["title"] = format!("{HOSTILE} {i}").into();
        member["source"] = format!("engine {HOSTILE}").into();
        member["query"] = HOSTILE.into();
        member["page_url"] =
            ["javascript:window.pwned=3", " JaVa\tScRiPt:window.pwned=4"][i % 2].into();
        let license_url =
            ["javascript:window.pwned=8", "https://creativecommons.org/licenses/by/4.0/"];
        member["credit"] = serde_json::json!({
            "license": "CC-BY-4.0", "license_url": license_url[i % 2], "creator": HOSTILE,
        });
        if i == 0 {
            member["url"] = "javascript:window.pwned=5//bear.jpg".into();
            member["page_url"] = Value::Null;
        }
    }
    bucket.put_members(&lines);
    let counts_key = bucket.key("members/bears.json");
    let mut counts: Value = serde_json::from_slice(&bucket.s3.get("test", &counts_key)).unwrap();
    counts["failures"] = serde_json::json!({ HOSTILE: 3 });
    bucket.s3.put("test", &counts_key, counts.to_string().into_bytes());
    bucket.run(&["build"]).expect_code(0);

    let ws = &bucket.ws;
    let list = format!(
        "javascript:window.pwned=6\n{HOSTILE}\nhttp://127.0.0.1:9/{HOSTILE}.jpg\ndata:text/html,<script>window.pwned=7</script>\n"
    );
    std::fs::write(ws.path("hostile.txt"), list).unwrap();
    ws.run(&["import", "hostile.txt", "--dataset", "lists", "--store", "cache"]);
    folder(ws, "mine", &photos("demo_cc0")[..2]);
    ws.run(&["import", "mine", "--dataset", "mine", "--store", "cache"]).expect_code(0);
    ws.run(&["report", "--store", "cache", "--out", "site", "--device", "cpu"]).expect_code(0);

    let site = ws.path("site");
    let browser = Browser::start();
    let mut pages: Vec<String> = std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".html"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 6, "{pages:?}");
    let cache = ws.path("cache").canonicalize().unwrap();
    let mine = ws.path("mine").canonicalize().unwrap();
    for page in &pages {
        let html = std::fs::read_to_string(site.join(page)).unwrap();
        assert!(!html.contains(&cache.display().to_string()), "{page} names the store's path");
        assert!(!html.contains(&mine.display().to_string()), "{page} names an importer's folder");
        check_page(&browser, &site, page);
        assert_eq!(browser.eval("return window.pwned === undefined;"), Value::Bool(true), "{page}");
        let targets = browser.eval(
            "return [...document.querySelectorAll('[href], [src]')].map(e => e.getAttribute('href') ?? e.getAttribute('src'));",
        );
        for target in targets.as_array().unwrap().iter().filter_map(Value::as_str) {
            let scheme = target.split_once(':').map(|(s, _)| s).filter(|s| !s.contains('/'));
            assert!(
                matches!(scheme, None | Some("http" | "https")) && !target.starts_with('/'),
                "{page}: a link to {target:?}"
            );
        }
        let handlers = browser.eval(
            "return [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on'));",
        );
        assert_eq!(handlers, Value::Array(vec![]), "{page}: event handlers");
        let scripts = browser.eval(
            "return [...document.scripts].map(s => s.textContent).filter(t => t.includes('pwned'));",
        );
        assert_eq!(scripts, Value::Array(vec![]), "{page}: a script that is no page's own");
    }
    // The hostile text is there, as text.
    browser.open(&site.join("dataset-bears.html"));
    let shown = browser.eval("return document.body.textContent;");
    assert!(shown.as_str().unwrap().contains(&format!("{HOSTILE} 1")), "the title, as text");
    // Each image's licence and creator, as text, the licence linked when its URL is http(s).
    let credits = texts(&browser, "figcaption .credit");
    assert!(credits.iter().all(|c| c == &format!("CC-BY-4.0 · {HOSTILE}")), "{credits:?}");
    let licence_links = browser.eval(
        "return [...document.querySelectorAll('figcaption .credit a')].map(a => a.getAttribute('href'));",
    );
    let links = licence_links.as_array().unwrap();
    assert!(!links.is_empty() && links.len() < credits.len(), "{licence_links}");
    assert!(links.iter().all(|l| l == "https://creativecommons.org/licenses/by/4.0/"), "{links:?}");
    // The dataset card of the same build: the hostile creator is escaped Markdown.
    let card = std::fs::read_to_string(latest_card(&ws.path("cache"), "bears")).unwrap();
    let unescaped = card.replace("\\<script\\>", "");
    assert!(unescaped.len() < card.len() && !unescaped.contains("<script"), "{card}");
    browser.open(&site.join("dataset-lists-failures.html"));
    let shown = browser.eval("return document.body.textContent;");
    assert!(shown.as_str().unwrap().contains("javascript:window.pwned=6"), "the URL, as text");
}

/// Issue 20, finding 6: scores are kept per checkpoint by its weights' hash, not only by
/// run name and epoch: a run deleted and trained again under its name is scored again.
#[test]
fn a_run_trained_again_under_its_name_is_scored_again() {
    let ws = crate::support::built_bears(CONFIG, 16);
    let train = ["train", "bears", "--run", "again", "--epochs", "1", "--device", "cpu"];
    let eval = ["eval", "--run", "again", "--dataset", "bears", "--json", "--device", "cpu"];
    let report = ["report", "--device", "cpu", "--out", "site"];
    ws.run(&train).expect_code(0);
    ws.run(&report).expect_code(0);
    let first = ws.run(&eval).expect_code(0).json()["model"]["ciede2000"].as_f64().unwrap();

    std::fs::remove_dir_all(ws.store().join("runs/again")).unwrap();
    let config = std::fs::read_to_string(ws.path("pipeline.toml")).unwrap();
    std::fs::write(ws.path("pipeline.toml"), config.replace("[train]\n", "[train]\nseed = 9\n"))
        .unwrap();
    ws.run(&train).expect_code(0);
    ws.run(&report).expect_code(0);
    let second = ws.run(&eval).expect_code(0).json()["model"]["ciede2000"].as_f64().unwrap();
    assert!((first - second).abs() > 1e-4, "the two runs differ: {first} {second}");

    let browser = Browser::start();
    check_page(&browser, &ws.path("site"), "run-again.html");
    let shown = cell(&browser, 0, "CIEDE2000 (mean)", "again", "model");
    assert!((shown - second).abs() < 0.6e-4, "page {shown}, the new run's eval {second}");
}

/// The dataset card of `dataset`'s latest build in `store`.
fn latest_card(store: &Path, dataset: &str) -> PathBuf {
    let dir = store.join("datasets").join(dataset);
    dir.join(std::fs::read_to_string(dir.join("latest")).unwrap().trim()).join("README.md")
}

/// Issue 26: a class-head run's page shows its trade-off between error and colour, one
/// point per temperature on its test split, made once per checkpoint and read back after.
#[test]
fn a_class_head_run_page_draws_its_error_against_colour() {
    let config = format!(
        "[build]\nsize = 72\ntest_fraction = 0.25\n\n[train]\nrecipe = \"pretrained\"\n\n{}",
        crate::support::tiny_pretrained("head = \"classes\"\n")
    );
    let ws = crate::support::built_bears(&config, 16);
    ws.run(&["train", "bears", "--run", "c", "--device", "cpu"]).expect_code(0);
    let report = ["report", "--device", "cpu", "--out", "site"];
    ws.run(&report).expect_code(0);
    let page = std::fs::read_to_string(ws.path("site/run-c.html")).unwrap();
    let src = page
        .split("id=\"tradeoff\" src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no trade-off picture on the run page"));
    let svg_path = ws.path("site").join(src);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    for label in ["T 1", "T 0.38", "T 0.1", "gray", "truth"] {
        assert!(svg.contains(label), "{label} is not drawn");
    }
    let json = std::fs::read(svg_path.with_file_name("tradeoff.json")).unwrap();
    let tradeoff: Value = serde_json::from_slice(&json).unwrap();
    let points = tradeoff["points"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    // The scores are eval's at that temperature.
    let eval = ["eval", "--run", "c", "--dataset", "bears", "--vividness", "0.38", "--json"];
    let line = ws.run(&[&eval[..], &["--device", "cpu"]].concat()).expect_code(0).json();
    let at = points.iter().find(|p| p["vividness"] == 0.38).unwrap();
    assert!(
        (at["ciede2000"].as_f64().unwrap() - line["model"]["ciede2000"].as_f64().unwrap()).abs()
            < 1e-9
    );
    let drawn = std::fs::metadata(&svg_path).unwrap().modified().unwrap();
    ws.run(&report).expect_code(0);
    assert_eq!(std::fs::metadata(&svg_path).unwrap().modified().unwrap(), drawn, "read back");
}
