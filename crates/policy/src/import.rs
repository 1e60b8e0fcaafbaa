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

/// The UEFI boot chain a VMM/OS part falls back to when the golden host made no dynamic
/// launch (PCR 17–19 at their reset values): boot manager and OS loaders (4), Secure Boot
/// state and keys (7), and what grub and the kernel measure (8, 9). TCG PC Client Platform
/// Firmware Profile §3.3.4.
pub const UEFI_BOOT_CHAIN: [u8; 4] = [4, 7, 8, 9];

/// A draft policy and what the import decided on the administrator's behalf.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The policy.
    pub policy: Policy,
    /// Why PCRs were left out or taken instead (for review).
    pub notes: Vec<String>,
}

/// A PCR at its reset value — all zeros (PCR 0–16, 23) or all ones (17–22 before a dynamic
/// launch; TCG PC Client PTP §3.7.3) — says only that nothing was measured into it. A
/// Value rule on it is satisfied by any host that measured nothing there, so it is refused.
fn is_reset(value: &trustpool_evidence::Digest) -> bool {
    let bytes = value.as_bytes();
    bytes.iter().all(|b| *b == 0) || bytes.iter().all(|b| *b == 0xff)
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
    draft(name, version, pcrs, log, options).map(|d| d.policy)
}

/// As [`from_values`], with the notes of what the import left out or took instead: a PCR
/// at its reset value is left out (saying so); when every VMM/OS PCR asked for is at its
/// reset value (17–19 on a host without a dynamic launch), the VMM/OS part takes the UEFI
/// boot chain ([`UEFI_BOOT_CHAIN`], those quoted and measured) instead.
///
/// # Errors
/// As [`from_evidence`]; `Document` when a part has nothing measured at all.
pub fn draft(
    name: &str,
    version: u32,
    pcrs: &PcrValues,
    log: Option<&EventLog<'_>>,
    options: &ImportOptions,
) -> Result<Draft, PolicyError> {
    let mut notes = Vec::new();
    let measured = |list: &[PcrIndex]| -> Vec<PcrIndex> {
        list.iter()
            .copied()
            .filter(|p| pcrs.get(options.bank, *p).is_none_or(|v| !is_reset(v)))
            .collect()
    };
    let mut note_reset = |which: Part, asked: &[PcrIndex], kept: &[PcrIndex]| {
        let left: Vec<String> = asked
            .iter()
            .filter(|p| !kept.contains(p))
            .map(ToString::to_string)
            .collect();
        if !left.is_empty() {
            notes.push(format!(
                "{which}: PCR {} ({}) at the reset value (nothing measured): left out",
                left.join(", "),
                options.bank
            ));
        }
    };
    let bios_pcrs = measured(&options.bios_pcrs);
    note_reset(Part::Bios, &options.bios_pcrs, &bios_pcrs);
    let mut vmm_pcrs = measured(&options.vmm_pcrs);
    note_reset(Part::Vmm, &options.vmm_pcrs, &vmm_pcrs);
    if vmm_pcrs.is_empty() && !options.vmm_pcrs.is_empty() {
        let chain: Vec<PcrIndex> = UEFI_BOOT_CHAIN
            .iter()
            .filter_map(|i| PcrIndex::new(*i))
            .filter(|p| pcrs.get(options.bank, *p).is_some_and(|v| !is_reset(v)))
            .collect();
        if !chain.is_empty() {
            notes.push(format!(
                "{}: no dynamic launch measured; the part takes the UEFI boot chain instead: PCR {}",
                Part::Vmm,
                chain
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        vmm_pcrs = chain;
    }
    for (which, list, asked) in [
        (Part::Bios, &bios_pcrs, &options.bios_pcrs),
        (Part::Vmm, &vmm_pcrs, &options.vmm_pcrs),
    ] {
        if list.is_empty() && !asked.is_empty() {
            return Err(PolicyError::Document {
                field: which.to_string(),
                reason: "every PCR asked for is at its reset value: nothing was measured"
                    .to_owned(),
            });
        }
    }
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
                        // A measured boot extends in a fixed order: the draft keeps it.
                        PcrRule::Sequence(event_rules)
                    }
                } else {
                    PcrRule::Value(*value)
                };
                rules.insert((options.bank, *pcr), rule);
            }
            PartPolicy::new(which, rules)
        };
    Ok(Draft {
        policy: Policy {
            name: name.to_owned(),
            version,
            bios: part(Part::Bios, &bios_pcrs, false)?,
            vmm: part(Part::Vmm, &vmm_pcrs, options.vmm_events)?,
        },
        notes,
    })
}
