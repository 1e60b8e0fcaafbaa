//! One module per command group.

mod attestation;
mod compute;
mod compute_view;
mod dev;
mod eventlog;
mod quote;
mod table;

use std::path::Path;

use anyhow::Context as _;
use trustpool_client::ClientError;

use crate::Outcome;
use crate::cli::{Cli, Command, EventlogCommand, QuoteCommand};

/// Files we read are evidence-sized; anything larger is not what the user meant.
const MAX_INPUT_FILE: u64 = 64 << 20;

pub(crate) fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Quote(QuoteCommand::Verify(args)) => quote::verify(args),
        Command::Eventlog(EventlogCommand::Show(args)) => eventlog::show(args),
        Command::Compute(command) => compute::run(cli, command),
        Command::Dev(command) => dev::run(command),
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

/// A refused request (4xx) is exit 1 with the server's message; transport errors exit 2.
pub(crate) fn outcome<T>(
    result: Result<T, ClientError>,
    show: impl FnOnce(T) -> anyhow::Result<String>,
) -> anyhow::Result<Outcome> {
    match result {
        Ok(value) => {
            crate::emit(&show(value)?);
            Ok(Outcome::Success)
        }
        Err(ClientError::Status {
            status, message, ..
        }) if (400..500).contains(&status) => Ok(Outcome::Refused(message)),
        Err(e) => Err(e.into()),
    }
}

/// Pretty JSON with a trailing newline.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(value)?))
}
