//! Opt-outs from AI training (issue 22), end to end on three loopback hosts: a site's
//! image headers (`X-Robots-Tag` for every agent or for ours, `tdm-reservation`,
//! `Content-Usage`), its robots.txt (`Content-Usage` by path, `Content-Signal`) and its
//! tdmrep.json each leave images out as `opted-out`; path rules before any byte of the
//! image is asked for, each host's rules asked for once; a rerun asks nothing again; with
//! `[opt_outs] honour = false` they are all taken, and the dataset card says which. A
//! `fetch` through a real captured Bing page does the same to the hosts it names.

use std::sync::Arc;

use serde_json::{Value, json};

use super::support::site::rewrite_murls;
use super::support::{Response, Server, Workspace, bears, shared, test_config};

/// The photos the hosts serve, by path.
struct Photos(Vec<Vec<u8>>);

impl Photos {
    fn jpeg(&self, n: usize) -> Response {
        Response::ok("image/jpeg", self.0[n].clone())
    }
}

/// Host A (127.0.0.1): header opt-outs, robots.txt `Content-Usage` for /usage/ and for
/// our agent's group only, tdmrep.json reserving /reserved/ but not /reserved/open/.
fn host_a(photos: Arc<Photos>) -> Server {
    Server::start(move |target| match target {
        "/robots.txt" => Response::ok(
            "text/plain",
            "User-agent: *\nDisallow: /private/\nContent-Usage: /usage/ train-ai=n\n\n\
             User-agent: otherbot\nContent-Usage: train-genai=n\n",
        ),
        "/.well-known/tdmrep.json" => Response::ok(
            "application/json",
            r#"[{"location": "/reserved/open/*", "tdm-reservation": 0},
                {"location": "/reserved/*", "tdm-reservation": 1}]"#,
        ),
        "/ok.jpg" => photos.jpeg(0),
        "/noai.jpg" => photos.jpeg(1).with_header("X-Robots-Tag", "noai"),
        "/ours.jpg" => photos.jpeg(2).with_header("X-Robots-Tag", "pipeline: noimageai"),
        "/otherbot.jpg" => photos.jpeg(3).with_header("X-Robots-Tag", "otherbot: noai, noindex"),
        "/snippet.jpg" => photos.jpeg(4).with_header("X-Robots-Tag", "max-snippet: 20"),
        "/tdm.jpg" => photos.jpeg(5).with_header("tdm-reservation", "1"),
        "/usage-header.jpg" => photos.jpeg(6).with_header("Content-Usage", "train-ai=n"),
        "/usage/a.jpg" => photos.jpeg(7),
        "/reserved/b.jpg" => photos.jpeg(12),
        "/reserved/open/c.jpg" => photos.jpeg(8),
        _ => Response::status(404),
    })
}

/// Host B (127.0.0.2): `Content-Signal: ai-train=no` for everything.
fn host_b(photos: Arc<Photos>) -> Server {
    Server::start_on("127.0.0.2", move |target| match target {
        "/robots.txt" => Response::ok(
            "text/plain",
            "User-agent: *\nContent-Signal: search=yes, ai-train=no\nAllow: /\n",
        ),
        "/d.jpg" => photos.jpeg(9),
        _ => Response::status(404),
    })
}

/// Host C (127.0.0.3): no robots.txt, no tdmrep.json, two plain photos.
fn host_c(photos: Arc<Photos>) -> Server {
    Server::start_on("127.0.0.3", move |target| match target {
        "/e.jpg" => photos.jpeg(10),
        "/f.jpg" => photos.jpeg(11),
        _ => Response::status(404),
    })
}

fn import(ws: &Workspace) -> Value {
    ws.run(&["import", "urls.txt", "--dataset", "bears", "--json"]).expect_code(0).json()
}

