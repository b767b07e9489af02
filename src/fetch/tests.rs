//! Graph-level tests (vector style): no unbounded queue hides between stages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CHANNEL_CAPACITY, Candidate, Context, Item, Location, State, Stats, download};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_holds_back_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.network.concurrency = 4;
    let http = Http::new(&config.network).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let stop = CancellationToken::new();
    let (store, http) = (Arc::new(store), Arc::new(http));
    let ctx = Arc::new(Context {
        config,
        store,
        http,
        hosts: Default::default(),
        stats: Stats::default(),
        stop,
    });

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
