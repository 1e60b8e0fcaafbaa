//! `trustpool eventlog show`: what a log measured, event by event, and the PCR values it
//! replays to.

use std::fmt::Write as _;

use anyhow::Context as _;
use trustpool_evidence::event_log::decode;
use trustpool_evidence::{EventLog, PcrIndex, replay};

use crate::Outcome;
use crate::cli::{EventlogShowArgs, Output};
use crate::commands::read_input;
use crate::view;

pub(crate) fn show(args: &EventlogShowArgs) -> anyhow::Result<Outcome> {
    let bytes = read_input(&args.file)?;
    let log = EventLog::parse(&bytes)
        .with_context(|| format!("{} is not a TCG event log", args.file.display()))?;
    let replayed = match replay(&log) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Outcome::Refused(format!(
                "event log cannot be replayed: {e}"
            )));
        }
    };
    if args.output == Output::Json {
        crate::emit(&format!("{:#}\n", view::event_log(&log, Some(&replayed))));
        return Ok(Outcome::Success);
    }
    let banks = log.banks();
    let mut text = format!(
        "{:?} event log, {} events, banks {}\n",
        log.format,
        log.events.len(),
        banks
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for event in &log.events {
        let first = event
            .digests
            .first()
            .map(|d| d.to_hex())
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "#{:<4} PCR {:<2} {:<34} {:.16}…  {}",
            event.number,
            event.pcr,
            event.event_type.to_string(),
            first,
            decode::decode(event)
        );
    }
    text.push('\n');
    for bank in replayed.banks() {
        for i in 0..24u8 {
            let Some(index) = PcrIndex::new(i) else {
                continue;
            };
            if replayed.event_count(bank, index) == 0 {
                continue;
            }
            if let Some(value) = replayed.value(bank, index) {
                let _ = writeln!(
                    text,
                    "{bank}:{i:<2} = {value}  ({} events)",
                    replayed.event_count(bank, index)
                );
            }
        }
    }
    crate::emit(&text);
    Ok(Outcome::Success)
}
