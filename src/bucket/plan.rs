//! The shard plan: a URL list cut into `shards` contiguous slices of (nearly) equal URL
//! counts, each stored verbatim with the line number it starts at, so that a worker's
//! ranks and error messages are the whole list's. The same list and shard count always
//! give the same plan.
//!
//! Which shard a worker takes: `--shard N`, else `SLURM_ARRAY_TASK_ID` (Slurm job arrays),
//! else `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Bucket, BucketError};

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

/// Cuts `text` into `shards` parts: the plan and each part's lines.
pub fn cut(
    dataset: &str,
    source: &str,
    text: &str,
    shards: usize,
) -> Result<(Plan, Vec<String>), PlanError> {
    if shards == 0 {
        return Err(PlanError::NoShards);
    }
    let lines: Vec<&str> = text.lines().collect();
    let url_lines: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let line = lines[i].trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .collect();
    let urls = url_lines.len();
    if urls == 0 {
        return Err(PlanError::Empty(source.to_owned()));
    }
    let shards = shards.min(urls);
    // Shard s takes URLs [urls*s/shards, urls*(s+1)/shards) and the lines from just after
    // the previous shard's last URL (the first shard: from the top; the last: to the end).
    let first_url = |s: usize| urls * s / shards;
    let start = |s: usize| if s == 0 { 0 } else { url_lines[first_url(s) - 1] + 1 };
    let (mut parts, mut texts) = (Vec::with_capacity(shards), Vec::with_capacity(shards));
    for s in 0..shards {
        let end = if s + 1 == shards { lines.len() } else { start(s + 1) };
        parts.push(Part { first_line: start(s) + 1, urls: first_url(s + 1) - first_url(s) });
        texts.push(lines[start(s)..end].iter().map(|line| format!("{line}\n")).collect());
    }
    let plan = Plan { dataset: dataset.to_owned(), source: source.to_owned(), urls, parts };
    Ok((plan, texts))
}

/// Stores the plan: the parts first, then `plan.json`, which makes them visible. Writing
/// the same plan again is a no-op; a different one is refused.
pub async fn write(bucket: &Bucket, plan: &Plan, texts: &[String]) -> Result<(), PlanError> {
    if let Some(existing) = bucket.get_json::<Plan>(&plan_key(&plan.dataset)).await? {
        if existing == *plan {
            return Ok(());
        }
        return Err(PlanError::Different {
            url: bucket.url().to_owned(),
            dataset: plan.dataset.clone(),
            shards: existing.parts.len(),
            urls: existing.urls,
            source_name: existing.source,
        });
    }
    for (shard, text) in texts.iter().enumerate() {
        bucket.put(&part_key(&plan.dataset, shard), Bytes::from(text.clone())).await?;
    }
    let json = serde_json::to_vec_pretty(plan).expect("a plan serializes");
    bucket.put(&plan_key(&plan.dataset), Bytes::from(json)).await?;
    Ok(())
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
        .get(&key)
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

    #[test]
    fn parts_are_contiguous_nearly_equal_and_keep_line_numbers() {
        let text = "# bears\nhttp://a/1\nhttp://a/2\n\nhttp://a/3\nhttp://a/4\nhttp://a/5\n# end\n";
        let (plan, texts) = cut("bears", "urls.txt", text, 2).unwrap();
        assert_eq!(plan.urls, 5);
        assert_eq!(plan.parts, [Part { first_line: 1, urls: 2 }, Part { first_line: 4, urls: 3 }]);
        assert_eq!(texts[0], "# bears\nhttp://a/1\nhttp://a/2\n");
        assert_eq!(texts[1], "\nhttp://a/3\nhttp://a/4\nhttp://a/5\n# end\n");
        assert_eq!(texts.concat(), text, "the parts are the list, verbatim");
        let (more, _) = cut("bears", "urls.txt", text, 9).unwrap();
        assert_eq!(more.parts.len(), 5, "never more shards than URLs");
        assert!(more.parts.iter().all(|p| p.urls == 1));
        assert!(matches!(cut("b", "e.txt", "# nothing\n", 2), Err(PlanError::Empty(_))));
        assert!(matches!(cut("b", "e.txt", "http://a/1", 0), Err(PlanError::NoShards)));
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
        let (plan, texts) = cut("bears", "urls.txt", "http://a/1\nhttp://a/2\n", 2).unwrap();
        write(&bucket, &plan, &texts).await.unwrap();
        write(&bucket, &plan, &texts).await.unwrap();
        assert_eq!(read(&bucket, "bears").await.unwrap(), plan);
        assert_eq!(part(&bucket, &plan, 1).await.unwrap(), "http://a/2\n");
        assert!(matches!(
            part(&bucket, &plan, 2).await,
            Err(PlanError::OutOfRange { last: 1, .. })
        ));
        let (other, texts) = cut("bears", "urls.txt", "http://a/1\nhttp://a/2\n", 1).unwrap();
        let err = write(&bucket, &other, &texts).await.unwrap_err();
        assert!(err.to_string().contains("different shard plan (2 shards of 2 URLs"), "{err}");
        assert!(matches!(read(&bucket, "polar").await, Err(PlanError::NoPlan { .. })));
    }
}
