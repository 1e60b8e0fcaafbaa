//! Replaying an event log into PCR values, and comparing them with quoted values.
//!
//! Initial values (TCG PC Client Platform TPM Profile rev. 1.05, §4.6.2, and PFP §3.3.4.1,
//! §10.4.5.3):
//! - PCR 0–16 and 23 start at zero, except PCR 0 when the log has a `StartupLocality`
//!   EV_NO_ACTION event: then it starts at `0…0 ‖ locality` (3 for an H-CRTM or Boot
//!   Guard start, 4 for an H-CRTM event sequence).
//! - PCR 17–22 (DRTM) hold all-ones until a dynamic launch, whose `_TPM_Hash_Start`
//!   resets them to zero before the first DRTM measurement. So they start at all-ones
//!   when the log records no event for any of them, and at zero when it does (a log that
//!   measures into them describes a dynamic launch).
//!
//! EV_NO_ACTION events are never extended (PFP §10.4.1).

use std::collections::BTreeMap;

use thiserror::Error;

use crate::alg::{Digest, HashAlg};
use crate::event_log::{EventLog, EventType};
use crate::tpm::pcr::{PCR_COUNT, PcrIndex, PcrValues};
use crate::verify::VerifiedQuote;

/// The signature of the StartupLocality EV_NO_ACTION event (PFP §10.4.5.3).
pub const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";

/// Why a log could not be replayed, or does not match.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A StartupLocality event came after PCR 0 had been extended.
    #[error("StartupLocality event #{event} comes after PCR 0 was extended")]
    LateStartupLocality {
        /// The event number.
        event: usize,
    },
    /// A StartupLocality event names a locality other than 0, 3 or 4.
    #[error("StartupLocality event #{event} names locality {locality}; only 0, 3 and 4 exist")]
    BadStartupLocality {
        /// The event number.
        event: usize,
        /// The locality.
        locality: u8,
    },
    /// The quote covers a bank the log has no digests for.
    #[error("the event log has no {bank} digests, but the quote covers that bank")]
    MissingBank {
        /// The bank.
        bank: HashAlg,
    },
    /// Replaying the log does not give the quoted value.
    #[error("{0}")]
    Mismatch(Box<PcrMismatch>),
}

/// Where a replay and the quoted PCR values part.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("event log replays PCR {bank}:{index} to {replayed}, but the quote says {quoted}{}", last_event_text(self.last_event, self.last_event_type))]
pub struct PcrMismatch {
    /// The bank.
    pub bank: HashAlg,
    /// The PCR.
    pub index: PcrIndex,
    /// The replayed value.
    pub replayed: Digest,
    /// The quoted value.
    pub quoted: Digest,
    /// Number of events the log extended into this PCR.
    pub events: usize,
    /// The last event extended into this PCR, where the divergence shows.
    pub last_event: Option<usize>,
    /// Its type.
    pub last_event_type: Option<EventType>,
}

