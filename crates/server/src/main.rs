//! Entry point: parse the command line and run the chosen command.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match settle::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("settle: {e:#}");
            ExitCode::FAILURE
        }
    }
}
