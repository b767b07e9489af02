//! A version's provenance, from the store: what found its members and when, and how the
//! fetches into the dataset treated opt-outs (the dataset's record: the weakest policy a
//! fetch ran with, and the URLs left out as `opted-out`).

use crate::dataset::{OptOuts, Provenance};
use crate::net::OPTED_OUT;
use crate::store::{Member, Store, StoreError, rfc3339};

/// What found `member`: its query or URL list as given, an imported folder by its name
/// alone (its parent folders are the importer's own, not for a published card).
fn found_by(member: &Member) -> String {
    if !member.url.starts_with("file:") {
        return member.query.clone();
    }
    let name = std::path::Path::new(&member.query).file_name();
    format!("folder {}", name.map(|n| n.to_string_lossy()).unwrap_or_default())
}

/// The provenance of `members` of `dataset`.
pub fn provenance<'a>(
    store: &Store,
    dataset: &str,
    members: impl Iterator<Item = &'a Member>,
) -> Result<Provenance, StoreError> {
    let mut out = Provenance::default();
    let (mut first, mut last) = (u64::MAX, 0);
    for member in members {
        *out.queries.entry(found_by(member)).or_default() += 1;
        *out.sources.entry(member.source.clone()).or_default() += 1;
        first = first.min(member.added_at);
        last = last.max(member.added_at);
    }
    if first <= last {
        (out.first_added, out.last_added) = (Some(rfc3339(first)), Some(rfc3339(last)));
    }
    let record = store.index.dataset(dataset)?.unwrap_or_default();
    out.opt_outs = OptOuts {
        honoured: record.opt_outs.as_ref().map(|policy| policy.honour),
        signals: record.opt_outs.filter(|p| p.honour).map(|p| p.signals).unwrap_or_default(),
        excluded: record.failures.get(OPTED_OUT).copied().unwrap_or(0),
    };
    Ok(out)
}
