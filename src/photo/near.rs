//! Near-duplicate search over 256-bit perceptual hashes without a scan: multi-index hashing
//! (Norouzi, Punjani and Fleet, CVPR 2012), exact. Used by fetch's dedup stage, `merge` and
//! the leak check.
//!
//! The hash is cut into `m` chunks. If two hashes differ in at most `d` bits, then some chunk
//! differs in at most `r = d / m` bits (pigeonhole: otherwise they differ in at least
//! `m (r + 1) > d`). So each chunk has a table from its value to the hashes holding it, and
//! a lookup visits, in each table, every value within `r` bits of the query's chunk, then
//! keeps the candidates within `d` bits by their full distance. The same answers as a scan,
//! for every `d`; where the index would visit more buckets than there are hashes (tiny sets,
//! or a threshold near the config's limit of 64) it scans instead.
//!
//! A table is an array of bucket heads (picked by the chunk's low bits, as many as keep at
//! most one hash a bucket on average; grown by doubling) chained through the ids, each link
//! with the id's chunk: 12 to 16 bytes a hash a table, beside the hashes' 32.

use super::check::PerceptualHash;

/// Chunks are at least this long, so that at 100 M hashes buckets stay nearly empty.
const MIN_CHUNK_BITS: u32 = 24;

/// Bucket heads of a table start at this many bits.
const MIN_BUCKET_BITS: u32 = 8;

/// Hashes, with the id (insertion order, from 0) of each, searchable within `max_distance`.
pub struct NearIndex {
    max_distance: u32,
    hashes: Vec<PerceptualHash>,
    /// Bits each chunk may differ by in a lookup.
    radius: u32,
    tables: Vec<Table>,
}

#[derive(Clone, Copy)]
struct Node {
    next: u32,
    chunk: u32,
}

/// One chunk's table.
struct Table {
    start: u32,
    len: u32,
    /// How many of the chunk's low bits pick the bucket.
    bits: u32,
    /// Per bucket, 1 + the id of its newest hash, or 0 when empty.
    heads: Vec<u32>,
    /// Per id: 1 + the id of the next hash in its bucket (or 0), and the id's chunk (its
    /// low 32 bits), read in the same cache line so that a hash too far in this chunk is
    /// passed over without loading it.
    nodes: Vec<Node>,
}

impl Table {
    fn new(start: u32, len: u32) -> Table {
        let bits = MIN_BUCKET_BITS.min(len);
        Table { start, len, bits, heads: vec![0; 1 << bits], nodes: Vec::new() }
    }

    fn chunk(&self, hash: &PerceptualHash) -> u64 {
        chunk(hash, self.start, self.len)
    }

    fn bucket(&self, chunk: u64) -> usize {
        (chunk & ((1u64 << self.bits) - 1)) as usize
    }

    fn insert(&mut self, id: usize, hash: &PerceptualHash) {
        let chunk = self.chunk(hash);
        let bucket = self.bucket(chunk);
        self.nodes.push(Node { next: self.heads[bucket], chunk: chunk as u32 });
        self.heads[bucket] = id as u32 + 1;
    }

    /// Doubles the buckets once they hold more hashes than there are buckets, by rebuilding
    /// from `hashes`.
    fn grow(&mut self, hashes: &[PerceptualHash]) {
        if self.bits == self.len || hashes.len() <= (1 << self.bits) {
            return;
        }
        self.bits += 1;
        self.heads = vec![0; 1 << self.bits];
        self.nodes.clear();
        for (id, hash) in hashes.iter().enumerate() {
            self.insert(id, hash);
        }
    }

    /// Appends to `links` (tagged with `table`) the heads of the buckets within `radius`
    /// bits of `chunk`'s.
    fn heads(&self, table: u32, chunk: u64, radius: u32, links: &mut Vec<(u32, u32)>) {
        let mut head = |bucket: usize| links.push((table, self.heads[bucket]));
        flips(self.bucket(chunk), self.bits, radius, 0, &mut head);
    }

    /// Buckets a lookup visits.
    fn probes(&self, radius: u32) -> u64 {
        (0..=radius.min(self.bits)).map(|k| binomial(self.bits, k)).sum()
    }
}

/// Calls `walk` with `bucket` and every value that differs from it in at most `radius` of
/// its `bits` low bits, each once (flipping bits from `from` up only).
fn flips(bucket: usize, bits: u32, radius: u32, from: u32, walk: &mut impl FnMut(usize)) {
    walk(bucket);
    if radius == 0 {
        return;
    }
    for bit in from..bits {
        flips(bucket ^ (1 << bit), bits, radius - 1, bit + 1, walk);
    }
}

fn binomial(n: u32, k: u32) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * u64::from(n - i) / u64::from(i + 1))
}

/// Bits `start .. start + len` (len <= 64) of the hash, bit `i` being bit `i % 64` of word
/// `i / 64`.
fn chunk(hash: &PerceptualHash, start: u32, len: u32) -> u64 {
    let (word, offset) = ((start / 64) as usize, start % 64);
    let mut value = hash.0[word] >> offset;
    if offset + len > 64 && word + 1 < 4 {
        value |= hash.0[word + 1] << (64 - offset);
    }
    if len == 64 { value } else { value & ((1u64 << len) - 1) }
}

/// The chunk count and radius for `max_distance`: the smallest radius whose chunk count
/// (`max_distance / (radius + 1) + 1`, at least 4 so that a chunk fits 64 bits) leaves
/// chunks of at least [`MIN_CHUNK_BITS`].
fn layout(max_distance: u32) -> (u32, u32) {
    (0..=max_distance)
        .map(|radius| ((max_distance / (radius + 1) + 1).max(4), radius))
        .find(|(chunks, _)| 256 / chunks >= MIN_CHUNK_BITS)
        .unwrap_or((4, max_distance))
}

