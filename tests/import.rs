//! `pipeline import` end to end: folders of real photos and URL lists, with bad entries.

use crate::support::{Response, Server, Workspace, photos, test_config};

#[test]
fn folder_import_keeps_valid_unique_images() {
    let ws = Workspace::new("");
    let dir = ws.path("photos");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    let polar = photos("polar_bear");
    for (i, photo) in polar.iter().enumerate() {
        std::fs::copy(photo, dir.join(format!("p{i:02}.jpg"))).unwrap();
    }
    std::fs::copy(&polar[0], dir.join("nested/copy-of-p00.jpg")).unwrap();
    std::fs::write(dir.join("nested/page.jpg"), "<html><body>not found</body></html>").unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image, not picked up").unwrap();
    let bytes = std::fs::read(&polar[1]).unwrap();
    std::fs::write(dir.join("truncated.jpg"), &bytes[..bytes.len() / 2]).unwrap();

    let summary =
        ws.run(&["import", "photos", "--dataset", "polar", "--json"]).expect_code(0).json();
    assert_eq!(summary["images"], polar.len());
    assert_eq!(summary["duplicates"], 1);
    assert_eq!(summary["failures"], serde_json::json!({"html": 1, "truncated": 1}));
    assert_eq!(ws.blobs().len(), polar.len());

    let again = ws.run(&["import", "photos", "--dataset", "polar", "--json"]).expect_code(0).json();
    assert_eq!(again["added"], 0);
    assert_eq!(again["downloaded"], 0, "a rerun reads nothing it already decided");
}

#[test]
fn url_list_import_names_bad_lines_and_downloads_the_rest() {
    let bears = photos("brown_bear");
    let served = bears.clone();
    let server = Server::start(move |target| {
        let n: usize =
            target.trim_start_matches("/b/").trim_end_matches(".jpg").parse().unwrap_or(9999);
        match served.get(n) {
            Some(path) => Response::ok("image/jpeg", std::fs::read(path).unwrap()),
            None => Response::status(404),
        }
    });
    let ws = Workspace::new(&test_config(&server, ""));
    let list = format!(
        "# three photos, a 404, two lines that are not http URLs\n{}\n{}\n\nnot a url\n{}\nftp://example.com/x.jpg\n{}\n",
        server.url("/b/0.jpg"),
        server.url("/b/1.jpg"),
        server.url("/b/9999.jpg"),
        server.url("/b/2.jpg"),
    );
    std::fs::write(ws.path("urls.txt"), list).unwrap();
    let run = ws.run(&["import", "urls.txt", "--dataset", "sample"]).expect_code(0);
    assert!(run.stdout.contains("sample: 3 images"), "{}", run.stdout);
    assert!(run.stdout.contains("urls.txt:5: not a URL"), "names the line: {}", run.stdout);
    let status = ws.status("sample");
    assert_eq!(status["failures"], serde_json::json!({"bad-url": 2, "http-404": 1}));
}

#[test]
fn private_addresses_are_refused_before_any_connection() {
    let server = Server::start(|_| Response::status(200));
    // The default network config: allow_private = false.
    let ws = Workspace::new("");
    let port = server.addr.port();
    let list = format!(
        "http://127.0.0.1:{port}/a.jpg\nhttp://localhost:{port}/b.jpg\nhttp://[::1]:{port}/c.jpg\nhttp://10.0.0.1:{port}/d.jpg\n"
    );
    std::fs::write(ws.path("urls.txt"), list).unwrap();
    let summary = ws.run(&["import", "urls.txt", "--dataset", "x", "--json"]).expect_code(0).json();
    assert_eq!(summary["failures"], serde_json::json!({"private-address": 4}));
    assert_eq!(server.connections(), 0, "a refused URL must not be connected to");
}

/// The URLs of the failures listed for `dataset`, with their reasons.
fn failures_listed(ws: &Workspace, dataset: &str) -> Vec<(String, String)> {
    let store = pipeline::store::Store::open(&ws.store()).unwrap();
    let tree = pipeline::store::Tree::Failures(dataset.into());
    let records = store.index.records::<pipeline::store::FailureRecord>(&tree).unwrap();
    records.into_iter().map(|(url, r)| (url, r.unwrap().reason)).collect()
}

#[test]
fn each_failed_url_is_listed_until_a_later_try_succeeds() {
    let hits = std::sync::atomic::AtomicUsize::new(0);
    let photo = std::fs::read(&photos("polar_bear")[0]).unwrap();
    let server = Server::start(move |target| match target {
        // Busy for the first run's two tries (network.retries = 1), a photo after.
        "/flaky.jpg" if hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 => {
            Response::status(503)
        }
        "/flaky.jpg" => Response::ok("image/jpeg", photo.clone()),
        _ => Response::status(404),
    });
    let ws = Workspace::new(&test_config(&server, ""));
    let urls = format!("{}\n{}\n", server.url("/flaky.jpg"), server.url("/gone.jpg"));
    std::fs::write(ws.path("urls.txt"), urls).unwrap();

    ws.run(&["import", "urls.txt", "--dataset", "d"]).expect_code(0);
    let first = failures_listed(&ws, "d");
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.contains(&(server.url("/flaky.jpg"), "http-503".into())), "{first:?}");
    assert!(first.contains(&(server.url("/gone.jpg"), "http-404".into())), "{first:?}");

    ws.run(&["import", "urls.txt", "--dataset", "d"]).expect_code(0);
    assert_eq!(failures_listed(&ws, "d"), [(server.url("/gone.jpg"), "http-404".into())]);
    assert_eq!(ws.status("d")["images"], 1);
}

/// Issue 20, finding 7: text from a search engine (here Openverse's refusal, which the
/// summary quotes) reaches the terminal only with its control characters escaped: an ESC
/// sequence cannot retitle the window, clear the screen or rewrite the summary.
#[test]
fn terminal_escapes_from_an_engine_are_shown_not_sent() {
    let server = Server::start(|_| {
        let detail = serde_json::json!({"detail": "\u{1b}]0;owned\u{7}\u{1b}[2Jslow down"});
        Response::ok("application/json", detail.to_string()).with_status(429)
    });
    let ws = Workspace::new(&test_config(&server, ""));
    let run = ws.run(&["fetch", "bears", "--engine", "openverse", "--top", "5"]);
    assert!(run.stdout.contains("engine error: openverse blocked"), "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'), "{:?}", run.stdout);
    assert!(run.stdout.contains("\\u{1b}]0;owned\\u{7}\\u{1b}[2Jslow down"), "{}", run.stdout);
}
