//! `trustpool`: the command-line tool. Exit codes: 0 success, 1 refused (a check failed,
//! e.g. a quote does not verify), 2 usage or unusable input.

mod cli;
mod commands;
mod compute_cli;
mod view;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

/// How a command ended.
enum Outcome {
    /// Done; exit 0.
    Success,
    /// A check failed; the message names it. Exit 1.
    Refused(String),
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(&args) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Refused(reason)) => {
            eprintln!("trustpool: {reason}");
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("trustpool: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes command output to stdout. A closed pipe (`trustpool … | head`) ends output
/// quietly instead of panicking as `println!` would.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
