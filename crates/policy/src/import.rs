//! Import from a golden host: turn a host's latest verified evidence into a policy for an
//! administrator to review and accept.

use std::collections::BTreeMap;

use trustpool_evidence::event_log::decode;
use trustpool_evidence::{EventLog, EventType, HashAlg, PcrIndex, PcrValues};

use crate::appraise::Evidence;
use crate::model::{EventRule, Part, PartPolicy, PcrRule, Policy, PolicyError};

/// Which PCRs go where, and how the VMM part is matched.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The bank to take values from.
    pub bank: HashAlg,
    /// BIOS PCRs (OAT default: PCR 0).
    pub bios_pcrs: Vec<PcrIndex>,
    /// VMM/OS PCRs (TXT: 17, 18, 19; UEFI without TXT: 4, 8, 9).
    pub vmm_pcrs: Vec<PcrIndex>,
    /// Match the VMM PCRs event by event (so another allowed kernel can be added later)
    /// instead of by value. Needs the event log.
    pub vmm_events: bool,
}

/// Builds a policy from a golden host's verified evidence.
///
/// # Errors
/// `Document` when a PCR was not quoted, or the log is needed and missing; a
/// `PolicyError` when a part ends up empty.
pub fn from_evidence(
    name: &str,
    version: u32,
    evidence: &Evidence<'_>,
    options: &ImportOptions,
) -> Result<Policy, PolicyError> {
    from_values(
        name,
        version,
        evidence.quote.pcrs(),
        evidence.log.map(|l| l.log()),
        options,
    )
}

/// Builds a draft policy from PCR values and a log that were verified earlier (the
/// attestation server keeps each host's latest verified evidence). The result is a draft
/// for an administrator to review, not a trust decision, so it takes plain values.
///
/// # Errors
/// As [`from_evidence`].
pub fn from_values(
    name: &str,
    version: u32,
    pcrs: &PcrValues,
    log: Option<&EventLog<'_>>,
    options: &ImportOptions,
) -> Result<Policy, PolicyError> {
    let part =
        |which: Part, pcr_list: &[PcrIndex], events: bool| -> Result<PartPolicy, PolicyError> {
            let mut rules = BTreeMap::new();
            for pcr in pcr_list {
                let missing = || PolicyError::Document {
                    field: format!("{which} PCR {pcr}"),
                    reason: format!("not in the golden host's quote ({})", options.bank),
                };
                let value = pcrs.get(options.bank, *pcr).ok_or_else(missing)?;
                let rule = if events {
                    let log = log.ok_or_else(|| PolicyError::Document {
                        field: format!("{which} PCR {pcr}"),
                        reason: "event rules need the host's event log".to_owned(),
                    })?;
                    let mut event_rules: Vec<EventRule> = Vec::new();
                    for event in log
                        .events
                        .iter()
                        .filter(|e| e.pcr == *pcr && e.event_type != EventType::EV_NO_ACTION)
                    {
                        let Some(digest) = event.digest(options.bank) else {
                            continue;
                        };
                        event_rules.push(EventRule {
                            event_type: event.event_type,
                            description: Some(decode::description(event)),
                            digests: vec![*digest],
                            required: true,
                        });
                    }
                    if event_rules.is_empty() {
                        PcrRule::Value(*value)
                    } else {
                        PcrRule::Events(event_rules)
                    }
                } else {
                    PcrRule::Value(*value)
                };
                rules.insert((options.bank, *pcr), rule);
            }
            PartPolicy::new(which, rules)
        };
    Ok(Policy {
        name: name.to_owned(),
        version,
        bios: part(Part::Bios, &options.bios_pcrs, false)?,
        vmm: part(Part::Vmm, &options.vmm_pcrs, options.vmm_events)?,
    })
}
