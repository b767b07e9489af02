//! The shard plan: a URL list cut into `shards` contiguous slices of (nearly) equal URL
//! counts, each stored verbatim with the line number it starts at, so that a worker's
//! ranks and error messages are the whole list's. The same list and shard count always
//! give the same plan. A list of any size is read a line at a time: once to count its
//! URLs, once to stream it into the parts.
//!
//! Which shard a worker takes: `--shard N`, else `SLURM_ARRAY_TASK_ID` (Slurm job arrays),
//! else `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs).

use std::io::BufRead;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::{Bucket, BucketError, Cap};

/// What `shard-urls` wrote; workers and `merge` read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub dataset: String,
    /// The URL list's path as given: members' `query`, as a plain `import` would record.
    pub source: String,
    /// URLs (non-empty, non-comment lines) over all shards.
    pub urls: usize,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The list's line number of the part's first line (1-based).
    pub first_line: usize,
    pub urls: usize,
}

/// Errors of the plan itself, before any worker runs.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--shards must be at least 1")]
    NoShards,
    #[error("{0} holds no URL")]
    Empty(String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} changed while it was read")]
    Changed(String),
    #[error(
        "no shard given: pass --shard N, or run under a Slurm job array (SLURM_ARRAY_TASK_ID) \
         or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)"
    )]
    NoShard,
    #[error("{var}={value:?} is not a shard number")]
    BadShard { var: &'static str, value: String },
    #[error("no shard plan for dataset {dataset} in {url}: run `pipeline shard-urls` first")]
    NoPlan { dataset: String, url: String },
    #[error("shard {shard} does not exist: the plan of {dataset} has shards 0 to {last}")]
    OutOfRange { dataset: String, shard: usize, last: usize },
    #[error(
        "{url}: dataset {dataset} already has a different shard plan ({shards} shards of {urls} URLs \
         from {source_name}); shards may be done under it, so it is not replaced"
    )]
    Different { url: String, dataset: String, shards: usize, urls: usize, source_name: String },
    #[error(transparent)]
    Bucket(#[from] BucketError),
}

fn plan_key(dataset: &str) -> String {
    format!("plan/{dataset}/plan.json")
}

fn part_key(dataset: &str, shard: usize) -> String {
    format!("plan/{dataset}/part-{shard:05}.txt")
}

fn is_url(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with('#')
}

/// The URLs (non-empty, non-comment lines) of a list, read a line at a time.
pub fn count_urls(list: impl BufRead) -> std::io::Result<usize> {
    let mut urls = 0;
    for line in list.split(b'\n') {
        urls += usize::from(is_url(&String::from_utf8_lossy(&line?)));
    }
    Ok(urls)
}

/// Where each line of a list of `urls` URLs goes, fed the lines in order: shard s takes URLs
/// [urls s / shards, urls (s + 1) / shards), and the lines from just after the previous
/// shard's last URL (the first shard: from the top; the last: to the end).
struct Cutter {
    urls: usize,
    shards: usize,
    seen: usize,
    line: usize,
    parts: Vec<Part>,
}

impl Cutter {
    fn new(source: &str, urls: usize, shards: usize) -> Result<Cutter, PlanError> {
        if shards == 0 {
            return Err(PlanError::NoShards);
        }
        if urls == 0 {
            return Err(PlanError::Empty(source.to_owned()));
        }
        let shards = shards.min(urls);
        let parts = vec![Part { first_line: 1, urls: 0 }];
        Ok(Cutter { urls, shards, seen: 0, line: 0, parts })
    }

    /// The shard of the next line, and whether that line ends it.
    fn next(&mut self, line: &str) -> (usize, bool) {
        self.line += 1;
        let shard = self.parts.len() - 1;
        if !is_url(line) {
            return (shard, false);
        }
        self.seen += 1;
        self.parts[shard].urls += 1;
        let ends = shard + 1 < self.shards && self.seen == self.urls * (shard + 1) / self.shards;
        if ends {
            self.parts.push(Part { first_line: self.line + 1, urls: 0 });
        }
        (shard, ends)
    }
}

