//! One task of a job array that labels a merged dataset (`label --shard N`): the first
//! step of a build spread over many machines, since what a build keeps depends on every
//! member's label.
//!
//! The task takes its run of the merged member list (in list order), downloads only those
//! blobs (checked as a pull checks them) into a scratch store, labels them as a build
//! would (the classifier only when the curation rules need classes) and creates
//! `labels/<dataset>/<merge>/part-NNNNN-of-KKKKK.jsonl` once, where `<merge>` names the
//! member list it labelled: a task whose part is there does nothing, and a new merge is
//! labelled afresh. `build --shard N` reads every part of the current merge.

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::manifest::Image;
use super::mirror::{self, Checks, MemberList};
use super::task::{self, Task, TaskError};
use super::{Bucket, Cap, Created, scratch};
use crate::build::BuildError;
use crate::config::Config;
use crate::curate::labels::{self, Label};
use crate::dataset::curation::CurateConfig;
use crate::store::{Store, Tree};

/// One member's line in a labels part: its label, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelLine {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// What one labelling task did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelReport {
    pub dataset: String,
    pub part: usize,
    pub parts: usize,
    /// "done" (by this task), or "skipped" (its part was there).
    pub status: &'static str,
    pub images: usize,
    pub failed: usize,
}

/// The folder of the labels of the member list whose digest is `digest`.
pub fn labels_folder(dataset: &str, digest: &str) -> String {
    format!("labels/{dataset}/{digest}")
}

fn part_key(dataset: &str, digest: &str, part: usize, parts: usize) -> String {
    format!("{}/part-{part:05}-of-{parts:05}.jsonl", labels_folder(dataset, digest))
}

/// Labels `task`'s run of the merged members of `task.dataset`, unless its part is there.
pub async fn run(
    bucket: &Bucket,
    config: &Config,
    curation: &CurateConfig,
    task: &Task<'_>,
) -> Result<LabelReport, TaskError> {
    let list = mirror::merged(bucket, task.dataset).await?;
    let key = part_key(task.dataset, &list.digest, task.part, task.parts);
    let mine = &list.members[task::range(list.members.len(), task.part, task.parts)];
    let report = |status, failed| LabelReport {
        dataset: task.dataset.to_owned(),
        part: task.part,
        parts: task.parts,
        status,
        images: mine.len(),
        failed,
    };
    if let Some(lines) = read_part(bucket, &key, mine.len()).await? {
        return Ok(report("skipped", lines.iter().filter(|l| l.label.is_none()).count()));
    }
    let lines = label_members(bucket, config, curation, task, mine).await?;
    let failed = lines.iter().filter(|l| l.label.is_none()).count();
    let text: Vec<u8> = lines
        .iter()
        .flat_map(|line| {
            let mut json = serde_json::to_vec(line).expect("a label line serializes");
            json.push(b'\n');
            json
        })
        .collect();
    match bucket.create(&key, Bytes::from(text)).await? {
        Created::New => Ok(report("done", failed)),
        Created::Existed => Ok(report("skipped", failed)),
    }
}

/// Downloads and labels `mine` in a scratch store: a line for each, in order.
async fn label_members(
    bucket: &Bucket,
    config: &Config,
    curation: &CurateConfig,
    task: &Task<'_>,
    mine: &[Image],
) -> Result<Vec<LabelLine>, TaskError> {
    let scratch_error = |source| TaskError::Scratch { part: task.part, source };
    let name = format!("label-{}-{}", task.dataset, task.part);
    let (_scratch, store) = scratch::create(&name).map_err(scratch_error)?;
    let checks = Checks { max_bytes: config.network.max_bytes, images: config.images.clone() };
    mirror::pull_blobs(bucket, &store, mine, &checks).await?;
    let (_, classifier) = crate::curate::rules(curation).map_err(BuildError::from)?;
    let images: Vec<_> = mine.iter().map(|m| (m.hash.as_str(), &m.image)).collect();
    let (found, report) = tokio::task::block_in_place(|| {
        labels::ensure(&store, &images, classifier.as_deref(), &task.progress)
    })
    .map_err(BuildError::from)?;
    let mut failed: HashMap<String, String> = report.failed.into_iter().collect();
    Ok(mine
        .iter()
        .zip(found)
        .map(|(m, label)| LabelLine {
            id: m.hash.clone(),
            failed: if label.is_none() { failed.remove(&m.hash) } else { None },
            label,
        })
        .collect())
}

/// The lines of the labels part at `key`, if it is there: at most `members` of them.
async fn read_part(
    bucket: &Bucket,
    key: &str,
    members: usize,
) -> Result<Option<Vec<LabelLine>>, TaskError> {
    // A label line is some 400 bytes: a part of more than 4 KiB a member is no part of ours.
    let cap = Cap::per(members, 4096, "4 KiB a member");
    let Some(bytes) = bucket.get(key, cap).await? else { return Ok(None) };
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line: LabelLine = serde_json::from_str(line)
            .map_err(|e| bucket.corrupt(key, format!("line {}: {e}", number + 1)))?;
        lines.push(line);
    }
    Ok(Some(lines))
}

/// Puts every label of the current merge's parts into `store`'s labels tree, for the
/// members of `list`; an error names what is still unlabelled.
pub async fn fetch_labels(
    bucket: &Bucket,
    store: &Store,
    task: &Task<'_>,
    list: &MemberList,
) -> Result<(), TaskError> {
    let dataset = task.dataset;
    let folder = labels_folder(dataset, &list.digest);
    let keys = bucket.list(&folder).await?;
    let mut unlabelled: std::collections::HashSet<&str> =
        list.members.iter().map(|m| m.hash.as_str()).collect();
    let mut counts_seen = std::collections::BTreeMap::<usize, Vec<usize>>::new();
    for key in &keys {
        let Some((part, parts)) = part_of_key(&folder, key) else { continue };
        counts_seen.entry(parts).or_default().push(part);
        let cap_members = list.members.len();
        let Some(lines) = read_part(bucket, key, cap_members).await? else { continue };
        for line in lines {
            // Only members are labelled, and only labels of this build's kind count.
            if !unlabelled.contains(line.id.as_str()) {
                continue;
            }
            match line.label {
                Some(label) if label.version == labels::VERSION => {
                    store
                        .index
                        .put(&Tree::Labels, &line.id, &label)
                        .map_err(|source| TaskError::Scratch { part: task.part, source })?;
                }
                Some(_) => continue,
                None => {}
            }
            unlabelled.remove(line.id.as_str());
        }
    }
    if unlabelled.is_empty() {
        return Ok(());
    }
    let parts = counts_seen
        .iter()
        .map(|(parts, done)| {
            let missing: Vec<String> =
                (0..*parts).filter(|p| !done.contains(p)).map(|p| p.to_string()).collect();
            format!(" (of {parts} parts, {} missing: {})", missing.len(), missing.join(", "))
        })
        .collect::<String>();
    Err(TaskError::Unlabelled {
        url: bucket.url().to_owned(),
        dataset: dataset.to_owned(),
        missing: unlabelled.len(),
        members: list.members.len(),
        parts,
    })
}

/// `(part, parts)` of a key `FOLDER/part-NNNNN-of-KKKKK.jsonl`.
fn part_of_key(folder: &str, key: &str) -> Option<(usize, usize)> {
    let name = key.strip_prefix(folder)?.strip_prefix("/part-")?.strip_suffix(".jsonl")?;
    let (part, parts) = name.split_once("-of-")?;
    Some((part.parse().ok()?, parts.parse().ok()?))
}
