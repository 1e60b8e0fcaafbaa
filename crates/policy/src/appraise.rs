//! Appraisal: verified evidence against one or several accepted policies (any-of, for
//! rolling upgrades). Only a complete match of both parts of one policy is trusted; every
//! other outcome is untrusted with the reasons.

use std::fmt;

use trustpool_evidence::event_log::decode;
use trustpool_evidence::{
    Digest, EventLog, EventType, HashAlg, LogMatchesQuote, PcrIndex, PcrValues, VerifiedQuote,
};

use crate::model::{Part, PcrRule, Policy};

/// An event log whose replay was checked against the quote being appraised.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedLog<'a> {
    log: &'a EventLog<'a>,
    _proof: LogMatchesQuote,
}

impl<'a> VerifiedLog<'a> {
    /// Pairs a log with the proof `ReplayedLog::verify_against` returned for it.
    #[must_use]
    pub fn new(log: &'a EventLog<'a>, proof: LogMatchesQuote) -> Self {
        Self { log, _proof: proof }
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> &'a EventLog<'a> {
        self.log
    }
}

/// What is appraised: a verified quote and, when the host sent one, its verified log.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The quote.
    pub quote: &'a VerifiedQuote,
    /// The log.
    pub log: Option<VerifiedLog<'a>>,
}

/// Why evidence does not match a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The policy needs a PCR the quote does not cover.
    PcrNotQuoted {
        /// Part.
        part: Part,
        /// Bank.
        bank: HashAlg,
        /// PCR.
        pcr: PcrIndex,
    },
    /// The PCR's value is not the known-good one.
    PcrMismatch {
        /// Part.
        part: Part,
        /// Bank.
        bank: HashAlg,
        /// PCR.
        pcr: PcrIndex,
        /// Known-good value.
        expected: Digest,
        /// Quoted value.
        got: Digest,
    },
    /// Event rules need the event log, and there is none.
    NoEventLog {
        /// Part.
        part: Part,
        /// PCR.
        pcr: PcrIndex,
    },
    /// An event no rule allows (unknown type/description, or a digest not listed).
    EventNotAllowed {
        /// Part.
        part: Part,
        /// Bank.
        bank: HashAlg,
        /// PCR.
        pcr: PcrIndex,
        /// Event number in the log.
        event: usize,
        /// Its type.
        event_type: EventType,
        /// Its description.
        description: String,
        /// Its digest in the bank.
        digest: Option<Digest>,
    },
    /// An event matched a rule that comes before one an earlier event matched (ordered
    /// rules).
    EventOutOfOrder {
        /// Part.
        part: Part,
        /// PCR.
        pcr: PcrIndex,
        /// Event number in the log.
        event: usize,
        /// Its type.
        event_type: EventType,
        /// Its description.
        description: String,
    },
    /// A required event did not occur.
    RequiredEventMissing {
        /// Part.
        part: Part,
        /// PCR.
        pcr: PcrIndex,
        /// Type.
        event_type: EventType,
        /// Description.
        description: Option<String>,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PcrNotQuoted { part, bank, pcr } => {
                write!(f, "{part}: PCR {pcr} ({bank}) was not quoted")
            }
            Self::PcrMismatch {
                part,
                bank,
                pcr,
                expected,
                got,
            } => write!(
                f,
                "{part}: PCR {pcr} ({bank}) differs from the policy: expected {expected}, got {got}"
            ),
            Self::NoEventLog { part, pcr } => write!(
                f,
                "{part}: PCR {pcr} is appraised event by event, but the host sent no event log"
            ),
            Self::EventNotAllowed {
                part,
                bank,
                pcr,
                event,
                event_type,
                description,
                digest,
            } => {
                write!(
                    f,
                    "{part}: event #{event} {event_type} \"{description}\" in PCR {pcr} is not allowed"
                )?;
                match digest {
                    Some(d) => write!(f, " ({bank} {d})"),
                    None => write!(f, " (no {bank} digest)"),
                }
            }
            Self::EventOutOfOrder {
                part,
                pcr,
                event,
                event_type,
                description,
            } => write!(
                f,
                "{part}: event #{event} {event_type} \"{description}\" in PCR {pcr} is out of order (the policy allows it only before an event measured earlier)"
            ),
            Self::RequiredEventMissing {
                part,
                pcr,
                event_type,
                description,
            } => {
                write!(f, "{part}: required event {event_type}")?;
                if let Some(d) = description {
                    write!(f, " \"{d}\"")?;
                }
                write!(f, " missing from PCR {pcr}")
            }
        }
    }
}

/// The outcome of appraising against a set of accepted policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both parts of this policy matched.
    Trusted {
        /// Policy name.
        policy: String,
        /// Its version.
        version: u32,
    },
    /// No accepted policy matched; the reasons of each, in order.
    Untrusted {
        /// (policy name, version, reasons).
        mismatches: Vec<(String, u32, Vec<Reason>)>,
    },
    /// There is no policy to appraise against: never trusted.
    NoPolicy,
}