fn last_event_text(event: Option<usize>, event_type: Option<EventType>) -> String {
    match (event, event_type) {
        (Some(n), Some(t)) => format!(" (last event extended into it: #{n} {t})"),
        _ => " (the log extends nothing into it)".to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PcrState {
    value: Digest,
    events: usize,
    last: Option<(usize, EventType)>,
}

/// PCR values computed from a log, per bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedLog {
    banks: BTreeMap<HashAlg, Vec<PcrState>>,
    startup_locality: Option<u8>,
}

/// Proof that a log's replay equals a verified quote's PCR values.
#[derive(Debug, Clone, Copy)]
pub struct LogMatchesQuote(());

/// Replays `log` into every bank it carries.
///
/// # Errors
/// `LateStartupLocality` or `BadStartupLocality` for a malformed locality event.
pub fn replay(log: &EventLog<'_>) -> Result<ReplayedLog, ReplayError> {
    replay_banks(log, &log.banks())
}

/// Replays `log` into the given banks only (those a quote covers: a verifier need not
/// hash banks it will not compare). Banks the log lacks are left out, and
/// [`ReplayedLog::compare`] reports them as `MissingBank`.
///
/// # Errors
/// As [`replay`].
pub fn replay_banks(log: &EventLog<'_>, banks: &[HashAlg]) -> Result<ReplayedLog, ReplayError> {
    let drtm = log
        .events
        .iter()
        .any(|e| e.pcr.is_drtm() && e.event_type != EventType::EV_NO_ACTION);
    let mut startup_locality = None;
    let mut pcr0_extended = false;
    for event in log.events.iter().skip(1) {
        if event.event_type == EventType::EV_NO_ACTION
            && event.pcr.get() == 0
            && event.data.starts_with(STARTUP_LOCALITY)
        {
            if pcr0_extended {
                return Err(ReplayError::LateStartupLocality {
                    event: event.number,
                });
            }
            let locality = event.data.get(STARTUP_LOCALITY.len()).copied().unwrap_or(0);
            if !matches!(locality, 0 | 3 | 4) {
                return Err(ReplayError::BadStartupLocality {
                    event: event.number,
                    locality,
                });
            }
            startup_locality = Some(locality);
        } else if event.pcr.get() == 0 && event.event_type != EventType::EV_NO_ACTION {
            pcr0_extended = true;
        }
    }
    let log_banks = log.banks();
    let mut replayed = BTreeMap::new();
    for alg in banks.iter().copied().filter(|b| log_banks.contains(b)) {
        let mut pcrs: Vec<PcrState> = (0..PCR_COUNT)
            .map(|i| {
                let index = PcrIndex::new(i);
                let mut value = if index.is_some_and(PcrIndex::is_drtm) && !drtm {
                    Digest::ones(alg)
                } else {
                    Digest::zero(alg)
                };
                if i == 0
                    && let Some(locality) = startup_locality
                {
                    let mut bytes = value.as_bytes().to_vec();
                    if let Some(last) = bytes.last_mut() {
                        *last = locality;
                    }
                    value = Digest::new(alg, &bytes).unwrap_or(value);
                }
                PcrState {
                    value,
                    events: 0,
                    last: None,
                }
            })
            .collect();
        // The header (event 0) is EV_NO_ACTION in a crypto-agile log; in a legacy log it
        // is an ordinary measurement and is extended like the rest.
        let skip_header = usize::from(log.spec_id.is_some());
        for event in log.events.iter().skip(skip_header) {
            if event.event_type == EventType::EV_NO_ACTION {
                continue;
            }
            let Some(digest) = event.digest(alg) else {
                continue;
            };
            if let Some(state) = pcrs.get_mut(usize::from(event.pcr.get())) {
                state.value = alg.extend(&state.value, digest.as_bytes());
                state.events = state.events.saturating_add(1);
                state.last = Some((event.number, event.event_type));
            }
        }
        replayed.insert(alg, pcrs);
    }
    Ok(ReplayedLog {
        banks: replayed,
        startup_locality,
    })
}

impl ReplayedLog {
    /// The replayed value of one PCR.
    #[must_use]
    pub fn value(&self, bank: HashAlg, index: PcrIndex) -> Option<&Digest> {
        self.banks
            .get(&bank)
            .and_then(|pcrs| pcrs.get(usize::from(index.get())))
            .map(|s| &s.value)
    }

    /// Number of events extended into one PCR.
    #[must_use]
    pub fn event_count(&self, bank: HashAlg, index: PcrIndex) -> usize {
        self.banks
            .get(&bank)
            .and_then(|pcrs| pcrs.get(usize::from(index.get())))
            .map_or(0, |s| s.events)
    }

    /// The banks replayed.
    pub fn banks(&self) -> impl Iterator<Item = HashAlg> + '_ {
        self.banks.keys().copied()
    }

    /// The StartupLocality the log declared, if any.
    #[must_use]
    pub fn startup_locality(&self) -> Option<u8> {
        self.startup_locality
    }

    /// All replayed values as [`PcrValues`].
    #[must_use]
    pub fn values(&self) -> PcrValues {
        let mut values = PcrValues::new();
        for pcrs in self.banks.values() {
            for (i, state) in (0..PCR_COUNT).zip(pcrs) {
                if let Some(index) = PcrIndex::new(i) {
                    values.insert(index, state.value);
                }
            }
        }
        values
    }

    /// Compares with PCR values: every given value must equal the replay.
    ///
    /// # Errors
    /// `MissingBank` or the first `Mismatch`, naming the PCR and its last event.
    pub fn compare(&self, pcrs: &PcrValues) -> Result<(), ReplayError> {
        for bank in pcrs.algs() {
            let replayed = self
                .banks
                .get(&bank)
                .ok_or(ReplayError::MissingBank { bank })?;
            for (index, quoted) in pcrs.bank(bank) {
                let Some(state) = replayed.get(usize::from(index.get())) else {
                    continue;
                };
                if state.value != *quoted {
                    return Err(ReplayError::Mismatch(Box::new(PcrMismatch {
                        bank,
                        index,
                        replayed: state.value,
                        quoted: *quoted,
                        events: state.events,
                        last_event: state.last.map(|(n, _)| n),
                        last_event_type: state.last.map(|(_, t)| t),
                    })));
                }
            }
        }
        Ok(())
    }

    /// Checks that the log accounts for every PCR of a verified quote.
    ///
    /// # Errors
    /// As [`ReplayedLog::compare`].
    pub fn verify_against(&self, quote: &VerifiedQuote) -> Result<LogMatchesQuote, ReplayError> {
        self.compare(quote.pcrs())?;
        Ok(LogMatchesQuote(()))
    }
}
