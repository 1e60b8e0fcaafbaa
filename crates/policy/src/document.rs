//! The JSON form of a policy (API, database, files), validated into [`Policy`].
//!
//! ```json
//! {"name": "kvm-golden", "version": 1,
//!  "bios": {"pcrs": [{"bank": "sha256", "pcr": 0, "value": "<hex>"}]},
//!  "vmm":  {"pcrs": [{"bank": "sha256", "pcr": 18, "events": [
//!            {"type": "EV_IPL", "description": "vmlinuz", "digests": ["<hex>", "<hex>"], "required": true}],
//!            "ordered": true}]}}
//! ```
//!
//! `ordered`: the events must match the rules in their order (imports set it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trustpool_evidence::{Digest, EventType, HashAlg, PcrIndex};

use crate::model::{EventRule, Part, PartPolicy, PcrRule, Policy, PolicyError};

/// A policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Name.
    pub name: String,
    /// Version.
    pub version: u32,
    /// BIOS part.
    pub bios: PartDocument,
    /// VMM/OS part.
    pub vmm: PartDocument,
    /// What made this document (an import's decisions), for review; not appraised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartDocument {
    /// Its PCR rules.
    pub pcrs: Vec<PcrDocument>,
}

/// One PCR's rule: `value` or `events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcrDocument {
    /// Bank (`sha256`).
    pub bank: String,
    /// PCR index.
    pub pcr: u8,
    /// Exact value (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Event rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventDocument>>,
    /// With `events`: the events must match the rules in their order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordered: bool,
}

/// One event rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDocument {
    /// `EV_*` name or `0x…` number.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Description, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Allowed digests (hex).
    pub digests: Vec<String>,
    /// Must occur.
    #[serde(default)]
    pub required: bool,
}

fn doc_err(field: String, reason: &str) -> PolicyError {
    PolicyError::Document {
        field,
        reason: reason.to_owned(),
    }
}

fn event_type(text: &str) -> Option<EventType> {
    EventType::from_name(text).or_else(|| {
        u32::from_str_radix(text.strip_prefix("0x")?, 16)
            .ok()
            .map(EventType)
    })
}

fn part(which: Part, doc: &PartDocument) -> Result<PartPolicy, PolicyError> {
    let mut rules = BTreeMap::new();
    for (i, p) in doc.pcrs.iter().enumerate() {
        let at = |what: &str| {
            format!(
                "{}.pcrs[{i}].{what}",
                if which == Part::Bios { "bios" } else { "vmm" }
            )
        };
        let bank = HashAlg::from_name(&p.bank)
            .ok_or_else(|| doc_err(at("bank"), "not sha1, sha256, sha384 or sha512"))?;
        let pcr = PcrIndex::new(p.pcr).ok_or_else(|| doc_err(at("pcr"), "not a PCR (0-23)"))?;
        let rule = match (&p.value, &p.events) {
            (Some(value), None) => PcrRule::Value(
                Digest::from_hex(bank, value)
                    .ok_or_else(|| doc_err(at("value"), "not a digest of the bank's size"))?,
            ),
            (None, Some(events)) => {
                let rules = events
                    .iter()
                    .enumerate()
                    .map(|(j, e)| {
                        let ev_at = |what: &str| at(&format!("events[{j}].{what}"));
                        Ok(EventRule {
                            event_type: event_type(&e.event_type).ok_or_else(|| {
                                doc_err(ev_at("type"), "not an EV_* name or 0x number")
                            })?,
                            description: e.description.clone(),
                            digests: e
                                .digests
                                .iter()
                                .map(|d| {
                                    Digest::from_hex(bank, d).ok_or_else(|| {
                                        doc_err(ev_at("digests"), "not a digest of the bank's size")
                                    })
                                })
                                .collect::<Result<_, _>>()?,
                            required: e.required,
                        })
                    })
                    .collect::<Result<_, PolicyError>>()?;
                if p.ordered {
                    PcrRule::Sequence(rules)
                } else {
                    PcrRule::Events(rules)
                }
            }
            _ => return Err(doc_err(at("value"), "give exactly one of value and events")),
        };
        if rules.insert((bank, pcr), rule).is_some() {
            return Err(doc_err(at("pcr"), "listed twice"));
        }
    }
    PartPolicy::new(which, rules)
}

impl TryFrom<&PolicyDocument> for Policy {
    type Error = PolicyError;
    fn try_from(doc: &PolicyDocument) -> Result<Self, Self::Error> {
        if doc.name.is_empty() || doc.name.len() > 128 {
            return Err(doc_err("name".to_owned(), "must be 1-128 characters"));
        }
        Ok(Self {
            name: doc.name.clone(),
            version: doc.version,
            bios: part(Part::Bios, &doc.bios)?,
            vmm: part(Part::Vmm, &doc.vmm)?,
        })
    }
}

fn part_doc(p: &PartPolicy) -> PartDocument {
    PartDocument {
        pcrs: p
            .rules()
            .map(|(bank, pcr, rule)| match rule {
                PcrRule::Value(v) => PcrDocument {
                    bank: bank.name().to_owned(),
                    pcr: pcr.get(),
                    value: Some(v.to_hex()),
                    events: None,
                    ordered: false,
                },
                PcrRule::Events(events) | PcrRule::Sequence(events) => PcrDocument {
                    bank: bank.name().to_owned(),
                    pcr: pcr.get(),
                    value: None,
                    ordered: matches!(rule, PcrRule::Sequence(_)),
                    events: Some(
                        events
                            .iter()
                            .map(|e| EventDocument {
                                event_type: e.event_type.to_string(),
                                description: e.description.clone(),
                                digests: e.digests.iter().map(Digest::to_hex).collect(),
                                required: e.required,
                            })
                            .collect(),
                    ),
                },
            })
            .collect(),
    }
}

impl From<&Policy> for PolicyDocument {
    fn from(p: &Policy) -> Self {
        Self {
            name: p.name.clone(),
            version: p.version,
            bios: part_doc(&p.bios),
            vmm: part_doc(&p.vmm),
            notes: Vec::new(),
        }
    }
}
