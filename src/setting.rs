//! A setting of `pipeline.toml` that its section refuses: the key, its value, what is
//! allowed. Each section's type lives with the stage that obeys it and checks itself
//! (`check() -> Result<(), Invalid>`); `config` composes the sections and adds the file's
//! name to the message. Imports nothing of the crate.

/// `key = value: allowed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {allowed}")]
pub struct Invalid {
    pub key: &'static str,
    pub value: String,
    pub allowed: String,
}

impl Invalid {
    /// `Err` of the setting `key`, whose value is `value`, and what is `allowed`.
    pub fn err<T>(
        key: &'static str,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Result<T, Invalid> {
        Err(Invalid { key, value: value.to_string(), allowed: allowed.into() })
    }
}
