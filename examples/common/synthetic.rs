//! Synthetic perceptual hashes for the benchmarks: bits set as often as in real photos'
//! hashes, one in a hundred followed by a planted near copy.

use pipeline::photo::check::{PerceptualHash, Validator};

pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// How often each bit is set in `real`.
pub fn bit_frequencies(real: &[PerceptualHash]) -> Vec<f64> {
    (0..256)
        .map(|bit| {
            let ones = real.iter().filter(|h| (h.0[bit / 64] >> (bit % 64)) & 1 == 1).count();
            ones as f64 / real.len() as f64
        })
        .collect()
}

/// `n` hashes, bit `i` set with probability `p[i]`; one in a hundred followed by a near copy
/// (up to 12 bits away).
pub fn synthetic(n: usize, p: &[f64], random: &mut Xorshift) -> Vec<PerceptualHash> {
    let mut hashes = Vec::with_capacity(n);
    while hashes.len() < n {
        let mut words = [0u64; 4];
        for (bit, p) in p.iter().enumerate() {
            if (random.next() as f64 / u64::MAX as f64) < *p {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
        hashes.push(PerceptualHash(words));
        if random.next().is_multiple_of(100) && hashes.len() < n {
            let mut copy = PerceptualHash(words);
            for _ in 0..random.next() % 13 {
                let bit = random.next() % 256;
                copy.0[(bit / 64) as usize] ^= 1 << (bit % 64);
            }
            hashes.push(copy);
        }
    }
    hashes
}

/// The perceptual hashes of the images under `folders`.
pub fn real_hashes(folders: &[String]) -> Vec<PerceptualHash> {
    let validator = Validator::new(Default::default());
    let mut files = Vec::new();
    let mut stack: Vec<std::path::PathBuf> = folders.iter().map(Into::into).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    files
        .iter()
        .filter_map(|f| validator.check(&std::fs::read(f).ok()?).ok())
        .map(|i| i.phash)
        .collect()
}
