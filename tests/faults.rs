//! The fault suite: one import of URLs from a fault-injecting server on 127.0.0.1. Every
//! fault ends counted under its own reason, nothing bad is stored, nothing is written
//! outside the store, and the whole run is bounded in time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Response, Server, Workspace, photos};

/// A small PNG that declares 20000 x 20000 pixels (400 megapixels, 50 MB at one bit per
/// pixel, 1.6 GB as RGBA): a decompression bomb of about 300 KB.
fn decompression_bomb() -> Vec<u8> {
    let side = 20_000;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&vec![0u8; (side as usize / 8) * side as usize]).unwrap();
    writer.finish().unwrap();
    out
}

/// The faults, by path: what the server does, and the reason the run must count.
struct Faults {
    /// Arrival time of every request, by target.
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
    /// The photos served to requests that succeed, by path.
    good: HashMap<&'static str, Vec<u8>>,
}

fn fault_config(extra: &str) -> String {
    format!(
        "[network]\nconnect_timeout_s = 2\ntotal_timeout_s = 3\nretries = 1\nmax_bytes = 1000000\n{extra}"
    )
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().to_owned())
        .collect()
}

/// The fault server on 127.0.0.1, and the private server on 127.0.0.2 that its
/// `/to-private.jpg` redirects to (a real photo).
fn start() -> (Server, Faults, Server) {
    let private = Server::start_on("127.0.0.2", |_| {
        Response::ok("image/jpeg", std::fs::read(&photos("brown_bear")[9]).unwrap())
    });
    let bears: Vec<Vec<u8>> =
        photos("brown_bear").iter().take(8).map(|p| std::fs::read(p).unwrap()).collect();
    let good: HashMap<&'static str, Vec<u8>> = HashMap::from([
        ("/429-then-ok.jpg", bears[0].clone()),
        ("/500-then-ok.jpg", bears[1].clone()),
        ("/etc/passwd", bears[2].clone()),
        ("/img/..%2F..%2Fetc%2Fpasswd", bears[3].clone()),
    ]);
    let served = good.clone();
    let truncated = bears[4][..bears[4].len() / 2].to_vec();
    let lying = bears[5].clone();
    let bomb = decompression_bomb();
    assert!(bomb.len() < 500_000, "under max_bytes, so only the pixel check can stop it");
    let private_url = private.url("/photo.jpg");
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let log = arrivals.clone();
    let calls: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let server = Server::start(move |target| {
        log.lock().unwrap().push((target.to_owned(), Instant::now()));
        let call = {
            let mut calls = calls.lock().unwrap();
            let n = calls.entry(target.to_owned()).or_default();
            *n += 1;
            *n
        };
        let jpeg = |bytes: &[u8]| Response::ok("image/jpeg", bytes.to_vec());
        match target {
            "/429-then-ok.jpg" if call == 1 => {
                Response::status(429).with_header("Retry-After", "1")
            }
            "/429-always.jpg" => Response::status(429).with_header("Retry-After", "1"),
            "/500-then-ok.jpg" if call == 1 => Response::status(500),
            "/reset.jpg" => Response::reset(),
            "/drip.jpg" => Response {
                drip: Some((1024, Duration::from_millis(100))),
                ..jpeg(&vec![0xFF; 200 * 1024])
            },
            "/truncated.jpg" => jpeg(&truncated),
            "/html-as-jpeg.jpg" => {
                jpeg(b"<!DOCTYPE html><html><body>Sorry, this image is unavailable</body></html>")
            }
            "/empty.jpg" => jpeg(b""),
            "/too-large.jpg" => jpeg(&vec![0xFF; 1_500_000]),
            "/too-large-unannounced.jpg" => {
                Response { length: Some(None), ..jpeg(&vec![0xFF; 1_500_000]) }
            }
            "/lying-length.jpg" => {
                Response { length: Some(Some(lying.len() + 5000)), ..jpeg(&lying) }
            }
            "/bomb.png" => Response::ok("image/png", bomb.clone()),
            "/loop-a.jpg" => Response::redirect("/loop-b.jpg"),
            "/loop-b.jpg" => Response::redirect("/loop-a.jpg"),
            "/to-private.jpg" => Response::redirect(&private_url),
            path => match served.get(path) {
                Some(bytes) => jpeg(bytes),
                None => Response::status(404),
            },
        }
    });
    (server, Faults { arrivals, good }, private)
}

/// (URL path as written in the list, reason it must be counted under, or "" for accepted).
const CASES: [(&str, &str); 17] = [
    ("/429-then-ok.jpg", ""),
    ("/429-always.jpg", "http-429"),
    ("/500-then-ok.jpg", ""),
    ("/reset.jpg", "connection-reset"),
    ("/drip.jpg", "timeout"),
    ("/truncated.jpg", "truncated"),
    ("/html-as-jpeg.jpg", "html"),
    ("/empty.jpg", "empty"),
    ("/too-large.jpg", "too-large"),
    ("/too-large-unannounced.jpg", "too-large"),
    ("/lying-length.jpg", "short-body"),
    ("/bomb.png", "too-many-pixels"),
    ("/loop-a.jpg", "redirects"),
    ("/to-private.jpg", "private-address"),
    ("/img/../../etc/passwd", ""),
    ("/img/..%2F..%2Fetc%2Fpasswd", ""),
    ("/missing.jpg", "http-404"),
];

