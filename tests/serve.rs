//! `pipeline serve` (issue 23), a real server on 127.0.0.1 with a real run: the page driven
//! in headless Chromium, the API answering hostile clients with a 4xx and serving on, a
//! load of concurrent requests with none lost, and a graceful stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{self, Workspace, photos};

const PIX2PIX: &str = "[network]\nmax_bytes = 3000000\n\n[images]\nmax_pixels = 4000000\n\n[build]\nsize = 72\ntest_fraction = 0.2\n\n[train]\nngf = 8\nndf = 8\ncrop = 64\nbatch_size = 4\nepochs = 1\nepochs_decay = 0\ncolor = \"rgb\"\n";

/// A store for tiny pretrained runs (with [`support::tiny_pretrained`]).
const PRETRAINED: &str =
    "[build]\nsize = 72\ntest_fraction = 0.2\n\n[train]\nrecipe = \"pretrained\"\n\n";

/// A workspace with run `r` trained, and `pipeline serve` on it.
struct Served {
    ws: Workspace,
    server: Child,
    addr: String,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let ws = support::built_bears(PIX2PIX, 8);
        ws.run(&["train", "bears", "--run", "r", "--device", "cpu"]).expect_code(0);
        Served::on(ws, extra)
    }

    fn on(ws: Workspace, extra: &[&str]) -> Served {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0", "--device", "cpu"];
        args.extend(extra);
        let mut server = ws.command(&args).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = server.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Served { ws, server, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /v1/colorize` with `body`: the status, the headers and the body.
    fn colorize(&self, body: Vec<u8>, query: &str) -> Answer {
        request(&self.addr, "POST", &format!("/v1/colorize{query}"), &body)
    }

    fn healthy(&self) -> bool {
        request(&self.addr, "GET", "/healthz", &[]).status == 200
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// An HTTP answer.
struct Answer {
    status: u16,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection, read to its end (a plain client over a
/// socket: the server is what is tested). As curl does for large bodies, the body waits
/// for the server's `100 Continue`: a server that answers first (413) is not sent it, and
/// no unread upload makes its socket reset the answer away.
fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    if !body.is_empty() {
        let interim = read_head(&mut stream, &mut raw);
        if interim.starts_with("HTTP/1.1 100") {
            raw.clear();
            stream.write_all(body).unwrap();
        }
    }
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = raw[split + 4..].to_vec();
    Answer { status, headers, body }
}

/// Reads into `raw` until a whole response head has come; returns its status line.
fn read_head(stream: &mut TcpStream, raw: &mut Vec<u8>) -> String {
    let mut chunk = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(raw).lines().next().unwrap_or_default().to_owned()
}

/// The error code of a JSON error body.
fn code(body: &[u8]) -> String {
    let json: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    assert!(json["error"]["message"].is_string(), "{json}");
    json["error"]["code"].as_str().unwrap().to_owned()
}

/// A real photo, as its JPEG file, and its size.
fn photo_bytes() -> (Vec<u8>, (u32, u32)) {
    let path = &photos("brown_bear")[0];
    let bytes = std::fs::read(path).unwrap();
    let size = image::load_from_memory(&bytes).unwrap().to_rgb8().dimensions();
    (bytes, size)
}

/// The same photo as a PNG: decoded alike by `serve` and `colorize` (JPEG decoders may
/// differ by a level here and there: libjpeg-turbo's in one, the image crate's in the
/// other).
fn photo_png() -> Vec<u8> {
    let (jpeg, _) = photo_bytes();
    let mut png = std::io::Cursor::new(Vec::new());
    image::load_from_memory(&jpeg).unwrap().write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

/// Mean |R - G| + |G - B| over the image: 0 for gray.
fn chroma(image: &image::RgbImage) -> f64 {
    let sum: u64 = image
        .pixels()
        .map(|p| u64::from(p[0].abs_diff(p[1])) + u64::from(p[1].abs_diff(p[2])))
        .sum();
    sum as f64 / f64::from(image.width() * image.height())
}

#[test]
fn the_api_colorizes_a_photo_as_colorize_does() {
    let served = Served::start(&[]);
    let (bytes, size) = (photo_png(), photo_bytes().1);
    let answer = served.colorize(bytes.clone(), "");
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), "image/png");
    let served_image = image::load_from_memory(&answer.body).unwrap().to_rgb8();
    assert_eq!(served_image.dimensions(), size);
    assert!(chroma(&served_image) > 1.0, "a colour image");

    // The same pixels as `pipeline colorize` of the same file.
    let photo = served.ws.path("photo.png");
    std::fs::write(&photo, &bytes).unwrap();
    let args = ["colorize", "--run", "r", "--out", "cli", "--device", "cpu", "photo.png", "--json"];
    let line = served.ws.run(&args).expect_code(0).json();
    let written = line["written"].as_array().unwrap();
    assert!(
        written.len() == 1 && written[0].as_str().unwrap().ends_with("cli/photo.png"),
        "{line}"
    );
    let cli = image::open(served.ws.path("cli/photo.png")).unwrap().to_rgb8();
    assert!(cli == served_image, "serve and colorize differ");

    let jpeg = served.colorize(photo_bytes().0, "?run=r&format=jpeg");
    assert_eq!((jpeg.status, jpeg.header("content-type")), (200, "image/jpeg"));
    assert_eq!(image::load_from_memory(&jpeg.body).unwrap().width(), size.0);
    let unknown = served.colorize(bytes.clone(), "?run=nope");
    assert_eq!((unknown.status, code(&unknown.body).as_str()), (404, "unknown-run"));
    let format = served.colorize(bytes, "?format=tiff");
    assert_eq!((format.status, code(&format.body).as_str()), (400, "unknown-format"));
    let vivid = served.colorize(photo_bytes().0, "?vividness=0.5");
    assert_eq!((vivid.status, code(&vivid.body).as_str()), (400, "bad-vividness"));
    let query = served.colorize(photo_bytes().0, "?run=r&run=r");
    assert_eq!((query.status, code(&query.body).as_str()), (400, "bad-query"));
    let get = request(&served.addr, "GET", "/v1/colorize", &[]);
    assert_eq!((get.status, code(&get.body).as_str()), (405, "method-not-allowed"));
    let nowhere = request(&served.addr, "GET", "/v2/anything", &[]);
    assert_eq!((nowhere.status, code(&nowhere.body).as_str()), (404, "not-found"));
    let runs: Value =
        serde_json::from_slice(&request(&served.addr, "GET", "/v1/runs", &[]).body).unwrap();
    assert_eq!(runs[0]["name"], "r");
    assert_eq!(runs[0]["dataset"], "bears");
}

#[test]
fn hostile_clients_get_a_4xx_and_the_server_serves_on() {
    let served = Served::start(&["--timeout", "3"]);
    let (photo, _) = photo_bytes();
    let png_bomb = {
        // A PNG claiming 30000 x 30000 pixels (900 MB decoded) in a few hundred bytes: its
        // header, then the first of its compressed rows.
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, 30_000, 30_000);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        let rows = [0x78, 0x9c, 0x63, 0x60, 0x18, 0x05, 0x00, 0x00];
        writer.write_chunk(png::chunk::IDAT, &rows).unwrap();
        drop(writer);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not an image", b"<html><body>hello</body></html>".to_vec(), 415, "html"),
        ("random bytes", vec![7u8; 5000], 415, "not-image"),
        ("empty", Vec::new(), 415, "empty"),
        ("truncated JPEG", photo[..photo.len() / 2].to_vec(), 422, "truncated"),
        ("decompression bomb", png_bomb, 413, "too-many-pixels"),
        ("huge body", vec![0xFFu8; 3_500_000], 413, "too-large"),
    ];
    for (what, body, status, expected) in cases {
        let started = Instant::now();
        let answer = served.colorize(body, "");
        assert_eq!((answer.status, code(&answer.body).as_str()), (status, expected), "{what}");
        assert!(started.elapsed() < Duration::from_secs(3), "{what} took {:?}", started.elapsed());
        assert_eq!(served.colorize(photo.clone(), "").status, 200, "a good photo after {what}");
    }

    // A body that never finishes: 408 when the request's time is up.
    let mut slow = TcpStream::connect(&served.addr).unwrap();
    let head = "POST /v1/colorize HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    slow.write_all(head.as_bytes()).unwrap();
    slow.write_all(&photo[..1000]).unwrap();
    let mut answer = String::new();
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");

    // Headers that never finish: the connection is closed after the header timeout, and
    // meanwhile others are served.
    let mut stalled = TcpStream::connect(&served.addr).unwrap();
    stalled.write_all(b"POST /v1/colorize HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    assert!(served.healthy());
    assert_eq!(served.colorize(photo.clone(), "").status, 200);
    stalled.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    let closed = stalled.read_to_end(&mut rest).is_ok();
    assert!(closed, "the stalled connection is closed");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(8) && waited < Duration::from_secs(25), "{waited:?}");
    assert!(served.healthy());
}

#[test]
fn concurrent_requests_past_the_queue_get_503_and_none_is_lost() {
    let served = Served::start(&["--queue", "3"]);
    let (photo, size) = photo_bytes();
    let clients = 16;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, photo) = (served.addr.clone(), photo.clone());
            std::thread::spawn(move || {
                let mut refused = 0;
                loop {
                    let answer = request(&addr, "POST", "/v1/colorize", &photo);
                    if answer.status == 503 {
                        assert_eq!(code(&answer.body), "busy");
                        let wait: u64 = answer.header("retry-after").parse().unwrap();
                        refused += 1;
                        std::thread::sleep(Duration::from_millis(wait * 200));
                        continue;
                    }
                    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
                    let image = image::load_from_memory(&answer.body).unwrap();
                    return (image.width(), image.height(), refused);
                }
            })
        })
        .collect();
    let outcome: Vec<(u32, u32, usize)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(outcome.len(), clients);
    assert!(outcome.iter().all(|&(w, h, _)| (w, h) == size), "{outcome:?}");
    let refused: usize = outcome.iter().map(|o| o.2).sum();
    assert!(refused > 0, "16 at once past a queue of 3 refuse some: {outcome:?}");
}

#[test]
fn sigterm_answers_the_requests_in_flight_then_exits() {
    let mut served = Served::start(&[]);
    let (photo, _) = photo_bytes();
    let addr = served.addr.clone();
    let in_flight =
        std::thread::spawn(move || request(&addr, "POST", "/v1/colorize", &photo).status);
    std::thread::sleep(Duration::from_millis(150));
    let pid = served.server.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(in_flight.join().unwrap(), 200, "the request in flight is answered");
    let status = served.server.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(TcpStream::connect(&served.addr).is_err(), "no longer listening");
}

#[test]
fn the_page_colorizes_a_picked_photo_in_chromium() {
    let served = Served::start(&[]);
    let photo = &photos("brown_bear")[0];
    let size = image::open(photo).unwrap().to_rgb8().dimensions();
    let browser = support::browser::Browser::start();
    browser.goto(&served.url("/"));
    browser.wait_for(
        "return document.getElementById('runs').textContent.includes('r (pix2pix');",
        Duration::from_secs(20),
    );
    browser.upload("#file", &photo.canonicalize().unwrap());
    browser.wait_for(
        "return document.getElementById('status').dataset.done === '1';",
        Duration::from_secs(60),
    );
    let seen = browser.eval(
        "const img = document.querySelector('img.result');
         const canvas = document.createElement('canvas');
         canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
         const context = canvas.getContext('2d');
         context.drawImage(img, 0, 0);
         const d = context.getImageData(0, 0, canvas.width, canvas.height).data;
         let chroma = 0;
         for (let i = 0; i < d.length; i += 4) {
           chroma += Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]);
         }
         const link = document.querySelector('figcaption a');
         return { width: img.naturalWidth, height: img.naturalHeight, run: img.dataset.run,
                  chroma: chroma / (d.length / 4), download: link ? link.download : null,
                  slider: !document.getElementById('slider').hidden };",
    );
    assert_eq!(seen["width"], size.0, "{seen}");
    assert_eq!(seen["height"], size.1, "{seen}");
    assert_eq!(seen["run"], "r");
    assert!(seen["chroma"].as_f64().unwrap() > 1.0, "colour comes back: {seen}");
    assert!(seen["download"].as_str().unwrap().ends_with("-r.png"), "{seen}");
    assert_eq!(seen["slider"], true);
}

/// A pretrained run colorizes the photos waiting together as one batch (pix2pix does not:
/// its dropout is drawn once a batch). Concurrent photos of two sizes each come back at
/// their own size and as `pipeline colorize` colorizes them alone, give or take one level
/// in a few pixels (the batch's sums run in another order).
#[test]
fn a_pretrained_run_batches_waiting_photos_of_one_size_and_answers_each_alike() {
    let config = format!("{PRETRAINED}{}", support::tiny_pretrained(""));
    let ws = support::built_bears(&config, 8);
    ws.run(&["train", "bears", "--run", "r", "--device", "cpu"]).expect_code(0);
    let photo = image::load_from_memory(&photo_png()).unwrap();
    let small = photo.resize_exact(200, 150, image::imageops::FilterType::CatmullRom);
    let mut files = Vec::new();
    for (name, image) in [("big.png", &photo), ("small.png", &small)] {
        image.save(ws.path(name)).unwrap();
        files.push((name, std::fs::read(ws.path(name)).unwrap()));
    }
    let args =
        ["colorize", "--run", "r", "--out", "cli", "--device", "cpu", "big.png", "small.png"];
    ws.run(&args).expect_code(0);
    let served = Served::on(ws, &["--queue", "16"]);
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let (name, body) = files[i % 2].clone();
            let addr = served.addr.clone();
            std::thread::spawn(move || (name, request(&addr, "POST", "/v1/colorize", &body)))
        })
        .collect();
    for (name, answer) in threads.into_iter().map(|t| t.join().unwrap()) {
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
        let got = image::load_from_memory(&answer.body).unwrap().to_rgb8();
        let want = image::open(served.ws.path("cli").join(name)).unwrap().to_rgb8();
        assert_eq!(got.dimensions(), want.dimensions(), "{name}");
        let diffs: Vec<u8> =
            got.as_raw().iter().zip(want.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
        let off = diffs.iter().filter(|d| **d > 0).count();
        assert!(diffs.iter().all(|d| *d <= 1), "{name}: a pixel off by more than one level");
        assert!(off * 1000 <= diffs.len(), "{name}: {off} of {} values off by one", diffs.len());
    }
}

/// Issue 26: a run with a class head decodes at `?vividness=T` the colours `colorize
/// --vividness T` writes, at its own temperature otherwise (shown by `/v1/runs`); a
/// temperature out of (0, 1] is a 400.
#[test]
fn a_class_head_run_colorizes_at_the_temperature_asked_for() {
    let config = format!("{PRETRAINED}{}", support::tiny_pretrained("head = \"classes\"\n"));
    let ws = support::built_bears(&config, 8);
    ws.run(&["train", "bears", "--run", "c", "--device", "cpu"]).expect_code(0);
    std::fs::write(ws.path("photo.png"), photo_png()).unwrap();
    for (out, t) in [("own", None), ("bold", Some("0.1"))] {
        let mut args = vec!["colorize", "--run", "c", "--out", out, "--device", "cpu", "photo.png"];
        args.extend(t.iter().flat_map(|t| ["--vividness", *t]));
        ws.run(&args).expect_code(0);
    }
    let served = Served::on(ws, &[]);
    let runs: Value =
        serde_json::from_slice(&request(&served.addr, "GET", "/v1/runs", &[]).body).unwrap();
    assert_eq!(runs[0]["vividness"], 0.38, "{runs}");
    let file = |out: &str| image::open(served.ws.path(out).join("photo.png")).unwrap().to_rgb8();
    for (query, out) in [("", "own"), ("?vividness=0.1", "bold")] {
        let answer = served.colorize(photo_png(), query);
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
        let got = image::load_from_memory(&answer.body).unwrap().to_rgb8();
        assert!(got == file(out), "{query:?} differs from colorize's {out}");
    }
    assert!(file("own") != file("bold"), "another temperature, other colours");
    let hot = served.colorize(photo_png(), "?vividness=1.5");
    assert_eq!((hot.status, code(&hot.body).as_str()), (400, "bad-vividness"));
}