impl Verdict {
    /// True only for `Trusted`.
    #[must_use]
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Trusted { .. })
    }

    /// All reasons, flattened, for display.
    #[must_use]
    pub fn reasons(&self) -> Vec<String> {
        match self {
            Self::Trusted { .. } => Vec::new(),
            Self::NoPolicy => vec!["no known-good policy is assigned to this host".to_owned()],
            Self::Untrusted { mismatches } => mismatches
                .iter()
                .flat_map(|(name, version, reasons)| {
                    reasons
                        .iter()
                        .map(move |r| format!("policy {name} v{version}: {r}"))
                })
                .collect(),
        }
    }
}

/// Appraises against one policy; `Ok` only when every rule of both parts matched.
///
/// # Errors
/// Every reason found (not just the first), so an operator sees the whole picture.
pub fn appraise_one(policy: &Policy, evidence: &Evidence<'_>) -> Result<(), Vec<Reason>> {
    let reasons = check(
        policy,
        evidence.quote.pcrs(),
        evidence.log.as_ref().map(|l| l.log),
    );
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Why stored evidence does (not) match `policy`, **for display only** (an operator's
/// "PCRs vs policy" view of evidence that was verified when it was stored). It takes
/// plain values, so it never yields a [`Verdict`]: trust is decided only by [`appraise`]
/// over a `VerifiedQuote`.
#[must_use]
pub fn explain(policy: &Policy, pcrs: &PcrValues, log: Option<&EventLog<'_>>) -> Vec<Reason> {
    check(policy, pcrs, log)
}

fn check(policy: &Policy, pcrs: &PcrValues, log: Option<&EventLog<'_>>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    for (part, rules) in policy.parts() {
        for (bank, pcr, rule) in rules.rules() {
            let Some(got) = pcrs.get(bank, pcr) else {
                reasons.push(Reason::PcrNotQuoted { part, bank, pcr });
                continue;
            };
            match rule {
                PcrRule::Value(expected) => {
                    if expected != got {
                        reasons.push(Reason::PcrMismatch {
                            part,
                            bank,
                            pcr,
                            expected: *expected,
                            got: *got,
                        });
                    }
                }
                PcrRule::Events(events) | PcrRule::Sequence(events) => {
                    let ordered = matches!(rule, PcrRule::Sequence(_));
                    let Some(log) = log else {
                        reasons.push(Reason::NoEventLog { part, pcr });
                        continue;
                    };
                    let mut matched = vec![false; events.len()];
                    let mut furthest = 0usize;
                    for event in log
                        .events
                        .iter()
                        .filter(|e| e.pcr == pcr && e.event_type != EventType::EV_NO_ACTION)
                    {
                        let description = decode::description(event);
                        let digest = event.digest(bank).copied();
                        let hit = events.iter().position(|rule| {
                            rule.event_type == event.event_type
                                && rule.description.as_ref().is_none_or(|d| *d == description)
                                && digest.is_some_and(|d| rule.digests.contains(&d))
                        });
                        if let Some(i) = hit
                            && ordered
                        {
                            if i < furthest {
                                reasons.push(Reason::EventOutOfOrder {
                                    part,
                                    pcr,
                                    event: event.number,
                                    event_type: event.event_type,
                                    description: description.clone(),
                                });
                            }
                            furthest = furthest.max(i);
                        }
                        match hit.and_then(|i| matched.get_mut(i)) {
                            Some(flag) => *flag = true,
                            None => reasons.push(Reason::EventNotAllowed {
                                part,
                                bank,
                                pcr,
                                event: event.number,
                                event_type: event.event_type,
                                description,
                                digest,
                            }),
                        }
                    }
                    for (rule, hit) in events.iter().zip(&matched) {
                        if rule.required && !hit {
                            reasons.push(Reason::RequiredEventMissing {
                                part,
                                pcr,
                                event_type: rule.event_type,
                                description: rule.description.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    reasons
}

/// Appraises against every accepted policy (any-of): trusted by the first that matches.
#[must_use]
pub fn appraise(policies: &[Policy], evidence: &Evidence<'_>) -> Verdict {
    if policies.is_empty() {
        return Verdict::NoPolicy;
    }
    let mut mismatches = Vec::new();
    for policy in policies {
        match appraise_one(policy, evidence) {
            Ok(()) => {
                return Verdict::Trusted {
                    policy: policy.name.clone(),
                    version: policy.version,
                };
            }
            Err(reasons) => mismatches.push((policy.name.clone(), policy.version, reasons)),
        }
    }
    Verdict::Untrusted { mismatches }
}
