//! One module per command group.

mod attestation;
mod eventlog;
mod quote;

use std::path::Path;

use anyhow::Context as _;

use crate::Outcome;
use crate::cli::{Cli, Command, EventlogCommand, QuoteCommand};

/// Files we read are evidence-sized; anything larger is not what the user meant.
const MAX_INPUT_FILE: u64 = 64 << 20;

pub(crate) fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Quote(QuoteCommand::Verify(args)) => quote::verify(args),
        Command::Eventlog(EventlogCommand::Show(args)) => eventlog::show(args),
        _ => attestation::run(cli),
    }
}

/// Reads an input file, naming it in the error.
pub(crate) fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > MAX_INPUT_FILE {
        anyhow::bail!(
            "{} is {len} bytes; inputs over {MAX_INPUT_FILE} bytes are refused",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
