//! Entry point: build the runtime, parse the command line and run the chosen command.

use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match settle::runtime::build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("settle: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(settle::cli::run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("settle: {e:#}");
            ExitCode::FAILURE
        }
    }
}
