//! The known-good database's model: a policy has a **BIOS** part (SRTM: PCR 0, optionally
//! 1–7) and a **VMM/OS** part (DRTM: PCR 17–19, or PCR 4/8/9 on UEFI hosts without TXT),
//! as OpenAttestation split them; a host is trusted only when both match. A PCR is matched
//! either by exact value or event by event (allowed digests per event type and
//! description: several hypervisor kernels can be allowed without listing every PCR value
//! they produce — Intel ISecL's "flavor" idea).

use std::collections::BTreeMap;
use std::fmt;

use trustpool_evidence::{Digest, EventType, HashAlg, PcrIndex};

/// Which half of a policy a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Firmware and platform (static root of trust).
    Bios,
    /// Measured launch, hypervisor and OS.
    Vmm,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bios => "BIOS",
            Self::Vmm => "VMM/OS",
        })
    }
}

/// An event the policy accepts in a PCR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRule {
    /// The event type.
    pub event_type: EventType,
    /// The event's description (`decode::description`), or any.
    pub description: Option<String>,
    /// Accepted digests in the PCR's bank (at least one).
    pub digests: Vec<Digest>,
    /// The event must occur (at least once).
    pub required: bool,
}

/// How one PCR is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcrRule {
    /// The quoted value must equal this.
    Value(Digest),
    /// Every event the (verified) log extends into this PCR must match a rule, and every
    /// required rule must match an event.
    Events(Vec<EventRule>),
    /// As `Events`, and in order: the rules matched, in log order, never go back (a boot
    /// loader measured after the kernel it loaded is refused). Several digests in one rule
    /// still allow alternatives at that step.
    Sequence(Vec<EventRule>),
}

/// One half of a policy: rules per (bank, PCR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartPolicy {
    pub(crate) rules: BTreeMap<(HashAlg, PcrIndex), PcrRule>,
}

impl PartPolicy {
    /// A part from rules.
    ///
    /// # Errors
    /// `Empty` without rules; `WrongBank` when a digest's algorithm is not its PCR's bank;
    /// `NoDigests` for an event rule that allows nothing.
    pub fn new(
        part: Part,
        rules: BTreeMap<(HashAlg, PcrIndex), PcrRule>,
    ) -> Result<Self, PolicyError> {
        if rules.is_empty() {
            return Err(PolicyError::Empty(part));
        }
        for ((bank, pcr), rule) in &rules {
            match rule {
                PcrRule::Value(d) if d.alg() != *bank => {
                    return Err(PolicyError::WrongBank {
                        part,
                        bank: *bank,
                        pcr: *pcr,
                    });
                }
                PcrRule::Value(_) => {}
                PcrRule::Events(events) | PcrRule::Sequence(events) => {
                    if events.is_empty() {
                        return Err(PolicyError::NoDigests { part, pcr: *pcr });
                    }
                    for e in events {
                        if e.digests.is_empty() {
                            return Err(PolicyError::NoDigests { part, pcr: *pcr });
                        }
                        if e.digests.iter().any(|d| d.alg() != *bank) {
                            return Err(PolicyError::WrongBank {
                                part,
                                bank: *bank,
                                pcr: *pcr,
                            });
                        }
                    }
                }
            }
        }
        Ok(Self { rules })
    }

    /// The rules.
    pub fn rules(&self) -> impl Iterator<Item = (HashAlg, PcrIndex, &PcrRule)> {
        self.rules.iter().map(|((b, p), r)| (*b, *p, r))
    }
}

/// A named, versioned known-good policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Name (`rhel9-kvm-golden`).
    pub name: String,
    /// Version (increments on every change).
    pub version: u32,
    /// Firmware half.
    pub bios: PartPolicy,
    /// Launch/hypervisor/OS half.
    pub vmm: PartPolicy,
}

impl Policy {
    /// The PCRs a quote must cover to be appraised against this policy.
    #[must_use]
    pub fn required_pcrs(&self) -> Vec<(HashAlg, PcrIndex)> {
        let mut all: Vec<(HashAlg, PcrIndex)> = self
            .bios
            .rules
            .keys()
            .chain(self.vmm.rules.keys())
            .copied()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Both parts with their names.
    pub(crate) fn parts(&self) -> [(Part, &PartPolicy); 2] {
        [(Part::Bios, &self.bios), (Part::Vmm, &self.vmm)]
    }
}

/// A policy that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A part with no rule would match everything: refused.
    #[error("the {0} part of a policy needs at least one PCR rule")]
    Empty(Part),
    /// A digest of another algorithm than its bank.
    #[error("{part} rule for {bank}:{pcr} has a digest of another bank")]
    WrongBank {
        /// Part.
        part: Part,
        /// Bank.
        bank: HashAlg,
        /// PCR.
        pcr: PcrIndex,
    },
    /// An event rule that allows no digest.
    #[error("{part} event rule for PCR {pcr} allows no digest")]
    NoDigests {
        /// Part.
        part: Part,
        /// PCR.
        pcr: PcrIndex,
    },
    /// A malformed policy document.
    #[error("{field}: {reason}")]
    Document {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}
