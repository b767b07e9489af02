//! Near-duplicate lookups per second: `photo::near`'s index against the scan it replaced, on
//! N synthetic 256-bit hashes whose bits follow real photos' (each bit set as often as in
//! the perceptual hashes of the photos under the folders given), with planted groups of
//! near copies. Run by bench/near.sh.
//! Usage: near N QUERIES DISTANCE FOLDER...

use std::time::Instant;

#[path = "common/synthetic.rs"]
mod synthetic;

use pipeline::photo::check::PerceptualHash;
use pipeline::photo::near::NearIndex;
use synthetic::{Xorshift, bit_frequencies, real_hashes, synthetic};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (n, queries, distance): (usize, usize, u32) =
        (args[1].parse().unwrap(), args[2].parse().unwrap(), args[3].parse().unwrap());
    let real = real_hashes(&args[4..]);
    let pairs: Vec<u32> = real.windows(2).map(|w| w[0].distance(&w[1])).collect();
    let mean = pairs.iter().map(|&d| f64::from(d)).sum::<f64>() / pairs.len() as f64;
    println!(
        "{} real hashes: mean distance between neighbours in the listing {mean:.1} bits",
        real.len()
    );
    let mut random = Xorshift(0x2545_F491_4F6C_DD1D);
    let started = Instant::now();
    let hashes = synthetic(n, &bit_frequencies(&real), &mut random);
    let mut next = move || random.next();
    let synthetic: Vec<u32> =
        hashes.windows(2).take(100_000).map(|w| w[0].distance(&w[1])).collect();
    let mean = synthetic.iter().map(|&d| f64::from(d)).sum::<f64>() / synthetic.len() as f64;
    println!(
        "{n} synthetic hashes in {:.1} s: mean distance between neighbours {mean:.1} bits",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut index = NearIndex::new(distance);
    for hash in &hashes {
        index.insert(*hash);
    }
    println!(
        "index of {n} at distance {distance}: built in {:.1} s, peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );

    let picks: Vec<PerceptualHash> = (0..queries)
        .map(|_| {
            let mut q = hashes[(next() % n as u64) as usize];
            let bit = next() % 256;
            q.0[(bit / 64) as usize] ^= 1 << (bit % 64);
            q
        })
        .collect();
    let started = Instant::now();
    let found: usize = picks.iter().map(|q| usize::from(index.nearest(q).is_some())).sum();
    let indexed = started.elapsed().as_secs_f64() / queries as f64;
    // Today's scan as fetch's dedup stage held it: (hash, content key) pairs.
    let seen: Vec<(PerceptualHash, String)> =
        hashes.iter().enumerate().map(|(i, h)| (*h, format!("{i:064x}"))).collect();
    let scanned_queries = queries.min(50);
    let started = Instant::now();
    let mut scan_found = 0;
    for q in &picks[..scanned_queries] {
        let nearest = seen
            .iter()
            .enumerate()
            .map(|(i, (h, _))| (h.distance(q), i))
            .filter(|(d, _)| *d <= distance)
            .min();
        scan_found += usize::from(nearest.is_some());
        assert_eq!(nearest.map(|(d, i)| (i, d)), index.nearest(q), "the index answers as the scan");
    }
    let scanned = started.elapsed().as_secs_f64() / scanned_queries as f64;
    println!(
        "index: {:.0} lookups/s ({found} of {queries} found); scan: {:.1} lookups/s ({scan_found} of {scanned_queries}); {:.0}x",
        1.0 / indexed,
        1.0 / scanned,
        scanned / indexed
    );
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}
