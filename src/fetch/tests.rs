//! Graph-level tests (vector style): no unbounded queue hides between stages, and a stage
//! that works on its own threads keeps the source's order and ends with its input.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    CHANNEL_CAPACITY, Candidate, Context, Item, Location, State, Stats, download, validate,
};
use crate::config::Config;
use crate::net::Http;
use crate::store::Store;

fn item(rank: u64) -> Item {
    let candidate = Candidate {
        rank,
        location: Location::Remote(format!("https://example.com/{rank}.jpg")),
        source: "test".into(),
        query: "test".into(),
        page_url: None,
        title: None,
        credit: None,
    };
    Item { candidate, state: State::Known }
}

/// A run's context over a store in `dir`.
fn context(dir: &std::path::Path, config: Config) -> Arc<Context> {
    let http = Arc::new(Http::new(&config.network).unwrap());
    let store = Arc::new(Store::open(dir).unwrap());
    let (hosts, stats, stop) = (Default::default(), Stats::default(), CancellationToken::new());
    Arc::new(Context { config, store, http, hosts, stats, stop })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_holds_back_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.network.concurrency = 4;
    let ctx = context(dir.path(), config);

    let (in_tx, in_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (out_tx, _stalled_out_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let producer = tokio::spawn(async move {
        for rank in 0..1000 {
            if in_tx.send(item(rank)).await.is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::spawn(download::run(ctx, "d".into(), in_rx, out_tx));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let produced = produced.load(Ordering::SeqCst);
    // Both channels full, the stage's in-flight set full, one item in hand.
    let bound = 2 * CHANNEL_CAPACITY + 4 + 1;
    assert!(produced <= bound, "{produced} items left the producer, bound {bound}");
    assert!(produced >= 2 * CHANNEL_CAPACITY, "the stage moved items: {produced}");
    assert!(!producer.is_finished(), "the producer must be blocked, not done");
}

/// Real photos of ../shared/data/brown_bear, largest first, so that the first body is
/// still being checked while the ones after it are done.
fn brown_bears() -> Vec<Vec<u8>> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/brown_bear");
    let mut photos: Vec<Vec<u8>> = walkdir::WalkDir::new(folder)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.path().extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
        .take(24)
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    photos.sort_by_key(|p| std::cmp::Reverse(p.len()));
    photos
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_keeps_the_source_order_and_ends_with_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), Config::default());
    let photos = brown_bears();
    assert!(photos.len() >= 20, "../shared/data/brown_bear has its photos");
    let truncated = photos[3][..photos[3].len() / 2].to_vec();
    let mut bodies: Vec<Option<Vec<u8>>> = photos.iter().cloned().map(Some).collect();
    bodies.insert(5, Some(truncated));
    bodies.insert(9, Some(b"<!doctype html><html></html>".to_vec()));
    bodies.insert(12, None); // an item with nothing to check passes through
    let (in_tx, in_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (out_tx, mut out_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let stage = tokio::spawn(validate::run(ctx, in_rx, out_tx));
    let sent = bodies.clone();
    tokio::spawn(async move {
        for (rank, body) in sent.into_iter().enumerate() {
            let mut item = item(rank as u64);
            if let Some(body) = body {
                item.state = State::Downloaded(body.into());
            }
            in_tx.send(item).await.unwrap();
        }
    });
    let mut out = Vec::new();
    while let Some(item) = out_rx.recv().await {
        out.push(item);
    }
    tokio::time::timeout(Duration::from_secs(30), stage)
        .await
        .expect("the stage ends once its input does")
        .unwrap()
        .unwrap();

    let ranks: Vec<u64> = out.iter().map(|i| i.candidate.rank).collect();
    assert_eq!(ranks, (0..bodies.len() as u64).collect::<Vec<_>>(), "source order");
    for (item, body) in out.iter().zip(&bodies) {
        let url = item.candidate.location.url();
        match (&item.state, body) {
            (State::Known, None) => {}
            (State::Checked { hash, body: kept, .. }, Some(body)) => {
                assert_eq!(*hash, blake3::hash(body).to_hex().to_string(), "{url}");
                assert_eq!(kept.as_ref(), body.as_slice(), "{url}");
            }
            (State::Failed { error, at }, Some(_)) => {
                assert_eq!(at, url);
                let rank = item.candidate.rank;
                let kind = error.kind();
                assert!(
                    matches!((rank, kind.as_str()), (5, "truncated") | (9, "html")),
                    "{url}: {kind}"
                );
            }
            (state, _) => panic!("{url}: {state:?}"),
        }
    }
    let failed = out.iter().filter(|i| matches!(i.state, State::Failed { .. })).count();
    assert_eq!(failed, 2, "the truncated photo and the page");
}
