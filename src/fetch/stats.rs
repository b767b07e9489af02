//! Counters shared by the stages of one run, and the summary made from them at the end.
//!
//! Stages only bump atomics; the progress line and the summary read them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::Job;
use crate::printable::printable;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How many failure messages a run keeps to show at the end (all are counted).
const KEPT_MESSAGES: usize = 5;

#[derive(Debug, Default)]
pub struct Stats {
    /// Result pages parsed.
    pub pages: Counter,
    /// Candidates produced by the source.
    pub candidates: Counter,
    /// Candidates skipped because the index already knew them.
    pub known: Counter,
    pub downloaded: Counter,
    pub bytes: Counter,
    pub accepted: Counter,
    pub duplicates: Counter,
    failures: Mutex<(BTreeMap<String, u64>, Vec<String>)>,
}

impl Stats {
    pub fn fail(&self, reason: &str, detail: String) {
        let mut guard = self.failures.lock().expect("stats lock");
        *guard.0.entry(reason.to_owned()).or_default() += 1;
        if guard.1.len() < KEPT_MESSAGES {
            guard.1.push(detail);
        }
    }

    pub fn failed(&self) -> u64 {
        self.failures.lock().expect("stats lock").0.values().sum()
    }

    pub fn summary(
        &self,
        job: &Job,
        before: usize,
        after: usize,
        engine_failures: Vec<String>,
        elapsed: Duration,
    ) -> Summary {
        let (failures, messages) = self.failures.lock().expect("stats lock").clone();
        Summary {
            dataset: job.dataset.clone(),
            from_folder: matches!(job.source, super::Source::Folder(_)),
            top: job.top,
            images: after,
            added: after.saturating_sub(before),
            known: self.known.get(),
            downloaded: self.downloaded.get(),
            bytes: self.bytes.get(),
            duplicates: self.duplicates.get(),
            failed: failures.values().sum(),
            failures,
            failure_examples: messages,
            pages: self.pages.get(),
            engine_failures,
            seconds: elapsed.as_secs_f64(),
        }
    }
}

/// What one `fetch` or `import` did; printed as text, or as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dataset: String,
    /// Imported from a folder: files were read, not downloaded, and no pages searched.
    #[serde(skip)]
    pub from_folder: bool,
    pub top: Option<usize>,
    /// Members of the dataset after the run.
    pub images: usize,
    /// Members added by this run.
    pub added: usize,
    /// Candidates skipped because the store already knew them.
    pub known: u64,
    pub downloaded: u64,
    pub bytes: u64,
    pub duplicates: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    #[serde(skip)]
    pub failure_examples: Vec<String>,
    pub pages: u64,
    pub engine_failures: Vec<String>,
    pub seconds: f64,
}

impl Summary {
    /// True when the run got everything it asked for.
    pub fn complete(&self) -> bool {
        self.top.is_none_or(|top| self.images >= top)
    }

    /// True when engines failed and the dataset fell short because of it (exit code 3).
    pub fn partial(&self) -> bool {
        !self.complete() && !self.engine_failures.is_empty()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = self.top.map(|t| format!(" of {t} wanted")).unwrap_or_default();
        write!(
            f,
            "{}: {} images{target} ({} new), {} duplicates skipped, {} failed, {} already known; \
             {} {} ({:.1} MiB)",
            self.dataset,
            self.images,
            self.added,
            self.duplicates,
            self.failed,
            self.known,
            self.downloaded,
            if self.from_folder { "read" } else { "downloaded" },
            self.bytes as f64 / (1024.0 * 1024.0),
        )?;
        if self.pages > 0 || !self.engine_failures.is_empty() {
            write!(f, ", {} result pages", self.pages)?;
        }
        writeln!(f, ", {:.1} s", self.seconds)?;
        if !self.failures.is_empty() {
            let reasons: Vec<String> =
                self.failures.iter().map(|(r, n)| format!("{r} {n}")).collect();
            writeln!(f, "  failures: {}", reasons.join(", "))?;
        }
        for message in &self.engine_failures {
            writeln!(f, "  engine error: {}", printable(message))?;
        }
        Ok(())
    }
}
