//! A build's members cut into shards, and shards preprocessed into files.
//!
//! Members are ordered by split, then by content hash, and cut into chunks of
//! `build.shard_size`, one chunk a shard file. Each chunk's images are decoded and resized
//! in parallel (rayon) straight into the shard's buffers while the previous shard is
//! written on a second thread, so memory stays at about two shards. Any run of chunks can
//! be written on its own (a bucket build's part): what it holds is a [`Part`], and the
//! parts of all chunks, in order, make the manifest's shard and member lists.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::BuildError;
use crate::dataset::{self, BuildSettings, ManifestMember, ShardInfo, Skipped, Split};
use crate::photo::resize::Preprocessor;
use crate::store::Member;

/// One image to preprocess.
pub(super) struct Planned<'a> {
    pub id: &'a str,
    pub split: Split,
    pub member: &'a Member,
    pub blob: PathBuf,
}

/// The members of one shard file, before preprocessing: the `number`th of its split.
pub struct Chunk<'a> {
    pub split: Split,
    pub number: usize,
    pub(super) items: Vec<Planned<'a>>,
}

impl Chunk<'_> {
    /// The shard file's name.
    pub fn file(&self) -> String {
        format!("{}-{:05}.safetensors", self.split.as_str(), self.number)
    }

    /// The members' ids, in shard order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|p| p.id)
    }
}

/// What a run of chunks became: its shards, their members in shard order (`shard` counts
/// from the run's first shard), and the images that failed. Saved in a bucket as a part
/// of a build done by a job array.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub shards: Vec<ShardInfo>,
    pub members: Vec<ManifestMember>,
    pub skipped: Vec<Skipped>,
}

/// `plan` (sorted by split, then id) cut into chunks of `shard_size` per split.
pub(super) fn chunks(plan: Vec<Planned<'_>>, shard_size: usize) -> Vec<Chunk<'_>> {
    let mut chunks: Vec<Chunk> = Vec::new();
    for item in plan {
        match chunks.last_mut() {
            Some(last) if last.split == item.split && last.items.len() < shard_size => {
                last.items.push(item);
            }
            _ => {
                let number = match chunks.last() {
                    Some(last) if last.split == item.split => last.number + 1,
                    _ => 0,
                };
                chunks.push(Chunk { split: item.split, number, items: vec![item] });
            }
        }
    }
    chunks
}

thread_local! {
    static PREPROCESSOR: RefCell<Preprocessor> = RefCell::new(Preprocessor::default());
}

/// A shard's pixels on their way to the writer.
struct ShardJob {
    path: PathBuf,
    a: Vec<u8>,
    b: Vec<u8>,
    ids: Vec<String>,
}

/// Preprocesses `chunks` shard by shard into `dir`, writing each shard on a second thread
/// while the next one is computed.
pub fn write(
    dir: &Path,
    chunks: &[Chunk],
    settings: &BuildSettings,
    progress: &ProgressBar,
) -> Result<Part, BuildError> {
    let (tx, rx) = sync_channel::<ShardJob>(0);
    let size = settings.size;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<Vec<String>, BuildError> {
            let mut hashes = Vec::new();
            for job in rx {
                // Written and synced here, beside the decoding of the next shard, rather
                // than all at the end.
                hashes.push(dataset::write_shard(&job.path, size, &job.a, &job.b, &job.ids)?);
            }
            Ok(hashes)
        });
        let produced = produce(dir, chunks, settings, progress, &tx);
        drop(tx);
        let hashes = writer.join().expect("shard writer does not panic")?;
        let mut part = produced?;
        for (shard, hash) in part.shards.iter_mut().zip(hashes) {
            shard.blake3 = hash;
        }
        Ok(part)
    })
}

fn produce(
    dir: &Path,
    chunks: &[Chunk],
    settings: &BuildSettings,
    progress: &ProgressBar,
    tx: &std::sync::mpsc::SyncSender<ShardJob>,
) -> Result<Part, BuildError> {
    let plane = (settings.size * settings.size) as usize;
    let mut part = Part::default();
    for chunk in chunks {
        let items = &chunk.items;
        let mut a = vec![0u8; items.len() * plane];
        let mut b = vec![0u8; items.len() * 3 * plane];
        let results: Vec<Result<(), String>> = a
            .par_chunks_mut(plane)
            .zip(b.par_chunks_mut(3 * plane))
            .zip(items.par_iter())
            .map(|((a, b), item)| {
                let result = fs::read(&item.blob)
                    .map_err(|e| format!("{}: {e}", item.blob.display()))
                    .and_then(|bytes| {
                        PREPROCESSOR.with_borrow_mut(|p| {
                            p.pair(&bytes, settings.size, settings.resize, a, b)
                                .map_err(|e| e.to_string())
                        })
                    });
                progress.inc(1);
                result
            })
            .collect();
        // Failed images leave holes: close them up, keeping order.
        let mut kept = Vec::new();
        for (item, result) in items.iter().zip(results) {
            match result {
                Ok(()) => kept.push(item),
                Err(reason) => part.skipped.push(Skipped { id: item.id.to_owned(), reason }),
            }
        }
        if kept.len() < items.len() {
            compact(&mut a, &mut b, items, &kept, plane);
        }
        if kept.is_empty() {
            continue;
        }
        let file = chunk.file();
        add_shard(&mut part, chunk, &kept);
        let ids = kept.iter().map(|p| p.id.to_owned()).collect();
        let job = ShardJob { path: dir.join(file), a, b, ids };
        if tx.send(job).is_err() {
            break; // The writer failed; its error is reported by the caller.
        }
    }
    Ok(part)
}