#[test]
fn every_fault_is_counted_under_its_reason_and_nothing_bad_is_stored() {
    let (server, faults, private) = start();
    // 127.0.0.1 (the fault server) is allowed, 127.0.0.2 is not.
    let ws = Workspace::new(&fault_config("private_allowlist = [\"127.0.0.1\"]\n"));
    let list: String = CASES.iter().map(|(path, _)| server.url(path) + "\n").collect();
    std::fs::write(ws.path("urls.txt"), list).unwrap();

    let started = Instant::now();
    let summary =
        ws.run(&["import", "urls.txt", "--dataset", "faults", "--json"]).expect_code(0).json();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "bounded in time: {elapsed:?}");

    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, reason) in CASES.iter().filter(|(_, r)| !r.is_empty()) {
        *expected.entry(reason).or_default() += 1;
    }
    assert_eq!(summary["failures"], serde_json::json!(expected), "{summary}");
    assert_eq!(summary["images"], 4, "{summary}");
    assert_eq!(private.connections(), 0, "the redirect to 127.0.0.2 was refused before connecting");

    // Retries: transient faults were tried twice (network.retries = 1), the rest once;
    // the retry after a 429 waited for its Retry-After.
    let arrivals = faults.arrivals.lock().unwrap().clone();
    let times = |target: &str| -> Vec<Instant> {
        arrivals.iter().filter(|(t, _)| t == target).map(|(_, at)| *at).collect()
    };
    for (target, tries) in [
        ("/429-then-ok.jpg", 2),
        ("/429-always.jpg", 2),
        ("/500-then-ok.jpg", 2),
        ("/reset.jpg", 2),
        ("/drip.jpg", 2),
        ("/lying-length.jpg", 2),
        ("/truncated.jpg", 1),
        ("/bomb.png", 1),
        ("/to-private.jpg", 1),
    ] {
        assert_eq!(times(target).len(), tries, "requests for {target}");
    }
    let limited = times("/429-then-ok.jpg");
    assert!(limited[1] - limited[0] >= Duration::from_secs(1), "Retry-After: 1 honoured");

    // Nothing bad stored: exactly the four good photos, each under its content hash.
    let mut stored: HashSet<Vec<u8>> = HashSet::new();
    for blob in ws.blobs() {
        let bytes = std::fs::read(&blob).unwrap();
        let name = blob.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, blake3::hash(&bytes).to_hex().as_str(), "blobs are named by content");
        stored.insert(bytes);
    }
    let good: HashSet<Vec<u8>> = faults.good.values().cloned().collect();
    assert_eq!(stored, good);

    // Nothing written outside the store, and no file named after a URL.
    let outside: Vec<PathBuf> = files_under(ws.dir.path())
        .into_iter()
        .filter(|p| {
            !p.starts_with("store") && p != Path::new("pipeline.toml") && p != Path::new("urls.txt")
        })
        .collect();
    assert!(outside.is_empty(), "written outside the store: {outside:?}");
    let named: Vec<PathBuf> = files_under(&ws.store())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("passwd") || p.to_string_lossy().contains(".."))
        .collect();
    assert!(named.is_empty(), "{named:?}");

    // Transient failures are tried again by the next run; final ones are not.
    let before = arrivals.len();
    ws.run(&["import", "urls.txt", "--dataset", "faults"]).expect_code(0);
    let again: HashSet<String> =
        faults.arrivals.lock().unwrap()[before..].iter().map(|(t, _)| t.clone()).collect();
    let transient: HashSet<String> =
        ["/429-always.jpg", "/reset.jpg", "/drip.jpg", "/lying-length.jpg"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(again, transient);
}

#[test]
fn a_redirect_to_a_private_address_is_followed_only_when_allowed() {
    let (server, _, private) = start();
    let ws = Workspace::new(&fault_config("allow_private = true\n"));
    std::fs::write(ws.path("urls.txt"), server.url("/to-private.jpg") + "\n").unwrap();
    let summary = ws.run(&["import", "urls.txt", "--dataset", "p", "--json"]).expect_code(0).json();
    assert_eq!(summary["images"], 1, "{summary}");
    assert_eq!(private.connections(), 1);
}

/// With the guard on, `HTTP_PROXY` must not carry a request past it: a host that resolves
/// to loopback is refused before any connection, to the proxy or anywhere else.
#[test]
fn a_proxy_does_not_carry_requests_past_the_address_guard() {
    let proxy = Server::start(|_| {
        Response::ok("image/jpeg", std::fs::read(&photos("brown_bear")[0]).unwrap())
    });
    let ws = Workspace::new("[network]\nretries = 0\nconnect_timeout_s = 2\ntotal_timeout_s = 5\n");
    std::fs::write(ws.path("urls.txt"), "http://localhost:9/bear.jpg\n").unwrap();
    let run = ws
        .command(&["import", "urls.txt", "--dataset", "p", "--json"])
        .env("HTTP_PROXY", proxy.url(""))
        .env("http_proxy", proxy.url(""))
        .env("ALL_PROXY", proxy.url(""))
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["failures"], serde_json::json!({"private-address": 1}), "{summary}");
    assert_eq!(proxy.connections(), 0, "the proxy was asked");
}

/// A `Retry-After` over the 60 s cap is not waited for and not retried: the URL fails at
/// once under its status.
#[test]
fn a_retry_after_over_the_cap_fails_the_url_without_retrying() {
    let server = Server::start(|_| Response::status(503).with_header("Retry-After", "120"));
    let ws = Workspace::new("[network]\nallow_private = true\nretries = 2\n");
    std::fs::write(ws.path("urls.txt"), server.url("/busy.jpg") + "\n").unwrap();
    let summary = ws.run(&["import", "urls.txt", "--dataset", "p", "--json"]).json();
    assert_eq!(summary["failures"], serde_json::json!({"http-503": 1}), "{summary}");
    assert_eq!(server.hits("/busy.jpg"), 1, "retried");
}
