//! Each host's opt-out rules (its robots.txt training signals and its
//! `/.well-known/tdmrep.json`, see `net::optout`), asked for once: the first candidate of
//! a host fetches both while the others of that host wait, and the answer is kept in the
//! index's `hosts` tree for [`RULES_LIFETIME`], so a rerun asks again only a day later. A
//! host that answered (any status: a 404 means no rules) is remembered; one that could not
//! be reached is asked again by the next run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use url::Url;

use super::Context;
use crate::net::HostRules;
use crate::store::{StoreError, Tree, now};

/// How long a host's rules are trusted before a run asks again, in seconds.
pub const RULES_LIFETIME: u64 = 24 * 60 * 60;

/// How much of a robots.txt or tdmrep.json is read (as Google reads 500 KiB of a
/// robots.txt): a host cannot make every check of its paths slow.
const RULES_MAX_BYTES: usize = 512 * 1024;

/// What the index keeps of a host: its rules and when they were read.
#[derive(Debug, Serialize, Deserialize)]
struct HostRecord {
    fetched_at: u64,
    rules: HostRules,
}

/// The rules of the hosts seen by one command, shared by its runs.
#[derive(Default)]
pub struct Hosts {
    known: Mutex<HashMap<String, Arc<OnceCell<HostRules>>>>,
}

impl Hosts {
    /// The honoured opt-out that reserves `url` on its host, if any.
    pub async fn reserving(&self, ctx: &Context, url: &Url) -> Result<Option<String>, StoreError> {
        if !ctx.config.opt_outs.honour {
            return Ok(None);
        }
        let origin = url.origin().ascii_serialization();
        let cell =
            self.known.lock().expect("hosts lock").entry(origin.clone()).or_default().clone();
        let rules = cell.get_or_try_init(|| rules_of(ctx, url, &origin)).await?;
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Ok(rules.reserving(&path, &ctx.config.opt_outs))
    }
}

/// The host's rules from the index while fresh, else from the host itself.
async fn rules_of(ctx: &Context, url: &Url, origin: &str) -> Result<HostRules, StoreError> {
    let index = &ctx.store.index;
    match index.record::<HostRecord>(&Tree::Hosts, origin) {
        Ok(Some(kept)) if now().saturating_sub(kept.fetched_at) < RULES_LIFETIME => {
            return Ok(kept.rules);
        }
        Ok(_) | Err(StoreError::Corrupt { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut rules = HostRules::default();
    let (robots, tdmrep) = tokio::join!(
        text_at(ctx, url, "/robots.txt"),
        text_at(ctx, url, "/.well-known/tdmrep.json")
    );
    if let Some(Some(text)) = &robots {
        rules.read_robots(text);
    }
    if let Some(Some(text)) = &tdmrep {
        rules.read_tdmrep(text);
    }
    if robots.is_some() && tdmrep.is_some() {
        index.put(&Tree::Hosts, origin, &HostRecord { fetched_at: now(), rules: rules.clone() })?;
    }
    Ok(rules)
}

/// The text at `path` on `url`'s host, its first [`RULES_MAX_BYTES`]: `Some(None)` when
/// the host answered without it (404 or another status), `None` when it could not be
/// reached.
async fn text_at(ctx: &Context, url: &Url, path: &str) -> Option<Option<String>> {
    let at = url.join(path).ok()?;
    match ctx.http.get_page(&at).await {
        Ok(mut page) if page.status == 200 => {
            let mut end = page.text.len().min(RULES_MAX_BYTES);
            while !page.text.is_char_boundary(end) {
                end -= 1;
            }
            page.text.truncate(end);
            Some(Some(page.text))
        }
        Ok(_) => Some(None),
        Err(_) => None,
    }
}