/// Adds to `part` the shard of `chunk` holding `kept` (its blake3 still to come).
fn add_shard(part: &mut Part, chunk: &Chunk, kept: &[&Planned]) {
    let shard = part.shards.len();
    for (index, item) in kept.iter().enumerate() {
        part.members.push(ManifestMember {
            id: item.id.to_owned(),
            split: chunk.split,
            shard,
            index,
            rank: item.member.rank,
            source: item.member.source.clone(),
            url: item.member.url.clone(),
            page_url: item.member.page_url.clone(),
            title: item.member.title.clone(),
            credit: item.member.credit.clone(),
        });
    }
    let (file, split, count) = (chunk.file(), chunk.split, kept.len());
    part.shards.push(ShardInfo { file, split, count, blake3: String::new() });
}

/// Whether `part`, read back from elsewhere, is what writing `chunks` gives: the same
/// shards and members in the same places, the images it skipped being `chunks`' own,
/// every shard's hash a blake3 hash. Only the hashes and why images failed are its own.
pub fn check(chunks: &[Chunk], part: &Part) -> Result<(), String> {
    let skipped: std::collections::HashSet<&str> =
        part.skipped.iter().map(|s| s.id.as_str()).collect();
    let mut expected = Part::default();
    for chunk in chunks {
        let kept: Vec<&Planned> = chunk.items.iter().filter(|p| !skipped.contains(p.id)).collect();
        if !kept.is_empty() {
            add_shard(&mut expected, chunk, &kept);
        }
    }
    let ours = chunks.iter().flat_map(|c| &c.items).filter(|p| skipped.contains(p.id)).count();
    if ours != part.skipped.len() {
        return Err("it skips images that are not its own, or one twice".into());
    }
    if expected.members != part.members {
        return Err("its members are not the ones its shards should hold".into());
    }
    let unhashed = |s: &ShardInfo| ShardInfo { blake3: String::new(), ..s.clone() };
    if expected.shards != part.shards.iter().map(unhashed).collect::<Vec<_>>() {
        return Err("its shards are not the ones its members should make".into());
    }
    if let Some(bad) =
        part.skipped.iter().find(|s| s.reason.len() > 1000 || s.reason.contains(char::is_control))
    {
        return Err(format!("why {} failed is not a line of text of at most 1000 bytes", bad.id));
    }
    if let Some(bad) = part.shards.iter().find(|s| !crate::store::is_hash(&s.blake3)) {
        return Err(format!("shard {}'s hash {:?} is not a blake3 hash", bad.file, bad.blake3));
    }
    Ok(())
}

/// Moves the pairs of `kept` (a subsequence of `items`) to the front, in order.
fn compact(a: &mut Vec<u8>, b: &mut Vec<u8>, items: &[Planned], kept: &[&Planned], plane: usize) {
    let mut to = 0;
    for (from, item) in items.iter().enumerate() {
        if kept.get(to).is_some_and(|k| std::ptr::eq(*k, item)) {
            a.copy_within(from * plane..(from + 1) * plane, to * plane);
            b.copy_within(from * 3 * plane..(from + 1) * 3 * plane, to * 3 * plane);
            to += 1;
        }
    }
    a.truncate(to * plane);
    b.truncate(to * 3 * plane);
}

/// `parts` (of consecutive runs of chunks, in order) as one run: shard numbers counted
/// from the first part's first shard.
pub fn join(parts: Vec<Part>) -> Part {
    let mut whole = Part::default();
    for part in parts {
        let offset = whole.shards.len();
        whole.shards.extend(part.shards);
        whole.members.extend(
            part.members.into_iter().map(|m| ManifestMember { shard: m.shard + offset, ..m }),
        );
        whole.skipped.extend(part.skipped);
    }
    whole
}