#[test]
fn opted_out_images_are_left_out_and_the_card_says_so() {
    let photos = Arc::new(Photos(bears(0..13).iter().map(|p| std::fs::read(p).unwrap()).collect()));
    let (a, b, c) = (host_a(photos.clone()), host_b(photos.clone()), host_c(photos));
    let a_paths = [
        "/ok.jpg",
        "/noai.jpg",
        "/ours.jpg",
        "/otherbot.jpg",
        "/snippet.jpg",
        "/tdm.jpg",
        "/usage-header.jpg",
        "/usage/a.jpg",
        "/reserved/b.jpg",
        "/reserved/open/c.jpg",
    ];
    let mut list: Vec<String> = a_paths.iter().map(|p| a.url(p)).collect();
    list.extend([b.url("/d.jpg"), c.url("/e.jpg"), c.url("/f.jpg")]);
    let ws = Workspace::new(&test_config(&a, ""));
    std::fs::write(ws.path("urls.txt"), list.join("\n")).unwrap();

    let summary = import(&ws);
    // Taken: ok, otherbot (scoped to another agent), snippet (an argument, not a scope),
    // reserved/open (tdmrep.json's first match), e and f.
    assert_eq!(summary["added"], 6, "{summary}");
    assert_eq!(summary["failures"], json!({"opted-out": 7}), "{summary}");
    // Path rules refuse before the image is asked for; each host's rules are asked once.
    for never in ["/usage/a.jpg", "/reserved/b.jpg"] {
        assert_eq!(a.hits(never), 0, "{never} was requested");
    }
    assert_eq!(b.hits("/d.jpg"), 0, "Content-Signal covers host B");
    for server in [&a, &b, &c] {
        assert_eq!(server.hits("/robots.txt"), 1, "{:?}", server.requests());
        assert_eq!(server.hits("/.well-known/tdmrep.json"), 1, "{:?}", server.requests());
    }
    let status = ws.status("bears");
    assert_eq!(status["failures"]["opted-out"], 7, "{status}");

    // A rerun asks nothing: members and opt-outs are decided, the rules are in the index.
    let before = [a.requests().len(), b.requests().len(), c.requests().len()];
    let again = import(&ws);
    assert_eq!(again["added"], 0, "{again}");
    assert_eq!([a.requests().len(), b.requests().len(), c.requests().len()], before);

    ws.run(&["build", "bears", "--size", "32", "--on-leak", "allow"]).expect_code(0);
    let card = latest_card(&ws);
    assert!(card.contains("Honoured by every fetch from the web"), "{card}");
    assert!(card.contains("7 image URL(s) were left out this way"), "{card}");

    // Not honoured: the opted-out images are asked for again and taken, no rules are
    // read, and the card no longer claims they were honoured.
    let mut config = test_config(&a, "");
    config.push_str("\n[opt_outs]\nhonour = false\n");
    std::fs::write(ws.path("pipeline.toml"), config).unwrap();
    let taken = import(&ws);
    assert_eq!(taken["added"], 7, "{taken}");
    assert_eq!(a.hits("/robots.txt") + b.hits("/robots.txt"), 2, "no rules read again");
    ws.run(&["build", "bears", "--size", "32", "--on-leak", "allow"]).expect_code(0);
    let card = latest_card(&ws);
    assert!(card.contains("**Not honoured**"), "{card}");
}

fn latest_card(ws: &Workspace) -> String {
    let dir = ws.store().join("datasets/bears");
    let version = std::fs::read_to_string(dir.join("latest")).unwrap();
    std::fs::read_to_string(dir.join(version.trim()).join("README.md")).unwrap()
}

#[test]
fn fetch_of_a_result_page_stores_none_of_the_images_their_hosts_opt_out() {
    // Image n of the captured page: even ones say `X-Robots-Tag: noai`, every fourth
    // from 1 lies under a path robots.txt reserves, the rest are plain.
    let photos: Vec<Vec<u8>> = bears(0..35).iter().map(|p| std::fs::read(p).unwrap()).collect();
    let images = Server::start_on("127.0.0.2", move |target| {
        if target == "/robots.txt" {
            return Response::ok(
                "text/plain",
                "User-agent: *\nContent-Usage: /reserved/ train-ai=n\n",
            );
        }
        let n: Option<usize> =
            target.rsplit('/').next().and_then(|f| f.strip_suffix(".jpg")?.parse().ok());
        match n.and_then(|n| Some((n, photos.get(n)?.clone()))) {
            Some((n, bytes)) if n % 2 == 0 => {
                Response::ok("image/jpeg", bytes).with_header("X-Robots-Tag", "noai, noimageai")
            }
            Some((_, bytes)) => Response::ok("image/jpeg", bytes),
            None => Response::status(404),
        }
    });
    let path =
        |n: usize| if n % 4 == 1 { format!("/reserved/{n}.jpg") } else { format!("/img/{n}.jpg") };
    let html =
        std::fs::read_to_string(shared("fixtures/serp/bing/phrona_async_rust_programming.html"))
            .unwrap();
    let mut urls = std::collections::HashMap::new();
    let page = rewrite_murls(&html, &mut urls, |n| images.url(&path(n)));
    assert_eq!(urls.len(), 35);
    // The same page again after the first: no new URL ends the search.
    let engine = Server::start(move |target| {
        if target.starts_with("/bing/images/async") {
            Response::ok("text/html; charset=utf-8", page.clone())
        } else {
            Response::status(404)
        }
    });
    let ws = Workspace::new(&test_config(&engine, "[fetch]\nengines = [\"bing\"]\n"));

    let summary = ws.run(&["fetch", "brown bear", "--json"]).expect_code(0).json();
    // 18 even (noai), 9 reserved (1, 5, ..., 33), 8 plain (3, 7, ..., 31).
    assert_eq!(summary["failures"], json!({"opted-out": 27}), "{summary}");
    let requests = images.requests();
    assert!(requests.iter().all(|r| !r.starts_with("/reserved/")), "{requests:?}");
    assert_eq!(images.hits("/robots.txt"), 1);
    let store = pipeline::store::Store::open(&ws.store()).unwrap();
    let members = store.index.members("brown-bear").unwrap();
    assert!(!members.is_empty());
    for (_, member, _) in &members {
        let n: usize =
            member.url.rsplit('/').next().unwrap().trim_end_matches(".jpg").parse().unwrap();
        assert!(n % 4 == 3, "{} was opted out", member.url);
    }
    drop(store);
    let again = ws.run(&["fetch", "brown bear", "--json"]).expect_code(0).json();
    assert_eq!(again["downloaded"], 0, "nothing asked for again: {again}");
    assert_eq!(images.requests().len(), requests.len());
}
