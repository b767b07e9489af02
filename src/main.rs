//! The `pipeline` binary: parse arguments, set up logging, run, map the outcome to an
//! exit code. Everything else lives in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = pipeline::commands::cli::Cli::parse();
    // Off a terminal (cron), warnings stay out of the log: the summary already says what
    // went wrong, per dataset.
    let terminal = std::io::stderr().is_terminal();
    let level = match cli.verbose {
        0 if cli.quiet => "error",
        0 if terminal => "warn",
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("pipeline={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal)
        .with_target(false)
        .init();
    match pipeline::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {}", pipeline::printable::printable(&format!("{error:#}")));
            pipeline::commands::exit::for_error(&error)
        }
    }
}