impl NearIndex {
    pub fn new(max_distance: u32) -> NearIndex {
        let (chunks, radius) = layout(max_distance);
        let tables = (0..chunks)
            .map(|i| {
                let (start, end) = (i * 256 / chunks, (i + 1) * 256 / chunks);
                Table::new(start, end - start)
            })
            .collect();
        NearIndex { max_distance, hashes: Vec::new(), radius, tables }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Adds `hash` under the next id, which it returns.
    pub fn insert(&mut self, hash: PerceptualHash) -> usize {
        let id = self.hashes.len();
        self.hashes.push(hash);
        for table in &mut self.tables {
            table.grow(&self.hashes[..id]);
            table.insert(id, &hash);
        }
        id
    }

    /// Every id within `max_distance` bits of `hash`, with its distance, in id order.
    pub fn within(&self, hash: &PerceptualHash) -> Vec<(usize, u32)> {
        let mut found = Vec::new();
        let check = |id: usize| {
            let distance = self.hashes[id].distance(hash);
            if distance <= self.max_distance {
                found.push((id, distance));
            }
        };
        let probes: u64 = self.tables.iter().map(|t| t.probes(self.radius)).sum();
        if probes >= self.hashes.len() as u64 {
            (0..self.hashes.len()).for_each(check);
            return found;
        }
        // Every table's heads in one pass, then the chains a link at a time across all of
        // them: loads that wait on no other, so the memory system overlaps their misses (a
        // lookup is hundreds of cache misses; walked one chain after another it measured
        // half as fast). A link whose id's chunk is too far is passed over unloaded.
        let chunks: Vec<u64> = self.tables.iter().map(|t| t.chunk(hash)).collect();
        let mut links = Vec::with_capacity(probes as usize);
        for (k, table) in self.tables.iter().enumerate() {
            table.heads(k as u32, chunks[k], self.radius, &mut links);
        }
        let mut candidates = Vec::new();
        while !links.is_empty() {
            links.retain(|&(_, link)| link != 0);
            for (k, link) in &mut links {
                let id = *link as usize - 1;
                let node = self.tables[*k as usize].nodes[id];
                if (node.chunk ^ chunks[*k as usize] as u32).count_ones() <= self.radius {
                    candidates.push(id);
                }
                *link = node.next;
            }
        }
        candidates.into_iter().for_each(check);
        // A hash found through several chunks is listed once.
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The nearest id within `max_distance` bits and its distance; of equals, the first
    /// inserted (what a scan in insertion order keeps).
    pub fn nearest(&self, hash: &PerceptualHash) -> Option<(usize, u32)> {
        self.within(hash).into_iter().min_by_key(|&(id, distance)| (distance, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift, so that the property tests need no crate and repeat exactly.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn hash(&mut self) -> PerceptualHash {
            PerceptualHash([self.next(), self.next(), self.next(), self.next()])
        }

        /// `hash` with `bits` random bits flipped (some may repeat, so at most `bits`).
        fn near(&mut self, hash: &PerceptualHash, bits: u32) -> PerceptualHash {
            let mut near = *hash;
            for _ in 0..bits {
                let bit = self.next() % 256;
                near.0[(bit / 64) as usize] ^= 1 << (bit % 64);
            }
            near
        }
    }

    /// What the index replaces: every hash's distance, in insertion order.
    fn scan(hashes: &[PerceptualHash], query: &PerceptualHash, max: u32) -> Vec<(usize, u32)> {
        let distances = hashes.iter().map(|h| h.distance(query)).enumerate();
        distances.filter(|&(_, d)| d <= max).collect()
    }

    /// Random hashes in groups of near copies (each up to 40 bits from its group's first),
    /// queried by more near copies, at every threshold the config allows (1,600 hashes:
    /// through the tables up to 32 bits, past it by the scan).
    #[test]
    fn the_index_answers_as_the_scan_at_every_threshold() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        for max_distance in 0..=64 {
            let mut index = NearIndex::new(max_distance);
            let mut hashes = Vec::new();
            for _ in 0..400 {
                let base = random.hash();
                for _ in 0..4 {
                    let bits = (random.next() % 41) as u32;
                    let hash = random.near(&base, bits);
                    assert_eq!(index.insert(hash), hashes.len());
                    hashes.push(hash);
                }
            }
            for _ in 0..300 {
                let of = hashes[(random.next() % hashes.len() as u64) as usize];
                let bits = (random.next() % u64::from(max_distance + 8)) as u32;
                let query = random.near(&of, bits);
                let want = scan(&hashes, &query, max_distance);
                assert_eq!(index.within(&query), want, "distance {max_distance}");
                let nearest = want.iter().copied().min_by_key(|&(id, d)| (d, id));
                assert_eq!(index.nearest(&query), nearest, "distance {max_distance}");
            }
        }
    }

    #[test]
    fn a_lookup_visits_buckets_not_every_hash() {
        let index = NearIndex::new(16);
        assert_eq!((index.tables.len(), index.radius), (9, 1), "9 chunks of 28-29 bits");
        assert!(index.tables.iter().all(|t| (28..=29).contains(&t.len)));
        assert_eq!(layout(8), (9, 0), "below 10 bits, exact chunks");
        assert_eq!(chunk(&PerceptualHash([u64::MAX << 60, 0b101, 0, 0]), 60, 8), 0b0101_1111);
    }
}
