//! A real HTTP/1.1 server on 127.0.0.1 for end-to-end tests: raw tokio sockets, so tests
//! control every byte (statuses, headers, delays), count connections and log requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// The Content-Length sent, then the connection is closed after the body: `None` for
    /// the body's true length (and keep-alive), `Some(None)` for no header at all,
    /// `Some(Some(n))` for a claim of `n` bytes.
    pub length: Option<Option<usize>>,
    /// Send the body this many bytes at a time, this long apart.
    pub drip: Option<(usize, Duration)>,
    /// Reset the connection (TCP RST) instead of answering.
    pub reset: bool,
}

impl Response {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
            length: None,
            drip: None,
            reset: false,
        }
    }

    pub fn status(status: u16) -> Response {
        Response::ok("text/plain", format!("status {status}")).with_status(status)
    }

    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Response {
        self.delay = delay;
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Response {
        Response::status(302).with_header("Location", location)
    }

    pub fn reset() -> Response {
        Response { reset: true, ..Response::status(200) }
    }
}

impl Server {
    /// A server on another loopback address (127.0.0.2 and the like: Linux routes all of
    /// 127.0.0.0/8 to loopback).
    pub fn start_on(
        ip: &str,
        handler: impl Fn(&str) -> Response + Send + Sync + 'static,
    ) -> Server {
        Server::bind(&format!("{ip}:0"), handler)
    }
}

type Handler = dyn Fn(&str) -> Response + Send + Sync;

/// A running server; it stops when the test process ends.
pub struct Server {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server whose `handler` maps a request target (path and query) to a response.
    pub fn start(handler: impl Fn(&str) -> Response + Send + Sync + 'static) -> Server {
        Server::bind("127.0.0.1:0", handler)
    }

    fn bind(addr: &str, handler: impl Fn(&str) -> Response + Send + Sync + 'static) -> Server {
        let handler: Arc<Handler> = Arc::new(handler);
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let std_listener = std::net::TcpListener::bind(addr).expect("bind loopback");
        std_listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = std_listener.local_addr().expect("local addr");
        let (conns, reqs) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                loop {
                    let Ok((socket, _)) = listener.accept().await else { continue };
                    conns.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(socket, handler.clone(), reqs.clone()));
                }
            });
        });
        Server { addr, connections, requests }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Request targets received so far, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// How many requests had a target starting with `prefix`.
    pub fn hits(&self, prefix: &str) -> usize {
        self.requests().iter().filter(|r| r.starts_with(prefix)).count()
    }
}

async fn serve(socket: tokio::net::TcpStream, handler: Arc<Handler>, log: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        log.lock().unwrap().push(target.clone());
        let response = handler(&target);
        tokio::time::sleep(response.delay).await;
        if response.reset {
            let _ = write.as_ref().set_zero_linger();
            // Dropping the write half would send a FIN first: close without it.
            write.forget();
            return;
        }
        let mut head = format!("HTTP/1.1 {} X\r\n", response.status);
        match response.length {
            None => head.push_str(&format!("Content-Length: {}\r\n", response.body.len())),
            Some(Some(claim)) => head.push_str(&format!("Content-Length: {claim}\r\n")),
            Some(None) => head.push_str("Connection: close\r\n"),
        }
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let (piece, pause) = response.drip.unwrap_or((response.body.len().max(1), Duration::ZERO));
        for chunk in response.body.chunks(piece) {
            if write.write_all(chunk).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
        if response.length.is_some() {
            let _ = write.shutdown().await;
            return;
        }
    }
}
