//! Synthetic shards for `merge` at scale: N members' manifests, as N URLs imported in SHARDS
//! shards would leave them in a bucket (a plan, each shard's manifest and its done marker),
//! with perceptual hashes drawn as real photos' (`common/synthetic.rs`: one in a hundred
//! with a planted near copy) and one in a thousand an exact copy of the member before it.
//! Run by bench/merge.sh. Usage: merge_sim BUCKET_URL DATASET N SHARDS FOLDER...

#[path = "common/synthetic.rs"]
mod synthetic;

use bytes::Bytes;
use pipeline::bucket::Bucket;
use pipeline::bucket::plan::{Part, Plan};
use pipeline::store::{ImageRecord, Member};
use synthetic::{Xorshift, bit_frequencies, real_hashes, synthetic};

const ATTEMPT: &str = "5e1f0c0ffee0d00d";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, dataset) = (&args[1], &args[2]);
    let (n, shards): (usize, usize) = (args[3].parse().unwrap(), args[4].parse().unwrap());
    let p = bit_frequencies(&real_hashes(&args[5..]));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bucket = Bucket::open(url).await.unwrap();
        let mut random = Xorshift(0x9E37_79B9_7F4A_7C15);
        let per_shard = n.div_ceil(shards);
        let mut parts = Vec::new();
        for shard in 0..shards {
            let first = shard * per_shard;
            let count = per_shard.min(n - first.min(n));
            parts.push(Part { first_line: first + 1, urls: count });
            let hashes = synthetic(count, &p, &mut random);
            let mut manifest = Vec::new();
            let Some(mut previous) = hashes.first().copied() else { continue };
            for (k, mut phash) in hashes.into_iter().enumerate() {
                let rank = (first + k) as u64;
                // One in a thousand is an exact copy of the member before it: its bytes,
                // so its perceptual hash too.
                let copy = rank % 1000 == 999 && k > 0;
                let content = if copy { rank - 1 } else { rank };
                if copy {
                    phash = previous;
                }
                previous = phash;
                let line = serde_json::json!({
                    "kind": "image",
                    "hash": blake3::hash(&content.to_le_bytes()).to_hex().to_string(),
                    "member": member(dataset, rank),
                    "image": ImageRecord { ext: "jpg".into(), width: 640, height: 480, bytes: 150_000, phash, added_at: 0 },
                });
                serde_json::to_writer(&mut manifest, &line).unwrap();
                manifest.push(b'\n');
            }
            let key = format!("shards/{dataset}/manifest-{shard:05}-{ATTEMPT}.jsonl");
            bucket.put(&key, Bytes::from(manifest)).await.unwrap();
            let done = serde_json::json!({
                "shard": shard, "attempt": ATTEMPT, "urls": count, "images": count,
                "duplicates": 0, "failures": {}, "downloaded": count, "bytes": 0,
                "blobs_created": count, "seconds": 0.0, "upload_seconds": 0.0,
                "host": "merge_sim", "finished_at": 0,
            });
            let key = format!("shards/{dataset}/_done/{shard:05}.json");
            bucket.put(&key, Bytes::from(serde_json::to_vec(&done).unwrap())).await.unwrap();
        }
        let plan = Plan { dataset: dataset.clone(), source: "merge_sim".into(), urls: n, parts };
        let json = serde_json::to_vec_pretty(&plan).unwrap();
        bucket.put(&format!("plan/{dataset}/plan.json"), Bytes::from(json)).await.unwrap();
    });
    println!("{n} synthetic members in {shards} shards of {dataset} in {url}");
}

fn member(dataset: &str, rank: u64) -> Member {
    Member {
        rank,
        source: "urls".into(),
        query: format!("{dataset}.txt"),
        url: format!("https://images.example/{:02}/{rank:09}.jpg", rank % 97),
        page_url: None,
        title: None,
        added_at: 0,
        credit: None,
    }
}
