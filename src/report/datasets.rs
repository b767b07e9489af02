//! What the report shows of a dataset, read from the index and the built versions: its
//! members in rank order with their split (or why curation left them out), its failed
//! URLs, the near-duplicates it skipped, and every built version.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::ReportError;
use crate::dataset::{Built, DatasetError, Manifest, dataset_dir, latest_version};
use crate::durable::subfolders;
use crate::store::{DatasetRecord, DuplicateRecord, FailureRecord, Member, Store, Tree};

/// One dataset of the store.
pub struct DatasetView {
    pub name: String,
    pub record: DatasetRecord,
    /// In rank order (ties by id).
    pub members: Vec<MemberView>,
    /// Members by the engine that found them (or "import").
    pub sources: BTreeMap<String, usize>,
    /// Every built version, the latest first; empty when never built.
    pub builds: Vec<BuildView>,
    /// Failed URLs, by reason then URL.
    pub failed: Vec<(String, FailureRecord)>,
    /// Skipped URLs: (URL, decision).
    pub duplicates: Vec<(String, DuplicateRecord)>,
}

pub struct MemberView {
    pub id: String,
    pub ext: String,
    pub member: Member,
    /// Its place in the latest build: "train", "test", or why it is in no shard.
    pub placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The dataset was not built since the member came.
    Unbuilt,
    Train,
    Test,
    /// Left out by curation (reason, measurement) or not preprocessable ("skipped").
    Left {
        reason: String,
        detail: String,
    },
}

pub struct BuildView {
    pub version: String,
    pub latest: bool,
    pub manifest: Manifest,
}

impl DatasetView {
    pub fn read(
        store: &Store,
        name: &str,
        record: DatasetRecord,
    ) -> Result<DatasetView, ReportError> {
        let builds = builds(store.root(), name)?;
        let placements: HashMap<String, Placement> =
            builds.iter().find(|b| b.latest).map(|b| placements(&b.manifest)).unwrap_or_default();
        let mut members: Vec<MemberView> = store
            .index
            .members(name)?
            .into_iter()
            .map(|(id, member, image)| MemberView {
                placement: placements.get(&id).cloned().unwrap_or(Placement::Unbuilt),
                id,
                ext: image.ext,
                member,
            })
            .collect();
        members.sort_by(|a, b| a.member.rank.cmp(&b.member.rank).then_with(|| a.id.cmp(&b.id)));
        let mut sources = BTreeMap::new();
        for m in &members {
            *sources.entry(m.member.source.clone()).or_insert(0) += 1;
        }
        let mut failed =
            readable(store.index.records::<FailureRecord>(&Tree::Failures(name.into()))?);
        failed.sort_by(|a, b| a.1.reason.cmp(&b.1.reason).then_with(|| a.0.cmp(&b.0)));
        let duplicates = readable(store.index.records(&Tree::Duplicates(name.into()))?);
        Ok(DatasetView {
            name: name.to_owned(),
            record,
            members,
            sources,
            builds,
            failed,
            duplicates,
        })
    }

    pub fn latest(&self) -> Option<&BuildView> {
        self.builds.iter().find(|b| b.latest)
    }
}

/// The records that decode; a damaged one is `verify`'s business, not the report's.
fn readable<T>(records: crate::store::Records<T>) -> Vec<(String, T)> {
    records.into_iter().filter_map(|(key, record)| record.ok().map(|r| (key, r))).collect()
}

fn placements(manifest: &Manifest) -> HashMap<String, Placement> {
    let mut out = HashMap::new();
    for m in &manifest.members {
        let at = match m.split {
            crate::dataset::Split::Train => Placement::Train,
            crate::dataset::Split::Test => Placement::Test,
        };
        out.insert(m.id.clone(), at);
    }
    for d in &manifest.dropped {
        let left =
            Placement::Left { reason: d.reason.as_str().to_owned(), detail: d.detail.clone() };
        out.insert(d.id.clone(), left);
    }
    for s in &manifest.skipped {
        let left = Placement::Left { reason: "skipped".into(), detail: s.reason.clone() };
        out.insert(s.id.clone(), left);
    }
    out
}

/// Every published version of `dataset`, the latest first, then by name.
fn builds(store: &Path, dataset: &str) -> Result<Vec<BuildView>, ReportError> {
    let latest = latest_version(store, dataset)?;
    let mut out = Vec::new();
    for (version, dir) in subfolders(&dataset_dir(store, dataset))? {
        if version.starts_with('.') {
            continue;
        }
        match Built::open(&dir) {
            Ok(built) => out.push(BuildView {
                latest: latest.as_deref() == Some(version.as_str()),
                version,
                manifest: built.manifest,
            }),
            // A version being deleted, or damaged: `verify` reports it.
            Err(DatasetError::Io(_) | DatasetError::Corrupt { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort_by(|a, b| b.latest.cmp(&a.latest).then_with(|| a.version.cmp(&b.version)));
    Ok(out)
}
