//! Which checkpoint of a run a command means: `best`, `last` or `epoch-N`. Always
//! compiled (the command line parses it in every build). Imports nothing of the crate.

/// Which checkpoint of a run: best, last or epoch-N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Best,
    Last,
    Epoch(usize),
}

impl Choice {
    /// `best`, `last` or `epoch-N`.
    pub fn parse(text: &str) -> Result<Choice, String> {
        match text {
            "best" => Ok(Choice::Best),
            "last" => Ok(Choice::Last),
            _ => text
                .strip_prefix("epoch-")
                .and_then(|n| n.parse().ok())
                .map(Choice::Epoch)
                .ok_or_else(|| "expected best, last or epoch-N".into()),
        }
    }
}
