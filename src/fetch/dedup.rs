//! The dedup stage: one task that owns what the dataset already holds and decides, in
//! source order, which images are accepted.
//!
//! Exact duplicates are caught by blake3 of the bytes, near duplicates by the Hamming
//! distance between 256-bit gradient hashes (at most `dedup.phash_distance` bits), looked
//! up in a multi-index (`photo::near`), not by a scan. The copy
//! that is kept is the one that came first in source order, i.e. the best-ranked one, and a
//! stored member is never replaced: a later copy, even a larger one, is recorded as its
//! duplicate. That keeps a dataset's members (and the splits built from them) stable.
//!
//! It also counts acceptances against `--top` and stops the source once it is reached.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc::{Receiver, Sender};

use super::{Context, Item, RunError, State};
use crate::photo::check::PerceptualHash;
use crate::photo::near::NearIndex;

/// The dataset's images as far as duplicates are concerned: content hashes as their 32
/// bytes.
pub struct Seen {
    exact: HashSet<[u8; 32]>,
    near: NearIndex,
    /// The content hash of each of `near`'s ids.
    keys: Vec<[u8; 32]>,
    max_distance: u32,
    /// Only whether an image is a duplicate is asked ([`Seen::counting`]).
    counting: bool,
}

/// The bytes of a content hash (blake3, 64 hex digits, as `store::is_hash` checks; any
/// other text, which no caller passes, by the blake3 of it).
fn bytes(hash: &str) -> [u8; 32] {
    blake3::Hash::from_hex(hash).unwrap_or_else(|_| blake3::hash(hash.as_bytes())).into()
}

impl Seen {
    pub fn new(max_distance: u32) -> Seen {
        let near = NearIndex::new(max_distance);
        Seen { exact: HashSet::new(), near, keys: Vec::new(), max_distance, counting: false }
    }

    /// A `Seen` for [`Seen::is_duplicate`] only (what `merge` asks of ten million images):
    /// with near duplicates on, an exact copy (the same bytes, so the same perceptual hash)
    /// is a near one at distance 0, so the index alone decides and neither the content
    /// hashes nor each id's key are kept (1.2 GB less at 10 M).
    pub fn counting(max_distance: u32) -> Seen {
        Seen { counting: true, ..Seen::new(max_distance) }
    }

    /// Whether `hash` duplicates a member, exactly or nearly: the same decision as
    /// [`Seen::find`].
    pub fn is_duplicate(&self, hash: &str, phash: PerceptualHash) -> bool {
        match self.max_distance {
            0 => self.exact.contains(&bytes(hash)),
            _ if self.counting => self.near.nearest(&phash).is_some(),
            _ => self.find(hash, phash).is_some(),
        }
    }

    /// The member `hash` duplicates, and whether exactly (not for a counting `Seen`).
    pub fn find(&self, hash: &str, phash: PerceptualHash) -> Option<(String, bool)> {
        if self.exact.contains(&bytes(hash)) {
            return Some((hash.to_owned(), true));
        }
        if self.max_distance == 0 {
            return None;
        }
        // Of equally near members, the first inserted: the best-ranked.
        let hex = |key: &[u8; 32]| blake3::Hash::from(*key).to_hex().to_string();
        self.near.nearest(&phash).map(|(id, _)| (hex(&self.keys[id]), false))
    }

    pub fn insert(&mut self, hash: &str, phash: PerceptualHash) {
        let key = bytes(hash);
        if self.max_distance > 0 {
            self.near.insert(phash);
            if self.counting {
                return;
            }
            self.keys.push(key);
        }
        self.exact.insert(key);
    }
}

pub async fn run(
    ctx: Arc<Context>,
    dataset: String,
    wanted: Option<usize>,
    mut rx: Receiver<Item>,
    tx: Sender<Item>,
) -> Result<(), RunError> {
    let mut seen = Seen::new(ctx.config.dedup.phash_distance);
    for (hash, _, image) in ctx.store.index.members(&dataset)? {
        seen.insert(&hash, image.phash);
    }
    let mut accepted = 0;
    while let Some(mut item) = rx.recv().await {
        item.state = match item.state {
            State::Checked { hash, info, body } => {
                decide(&mut seen, &mut accepted, wanted, hash, info, Some(body))
            }
            State::Stored { hash, info } => {
                decide(&mut seen, &mut accepted, wanted, hash, info, None)
            }
            other => other,
        };
        if wanted.is_some_and(|w| accepted >= w) {
            ctx.stop.cancel();
        }
        if tx.send(item).await.is_err() {
            break;
        }
    }
    Ok(())
}

fn decide(
    seen: &mut Seen,
    accepted: &mut usize,
    wanted: Option<usize>,
    hash: String,
    info: crate::photo::check::ImageInfo,
    body: Option<bytes::Bytes>,
) -> State {
    if wanted.is_some_and(|w| *accepted >= w) {
        return State::Dropped;
    }
    if let Some((of, exact)) = seen.find(&hash, info.phash) {
        return State::Duplicate { of, exact };
    }
    seen.insert(&hash, info.phash);
    *accepted += 1;
    State::Accepted { hash, info, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(low: u64) -> PerceptualHash {
        PerceptualHash([u64::MAX, 0, 0, low])
    }

    /// A content hash: 64 hex digits of `c`.
    fn key(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn exact_then_nearest_within_distance() {
        let (a, b, c) = (key('a'), key('b'), key('c'));
        let mut seen = Seen::new(4);
        seen.insert(&a, hash(0b1111_0000));
        seen.insert(&b, hash(0b1111_1111));
        assert_eq!(seen.find(&a, hash(0)), Some((a.clone(), true)));
        assert_eq!(seen.find(&c, hash(0b1111_1110)), Some((b.clone(), false)));
        assert_eq!(seen.find(&c, hash(0b1111_0001)), Some((a.clone(), false)));
        assert_eq!(seen.find(&c, hash(!0)), None);
        let mut exact_only = Seen::new(0);
        exact_only.insert(&a, hash(0));
        assert_eq!(exact_only.find(&c, hash(0)), None, "distance 0 turns near-duplicates off");
    }

    #[test]
    fn counting_decides_as_find_with_less_kept() {
        let (a, b, c) = (key('a'), key('b'), key('c'));
        for distance in [0, 4] {
            let (mut full, mut counting) = (Seen::new(distance), Seen::counting(distance));
            for seen in [&mut full, &mut counting] {
                seen.insert(&a, hash(0b1111_0000));
                seen.insert(&b, hash(0b1111_1111));
            }
            for (key, phash) in [(&a, hash(0b1111_0000)), (&c, hash(0b1111_1110)), (&c, hash(!0))] {
                let want = full.find(key, phash).is_some();
                assert_eq!(counting.is_duplicate(key, phash), want, "{distance} {phash:?}");
                assert_eq!(full.is_duplicate(key, phash), want);
            }
            let kept = counting.exact.len() + counting.keys.len();
            assert_eq!(kept, if distance == 0 { 2 } else { 0 }, "only the index at {distance}");
        }
    }
}
