//! `[report]` in pipeline.toml: how `pipeline report` pages galleries, and which datasets
//! every run is also scored on.

use serde::Deserialize;

use crate::setting::Invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Thumbnails per gallery page.
    pub page_size: usize,
    /// Datasets every run is also colorized and scored on, whole (its own dataset's test
    /// split always is): the paper's cross-domain set, polar bears.
    pub cross_domain: Vec<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig { page_size: 500, cross_domain: Vec::new() }
    }
}

impl ReportConfig {
    /// The offending key, its value and what is allowed.
    pub fn check(&self) -> Result<(), Invalid> {
        if !(1..=100_000).contains(&self.page_size) {
            return Invalid::err("report.page_size", self.page_size, "allowed: 1 to 100000");
        }
        for name in &self.cross_domain {
            if crate::dataset::check_name(name).is_err() {
                return Invalid::err("report.cross_domain", format!("{name:?}"), "dataset names");
            }
        }
        Ok(())
    }
}
