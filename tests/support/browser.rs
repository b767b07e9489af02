//! A real browser for the report's and `serve`'s tests: headless Chromium driven through
//! chromedriver (WebDriver), both Debian's, started on 127.0.0.1 by the test. Chromium is
//! kept off the network: every host name resolves to nothing and every request outside
//! `file://` and loopback goes to a closed loopback proxy.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
}

const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,1000",
    "--no-first-run",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9",
];

impl Browser {
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/deps installs it)");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": CHROMIUM_ARGS },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = runtime
            .block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Browser { runtime, client: Some(client), driver }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("open session")
    }

    /// Opens the file at `path` and waits until it has loaded (images included).
    pub fn open(&self, path: &Path) {
        let url = url::Url::from_file_path(path).unwrap();
        self.runtime.block_on(self.client().goto(url.as_str())).expect("page opens");
    }

    /// Opens `url` (a server the test started on 127.0.0.1).
    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).expect("page opens");
    }

    /// Gives the file input matched by `css` the file at `path`, as a person picking it.
    pub fn upload(&self, css: &str, path: &Path) {
        self.runtime
            .block_on(async {
                let input = self.client().find(fantoccini::Locator::Css(css)).await?;
                input.send_keys(path.to_str().unwrap()).await
            })
            .expect("file chosen");
    }

    /// Waits up to `limit` for the JavaScript body `script` to return true.
    pub fn wait_for(&self, script: &str, limit: Duration) {
        let started = Instant::now();
        while self.eval(script) != Value::Bool(true) {
            assert!(started.elapsed() < limit, "still not true after {limit:?}: {script}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of the JavaScript function body `script` (`return ...;`) on the page.
    pub fn eval(&self, script: &str) -> Value {
        self.runtime.block_on(self.client().execute(script, vec![])).expect("script runs")
    }

    /// Writes what the window shows to `to`, a JPEG.
    pub fn screenshot(&self, to: &Path) {
        let png = self.runtime.block_on(self.client().screenshot()).expect("screenshot");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let shot = image::load_from_memory(&png).expect("a PNG").to_rgb8();
        let mut file = std::io::BufWriter::new(std::fs::File::create(to).unwrap());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 85)
            .encode_image(&shot)
            .unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
