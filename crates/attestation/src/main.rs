//! `trustpool-attestation`. Exit codes: 0 success, 1 failure (reason on stderr), 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trustpool_attestation::config::Config;

/// trustpool-attestation: the remote attestation server of a trusted compute pool.
#[derive(Debug, Parser)]
#[command(name = "trustpool-attestation", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGTERM or Ctrl-C.
    Run {
        /// Configuration file.
        #[arg(long, short = 'c', default_value = "/etc/trustpool/attestation.toml")]
        config: PathBuf,
    },
    /// Validate the configuration, open and parse every file it names, reach the
    /// database, and exit (0: everything checked; 1: each problem on stderr).
    CheckConfig {
        /// Configuration file.
        #[arg(long, short = 'c', default_value = "/etc/trustpool/attestation.toml")]
        config: PathBuf,
    },
    /// Print the CA certificate that issued the server's certificate (the last one in
    /// tls.cert): what nova.conf's `server_ca_file` / `attestation_server_ca_file` needs.
    CaCert {
        /// Configuration file.
        #[arg(long, short = 'c', default_value = "/etc/trustpool/attestation.toml")]
        config: PathBuf,
    },
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
    let result = match cli.command {
        Command::Run { config } => match Config::load(&config) {
            Ok(c) => trustpool_attestation::run(c).await,
            Err(e) => Err(e.into()),
        },
        Command::CaCert { config } => Config::load(&config)
            .map_err(Into::into)
            .and_then(|c| trustpool_attestation::ca_certificate(&c))
            .map(|pem| {
                use std::io::Write as _;
                let _ = std::io::stdout().write_all(pem.as_bytes());
            }),
        Command::CheckConfig { config } => return check_config(&config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trustpool-attestation: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `check-config`: what was checked on stdout, or every problem on stderr.
async fn check_config(path: &std::path::Path) -> ExitCode {
    let shown = path.display();
    let checked = match Config::load(path) {
        Ok(c) => trustpool_attestation::check_config::check(&c).await,
        Err(e) => {
            eprintln!("trustpool-attestation: {e}");
            return ExitCode::FAILURE;
        }
    };
    match checked {
        Ok(lines) => {
            use std::io::Write as _;
            let text = format!(
                "{shown}: configuration OK\nchecked: {}\n",
                lines.join("\nchecked: ")
            );
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in problems.0 {
                eprintln!("trustpool-attestation: {shown}: {problem}");
            }
            ExitCode::FAILURE
        }
    }
}
