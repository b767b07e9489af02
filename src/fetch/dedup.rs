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

/// The dataset's images as far as duplicates are concerned.
pub struct Seen {
    exact: HashSet<String>,
    near: NearIndex,
    /// The content hash of each of `near`'s ids.
    keys: Vec<String>,
    max_distance: u32,
}

impl Seen {
    pub fn new(max_distance: u32) -> Seen {
        let near = NearIndex::new(max_distance);
        Seen { exact: HashSet::new(), near, keys: Vec::new(), max_distance }
    }

    /// The member `hash` duplicates, and whether exactly.
    pub fn find(&self, hash: &str, phash: PerceptualHash) -> Option<(String, bool)> {
        if self.exact.contains(hash) {
            return Some((hash.to_owned(), true));
        }
        if self.max_distance == 0 {
            return None;
        }
        // Of equally near members, the first inserted: the best-ranked.
        self.near.nearest(&phash).map(|(id, _)| (self.keys[id].clone(), false))
    }

    pub fn insert(&mut self, hash: String, phash: PerceptualHash) {
        if self.max_distance > 0 {
            self.near.insert(phash);
            self.keys.push(hash.clone());
        }
        self.exact.insert(hash);
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
        seen.insert(hash, image.phash);
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
    seen.insert(hash.clone(), info.phash);
    *accepted += 1;
    State::Accepted { hash, info, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(low: u64) -> PerceptualHash {
        PerceptualHash([u64::MAX, 0, 0, low])
    }

    #[test]
    fn exact_then_nearest_within_distance() {
        let mut seen = Seen::new(4);
        seen.insert("a".into(), hash(0b1111_0000));
        seen.insert("b".into(), hash(0b1111_1111));
        assert_eq!(seen.find("a", hash(0)), Some(("a".into(), true)));
        assert_eq!(seen.find("c", hash(0b1111_1110)), Some(("b".into(), false)));
        assert_eq!(seen.find("c", hash(0b1111_0001)), Some(("a".into(), false)));
        assert_eq!(seen.find("c", hash(!0)), None);
        let mut exact_only = Seen::new(0);
        exact_only.insert("a".into(), hash(0));
        assert_eq!(exact_only.find("c", hash(0)), None, "distance 0 turns near-duplicates off");
    }
}
