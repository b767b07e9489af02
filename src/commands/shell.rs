//! `pipeline completions SHELL` and `pipeline man`: generated from the command line's own
//! definition (clap_complete, clap_mangen), so they never fall behind it.

use clap::CommandFactory;

use super::cli::{Cli, CompletionsArgs};
use super::exit;

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "pipeline", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man() -> anyhow::Result<u8> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(exit::OK)
}
