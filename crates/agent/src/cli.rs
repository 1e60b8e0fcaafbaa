//! Command-line interface.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;

/// trustpool-agent: the trusted-compute-pool agent on a compute host. It owns the TPM,
/// answers the attestation server's challenges with TPM quotes and the firmware event log,
/// registers with the server, and reports the host's resources to the scheduler.
#[derive(Debug, Parser)]
#[command(name = "trustpool-agent", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent (until SIGTERM or Ctrl-C).
    Run(ConfigArgs),
    /// Validate the configuration file, open and parse every file it names, and exit (0 if
    /// everything checked; else each problem on stderr, naming its option).
    CheckConfig(ConfigArgs),
    /// Development hosts on swtpm only: emulate the measured boot in a manifest (power-cycle
    /// the swtpm, extend PCRs like firmware/SINIT/tboot, write the event log).
    MeasureBoot {
        /// The agent configuration (its TCTI and event log path are used).
        #[command(flatten)]
        config: ConfigArgs,
        /// The boot manifest (TOML).
        #[arg(long, value_name = "boot.toml")]
        manifest: PathBuf,
    },
}

/// Where the configuration is, and flags that override it.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/trustpool/agent.toml"
    )]
    pub config: PathBuf,
    /// Override `tpm.tcti`.
    #[arg(long, value_name = "TCTI")]
    pub tcti: Option<String>,
}

impl ConfigArgs {
    /// Loads the file and applies overrides.
    ///
    /// # Errors
    /// The configuration error.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(&self.config)?;
        if let Some(tcti) = &self.tcti {
            config.tcti.clone_from(tcti);
        }
        Ok(config)
    }
}

/// Initialises tracing: `RUST_LOG` (default `info`), text or JSON.
pub fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// What failed, with context.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => crate::run(args.load()?).await,
        Command::CheckConfig(args) => {
            let config = args.load()?;
            let shown = args.config.display();
            match crate::check_config::check(&config) {
                Ok(lines) => {
                    use std::io::Write as _;
                    let text = format!(
                        "{shown}: configuration OK (host {}, tcti {}, listen {})\nchecked: {}\n",
                        config.host_name,
                        config.tcti,
                        config.listen,
                        lines.join("\nchecked: ")
                    );
                    let _ = std::io::stdout().write_all(text.as_bytes());
                    Ok(())
                }
                Err(problems) => {
                    let count = problems.0.len();
                    for problem in problems.0 {
                        eprintln!("trustpool-agent: {shown}: {problem}");
                    }
                    anyhow::bail!("{shown}: {count} problem(s)")
                }
            }
        }
        Command::MeasureBoot { config, manifest } => {
            let config = config.load()?;
            let manifest = crate::measure::Manifest::load(&manifest)?;
            let (tcti, log) = (config.tcti.clone(), config.event_log.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                crate::measure::measure_boot(&tcti, &manifest, &log)
            })
            .await?
            .context("emulated measured boot")?;
            tracing::info!(events = outcome.events, log = %outcome.event_log.display(), "emulated measured boot done");
            Ok(())
        }
    }
}
