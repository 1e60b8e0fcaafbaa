//! `trustpool-scheduler --config-file /etc/nova/nova.conf [--check-config]`. Exit codes:
//! 0 success, 1 failure (reason on stderr), 2 usage.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use trustpool_scheduler::conf::Config;

/// trustpool-scheduler: Nova-shaped compute API and FilterScheduler with TrustedFilter.
#[derive(Debug, Parser)]
#[command(name = "trustpool-scheduler", version, about)]
struct Cli {
    /// nova.conf to read (oslo.config's flag name).
    #[arg(long = "config-file", default_value = "/etc/nova/nova.conf")]
    config_file: PathBuf,
    /// Validate the file, open every file it names (certificates, key, CA bundle), reach
    /// the database, print the effective filters, weighers and attestation endpoint, and
    /// exit (like `nginx -t`).
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(&cli.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trustpool-scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        return match trustpool_scheduler::conf::check(&config).await {
            Ok(checked) => {
                let text = format!(
                    "{}: configuration OK\n{}checked: {}\n",
                    cli.config_file.display(),
                    config.summary(),
                    checked.join("\nchecked: ")
                );
                let _ = std::io::stdout().write_all(text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for problem in problems.0 {
                    eprintln!(
                        "trustpool-scheduler: {}: {problem}",
                        cli.config_file.display()
                    );
                }
                ExitCode::FAILURE
            }
        };
    }
    match trustpool_scheduler::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trustpool-scheduler: {e:#}");
            ExitCode::FAILURE
        }
    }
}
