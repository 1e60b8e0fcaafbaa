//! A host's latest verified evidence for an operator: the quoted PCR values, each accepted
//! policy's rules next to them with why they (do not) match, and the decoded event log.
//! A view — the verdict's reasons are what trust was decided on.

use serde_json::{Value, json};
use trustpool_evidence::EventLog;
use trustpool_evidence::event_log::decode;
use trustpool_policy::{PcrRule, explain};

use super::policies::parse_pcrs;
use super::{Service, ServiceError};
use crate::service::cache::rfc3339;

impl Service {
    /// `GET /v1/hosts/{name}/evidence`.
    ///
    /// # Errors
    /// `NotFound` for an unknown host or one without verified evidence yet.
    pub async fn host_evidence(&self, name: &str) -> Result<Value, ServiceError> {
        let host = self.host_named(name).await?;
        let (at, selection, pcrs_json, log) = self
            .store
            .evidence(&host.agent_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("verified evidence of {name}")))?;
        let values = parse_pcrs(&pcrs_json)?;
        let parsed = log
            .as_deref()
            .map(EventLog::parse)
            .transpose()
            .ok()
            .flatten();
        let policies: Vec<_> = self
            .policies()
            .await?
            .into_iter()
            .filter(|p| host.policies.contains(&p.name))
            .collect();
        let policy_views: Vec<Value> = policies
            .iter()
            .map(|policy| {
                let mut rules = Vec::new();
                for (part, rules_of) in [("BIOS", &policy.bios), ("VMM", &policy.vmm)] {
                    for (bank, pcr, rule) in rules_of.rules() {
                        let got = values.get(bank, pcr).map(|d| d.to_hex());
                        let (kind, expected, matches) = match rule {
                            PcrRule::Value(d) => (
                                "value",
                                json!(d.to_hex()),
                                json!(got.as_deref() == Some(d.to_hex().as_str())),
                            ),
                            PcrRule::Events(events) | PcrRule::Sequence(events) => (
                                if matches!(rule, PcrRule::Sequence(_)) { "sequence" } else { "events" },
                                json!(events.iter().map(|e| json!({
                                    "type": e.event_type.to_string(),
                                    "description": e.description,
                                    "digests": e.digests.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
                                    "required": e.required,
                                })).collect::<Vec<_>>()),
                                Value::Null,
                            ),
                        };
                        rules.push(json!({
                            "part": part, "bank": bank.name(), "pcr": pcr.get(), "rule": kind,
                            "expected": expected, "got": got, "matches": matches,
                        }));
                    }
                }
                let reasons: Vec<String> = explain(policy, &values, parsed.as_ref())
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                json!({
                    "policy": format!("{}@{}", policy.name, policy.version),
                    "matches": reasons.is_empty(),
                    "reasons": reasons,
                    "rules": rules,
                })
            })
            .collect();
        let mut banks = serde_json::Map::new();
        for alg in values.algs() {
            let bank: serde_json::Map<String, Value> = values
                .bank(alg)
                .map(|(i, d)| (i.to_string(), json!(d.to_hex())))
                .collect();
            banks.insert(alg.name().to_owned(), Value::Object(bank));
        }
        let events: Vec<Value> = parsed
            .as_ref()
            .map(|l| {
                l.events
                    .iter()
                    .map(|e| {
                        json!({
                            "number": e.number,
                            "pcr": e.pcr.get(),
                            "type": e.event_type.to_string(),
                            "digests": e.digests.iter().map(|d| (d.alg().name(), d.to_hex())).collect::<std::collections::BTreeMap<_, _>>(),
                            "data": decode::description(e),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({
            "host_name": host.host_name,
            "at": rfc3339(at),
            "selection": selection,
            "pcrs": banks,
            "policies": policy_views,
            "event_log": events,
        }))
    }
}
