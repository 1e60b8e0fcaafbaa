//! `trustpool-agent`. Exit codes: 0 success, 1 failure (the reason on stderr), 2 usage.

use std::process::ExitCode;

use clap::Parser as _;
use trustpool_agent::cli::{Cli, init_tracing, main as run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trustpool-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
