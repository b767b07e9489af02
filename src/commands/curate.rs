//! `pipeline label` and `pipeline curate`: label images for curation; show what a build
//! would leave out and why.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::bail;
use serde::Serialize;

use super::print::progress_bar;
use crate::commands::cli::{CurateArgs, LabelArgs};
use crate::commands::exit;
use crate::config::Config;
use crate::credit::count_by_license;
use crate::curate::color::Colorfulness;
use crate::curate::labels;
use crate::curate::{self};
use crate::dataset::curation::CurateConfig;
use crate::dataset::curation::Leak;
use crate::dataset::curation::{Dropped, count_by_reason};
use crate::store::{ImageRecord, Member, Store};

/// What `label` found in one dataset.
#[derive(Debug, Serialize)]
struct LabelSummary {
    dataset: String,
    images: usize,
    labelled: usize,
    reused: usize,
    failed: usize,
    images_per_second: f64,
    /// Top-1 class -> images.
    classes: BTreeMap<String, usize>,
    gray: usize,
    tinted: usize,
}

pub fn label(config: &Config, args: LabelArgs) -> anyhow::Result<u8> {
    if super::arrays::is_task(config, args.shard) {
        return super::arrays::label(config, &args);
    }
    if args.shard.is_some() || args.shards.is_some() {
        return Err(exit::usage("--shard and --shards are for bucket stores (--store s3://...)"));
    }
    let store = Store::open(&config.store.path)?;
    let datasets =
        if args.datasets.is_empty() { store.index.member_datasets() } else { args.datasets };
    if datasets.is_empty() {
        bail!("no datasets in {} yet: fetch or import some first", store.root().display());
    }
    let classifier = curate::classifier(&config.curate);
    let mut code = exit::OK;
    for dataset in datasets {
        let members = store.index.members(&dataset)?;
        if members.is_empty() && store.index.dataset(&dataset)?.is_none() {
            bail!("no dataset named {dataset:?} in the store");
        }
        let started = Instant::now();
        let images: Vec<_> = members.iter().map(|(id, _, image)| (id.as_str(), image)).collect();
        let progress = progress_bar(&dataset);
        let (found, report) = labels::ensure(&store, &images, Some(&*classifier), &progress)?;
        progress.finish_and_clear();
        let summary = LabelSummary {
            images: members.len(),
            labelled: report.labelled,
            reused: report.reused,
            failed: report.failed.len(),
            images_per_second: report.labelled as f64 / started.elapsed().as_secs_f64().max(1e-9),
            classes: labels::top_classes(found.iter().flatten()),
            gray: labels::verdicts(found.iter().flatten(), &config.curate, Colorfulness::Gray),
            tinted: labels::verdicts(found.iter().flatten(), &config.curate, Colorfulness::Tinted),
            dataset,
        };
        for (id, reason) in &report.failed {
            eprintln!("{}: {id}: {reason}", summary.dataset);
        }
        if !report.failed.is_empty() {
            code = exit::PARTIAL;
        }
        if args.json {
            println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
        } else {
            print_label_summary(&summary);
        }
    }
    store.index.flush()?;
    Ok(code)
}

fn print_label_summary(s: &LabelSummary) {
    let mut classes: Vec<(&String, &usize)> = s.classes.iter().collect();
    classes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = classes.iter().take(8).map(|(c, n)| format!("{c} {n}")).collect();
    println!(
        "{}: {} images: labelled {} ({:.0} images/s), {} already, {} failed; gray {}, tinted {}; top classes: {}",
        s.dataset,
        s.images,
        s.labelled,
        s.images_per_second,
        s.reused,
        s.failed,
        s.gray,
        s.tinted,
        if top.is_empty() { "none".to_owned() } else { top.join(", ") }
    );
}

/// `curate --json`.
#[derive(Debug, Serialize)]
struct Decision<'a> {
    dataset: &'a str,
    members: usize,
    kept: usize,
    train: usize,
    test: usize,
    dropped_by_reason: BTreeMap<String, usize>,
    /// Members, and those kept, by licence id (`unknown`: the source named none).
    licenses: BTreeMap<String, usize>,
    kept_licenses: BTreeMap<String, usize>,
    dropped: &'a [Dropped],
    leaks: &'a [Leak],
    /// Members that could not be read or decoded (a build skips them): id and why.
    unreadable: &'a [(String, String)],
    rules: &'a CurateConfig,
}

pub fn curate(config: &Config, args: CurateArgs) -> anyhow::Result<u8> {
    let store = Store::open(&config.store.path)?;
    let members = store.index.members(&args.dataset)?;
    if members.is_empty() {
        bail!("dataset {} has no images: fetch or import some first", args.dataset);
    }
    let rules = args.rules.rules(config, &args.dataset);
    let progress = progress_bar(&args.dataset);
    let selection = curate::select(
        &store,
        &args.dataset,
        &members,
        &rules,
        config.build.test_fraction,
        &progress,
    )?;
    progress.finish_and_clear();
    store.index.flush()?;
    let test = selection.kept.iter().filter(|(_, s)| *s == crate::dataset::Split::Test).count();
    let decision = Decision {
        dataset: &args.dataset,
        members: members.len(),
        kept: selection.kept.len(),
        train: selection.kept.len() - test,
        test,
        dropped_by_reason: count_by_reason(&selection.dropped),
        licenses: count_by_license(members.iter().map(|(_, m, _)| m.credit.as_ref())),
        kept_licenses: count_by_license(
            selection.kept.iter().map(|((_, m, _), _)| m.credit.as_ref()),
        ),
        dropped: &selection.dropped,
        leaks: &selection.leaks,
        unreadable: &selection.labels.failed,
        rules: &rules,
    };
    if args.json {
        println!("{}", serde_json::to_string(&decision).expect("decision serializes"));
        return Ok(exit::OK);
    }
    print_decision(&decision, &members, args.show);
    Ok(exit::OK)
}

/// `curate` for a person: the counts, then with `show` every image left out (with its URL),
/// every leak and every unreadable image.
fn print_decision(decision: &Decision, members: &[(String, Member, ImageRecord)], show: bool) {
    let by_reason: Vec<String> =
        decision.dropped_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
    println!(
        "{}: {} members: {} kept ({} train, {} test), {} left out{}; {} leak(s), {} unreadable",
        decision.dataset,
        decision.members,
        decision.kept,
        decision.train,
        decision.test,
        decision.dropped.len(),
        if by_reason.is_empty() { String::new() } else { format!(" ({})", by_reason.join(", ")) },
        decision.leaks.len(),
        decision.unreadable.len()
    );
    let licenses = |by: &BTreeMap<String, usize>| {
        by.iter().map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", ")
    };
    println!(
        "  licences: {}; kept: {}",
        licenses(&decision.licenses),
        licenses(&decision.kept_licenses)
    );
    if !show {
        return;
    }
    let by_id: BTreeMap<&str, &Member> =
        members.iter().map(|(id, m, _)| (id.as_str(), m)).collect();
    for d in decision.dropped {
        let member = by_id[d.id.as_str()];
        println!(
            "  {:<10} {}  rank {:>4}  {}  {}",
            d.reason.as_str(),
            &d.id[..16],
            member.rank,
            d.detail,
            member.url
        );
    }
    for leak in decision.leaks {
        println!("  leak       {leak}");
    }
    for (id, reason) in decision.unreadable {
        println!("  unreadable {id}: {reason}");
    }
}