/// The plan of a list of `urls` URLs cut into `shards` parts, read a line at a time.
pub fn cut(
    dataset: &str,
    source: &str,
    list: impl BufRead,
    urls: usize,
    shards: usize,
) -> Result<Plan, PlanError> {
    let mut cutter = Cutter::new(source, urls, shards)?;
    for line in list.split(b'\n') {
        cutter
            .next(&String::from_utf8_lossy(&line.map_err(|e| PlanError::Read(source.into(), e))?));
    }
    finish(dataset, source, cutter)
}

fn finish(dataset: &str, source: &str, cutter: Cutter) -> Result<Plan, PlanError> {
    if cutter.seen != cutter.urls {
        return Err(PlanError::Changed(source.to_owned()));
    }
    let (dataset, source) = (dataset.to_owned(), source.to_owned());
    Ok(Plan { dataset, source, urls: cutter.seen, parts: cutter.parts })
}

/// Stores the plan of a list of `urls` URLs in `shards` parts, streaming the list into the
/// parts a line at a time (a part past 10 MB goes up as a multipart upload), then
/// `plan.json`, which makes them visible. The same plan again is a no-op (read through once
/// more to know it); a different one is refused, its parts untouched. `list` is opened
/// again for each read.
pub async fn write<R: BufRead>(
    bucket: &Bucket,
    dataset: &str,
    source: &str,
    list: impl Fn() -> std::io::Result<R>,
    urls: usize,
    shards: usize,
) -> Result<Plan, PlanError> {
    let read = |e| PlanError::Read(source.to_owned(), e);
    if let Some(existing) = bucket.get_json::<Plan>(&plan_key(dataset)).await? {
        let plan = cut(dataset, source, list().map_err(read)?, urls, shards)?;
        if existing == plan {
            return Ok(plan);
        }
        return Err(PlanError::Different {
            url: bucket.url().to_owned(),
            dataset: plan.dataset,
            shards: existing.parts.len(),
            urls: existing.urls,
            source_name: existing.source,
        });
    }
    let mut cutter = Cutter::new(source, urls, shards)?;
    let mut writer = bucket.writer(&part_key(dataset, 0));
    for line in list().map_err(read)?.split(b'\n') {
        let mut line = line.map_err(read)?;
        let (shard, ends) = cutter.next(&String::from_utf8_lossy(&line));
        line.push(b'\n');
        let key = part_key(dataset, shard);
        writer.write_all(&line).await.map_err(|e| bucket.corrupt(&key, e.to_string()))?;
        if ends {
            writer.shutdown().await.map_err(|e| bucket.corrupt(&key, e.to_string()))?;
            writer = bucket.writer(&part_key(dataset, shard + 1));
        }
    }
    let last = part_key(dataset, cutter.parts.len() - 1);
    writer.shutdown().await.map_err(|e| bucket.corrupt(&last, e.to_string()))?;
    let plan = finish(dataset, source, cutter)?;
    let json = serde_json::to_vec_pretty(&plan).expect("a plan serializes");
    bucket.put(&plan_key(dataset), Bytes::from(json)).await?;
    Ok(plan)
}

/// The plan of `dataset`.
pub async fn read(bucket: &Bucket, dataset: &str) -> Result<Plan, PlanError> {
    bucket.get_json(&plan_key(dataset)).await?.ok_or_else(|| PlanError::NoPlan {
        dataset: dataset.to_owned(),
        url: bucket.url().to_owned(),
    })
}

/// The text of shard `shard` of `plan`.
pub async fn part(bucket: &Bucket, plan: &Plan, shard: usize) -> Result<String, PlanError> {
    if shard >= plan.parts.len() {
        return Err(PlanError::OutOfRange {
            dataset: plan.dataset.clone(),
            shard,
            last: plan.parts.len() - 1,
        });
    }
    let key = part_key(&plan.dataset, shard);
    let bytes = bucket
        .get(&key, Cap::lines(plan.parts[shard].urls))
        .await?
        .ok_or_else(|| bucket.corrupt(&key, "missing: the plan names it".into()))?;
    String::from_utf8(bytes.to_vec()).map_err(|e| bucket.corrupt(&key, e.to_string()).into())
}

