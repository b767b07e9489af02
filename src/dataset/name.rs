//! Dataset and run names: they become folder names under the store and file names of the
//! report, so they keep to a safe alphabet. Every name from the command line, a query
//! file, a slug or a bucket's listing is checked here. Imports nothing of the crate.

/// Dataset and run names become folder names under the store: keep them to a safe
/// alphabet. Every name from the command line, a query file or a slug is checked here.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['-', '.'])
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok { Ok(()) } else { Err("use 1-100 of a-z 0-9 - _ . (not starting with - or .)") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        assert!(check_name("brown-bear").is_ok());
        assert!(check_name("../etc").is_err());
        assert!(check_name("Brown").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("a/b").is_err());
    }
}
