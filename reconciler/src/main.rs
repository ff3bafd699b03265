//! The `teamform` binary: parse flags, run, map the outcome to an exit code
//! (0 success, 1 error, 2 changes present with --detailed-exitcode).

use std::process::ExitCode;

use clap::Parser;
use teamform::cli::Cli;
use teamform::run::EXIT_ERROR;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1, not clap's 2: 2 means "changes present".
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match teamform::run::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