/// The shard to work on: `given`, else the job array's index from the environment.
pub fn shard_from(
    given: Option<usize>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<usize, PlanError> {
    if let Some(shard) = given {
        return Ok(shard);
    }
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Some(value) = env(var) {
            return value.trim().parse().map_err(|_| PlanError::BadShard { var, value });
        }
    }
    Err(PlanError::NoShard)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan and each part's text, written to an in-memory bucket.
    async fn written(text: &str, shards: usize) -> Result<(Plan, Vec<String>), PlanError> {
        let bucket = super::super::tests::memory();
        let urls = count_urls(text.as_bytes()).unwrap();
        let list = || Ok(text.as_bytes());
        let plan = write(&bucket, "bears", "urls.txt", list, urls, shards).await?;
        let mut texts = Vec::new();
        for shard in 0..plan.parts.len() {
            texts.push(part(&bucket, &plan, shard).await?);
        }
        assert_eq!(write(&bucket, "bears", "urls.txt", list, urls, shards).await?, plan);
        Ok((plan, texts))
    }

    #[tokio::test]
    async fn parts_are_contiguous_nearly_equal_and_keep_line_numbers() {
        let text = "# bears\nhttp://a/1\nhttp://a/2\n\nhttp://a/3\nhttp://a/4\nhttp://a/5\n# end\n";
        let (plan, texts) = written(text, 2).await.unwrap();
        assert_eq!(plan.urls, 5);
        assert_eq!(plan.parts, [Part { first_line: 1, urls: 2 }, Part { first_line: 4, urls: 3 }]);
        assert_eq!(texts[0], "# bears\nhttp://a/1\nhttp://a/2\n");
        assert_eq!(texts[1], "\nhttp://a/3\nhttp://a/4\nhttp://a/5\n# end\n");
        assert_eq!(texts.concat(), text, "the parts are the list, verbatim");
        let (more, _) = written(text, 9).await.unwrap();
        assert_eq!(more.parts.len(), 5, "never more shards than URLs");
        assert!(more.parts.iter().all(|p| p.urls == 1));
        assert!(matches!(written("# nothing\n", 2).await, Err(PlanError::Empty(_))));
        assert!(matches!(written("http://a/1", 0).await, Err(PlanError::NoShards)));
    }

    #[test]
    fn the_shard_comes_from_the_flag_then_slurm_then_kubernetes() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |var: &str| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(shard_from(Some(7), env(&[("SLURM_ARRAY_TASK_ID", "3")])).unwrap(), 7);
        let both = env(&[("SLURM_ARRAY_TASK_ID", "3"), ("JOB_COMPLETION_INDEX", "5")]);
        assert_eq!(shard_from(None, both).unwrap(), 3);
        assert_eq!(shard_from(None, env(&[("JOB_COMPLETION_INDEX", "5")])).unwrap(), 5);
        let err = shard_from(None, env(&[("SLURM_ARRAY_TASK_ID", "x")])).unwrap_err();
        assert_eq!(err.to_string(), "SLURM_ARRAY_TASK_ID=\"x\" is not a shard number");
        assert!(matches!(shard_from(None, env(&[])), Err(PlanError::NoShard)));
    }

    #[tokio::test]
    async fn the_same_plan_again_is_a_no_op_and_a_different_one_is_refused() {
        let bucket = super::super::tests::memory();
        let list = || Ok("http://a/1\nhttp://a/2\n".as_bytes());
        let plan = write(&bucket, "bears", "urls.txt", list, 2, 2).await.unwrap();
        assert_eq!(write(&bucket, "bears", "urls.txt", list, 2, 2).await.unwrap(), plan);
        assert_eq!(read(&bucket, "bears").await.unwrap(), plan);
        assert_eq!(part(&bucket, &plan, 1).await.unwrap(), "http://a/2\n");
        assert!(matches!(
            part(&bucket, &plan, 2).await,
            Err(PlanError::OutOfRange { last: 1, .. })
        ));
        let err = write(&bucket, "bears", "urls.txt", list, 2, 1).await.unwrap_err();
        assert!(err.to_string().contains("different shard plan (2 shards of 2 URLs"), "{err}");
        assert_eq!(part(&bucket, &plan, 0).await.unwrap(), "http://a/1\n", "left untouched");
        assert!(matches!(read(&bucket, "polar").await, Err(PlanError::NoPlan { .. })));
    }
}
