//! stub
use super::*;
pub fn first_page(base: &Url, _q: &SearchQuery) -> Url { base.clone() }
pub fn parse_page(_u: &Url, _s: u16, _b: &str, _q: &SearchQuery) -> Result<EnginePage, EngineError> { Ok(EnginePage { hits: vec![], next: None }) }
