//! The `teamform` binary: parse flags, run, map the outcome to an exit code
//! (0 success, 1 error, 2 changes present with --detailed-exitcode).

use std::process::ExitCode;

use clap::Parser;
use teamform::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match teamform::run::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(teamform::run::EXIT_ERROR)
        }
    }
}
