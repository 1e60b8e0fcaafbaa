//! The known-good database: policies (named, versioned), assignment to hosts, import from a
//! golden host, approval, deletion, on-demand attestation.

use serde::{Deserialize, Serialize};
use trustpool_api::oat::TrustLevel;
use trustpool_evidence::{EventLog, HashAlg, PcrIndex, PcrValues, replay};
use trustpool_policy::{ImportOptions, Policy, PolicyDocument, draft};

use super::{Service, ServiceError};
use crate::store::{HostRecord, HostState, VerdictRecord, now_ms};

/// `POST /v1/policies/import`: which host, the new policy's name, and the PCR split.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The golden host.
    pub host: String,
    /// The policy name.
    pub name: String,
    /// Bank (default sha256).
    #[serde(default = "sha256")]
    pub bank: String,
    /// BIOS PCRs (default \[0\]).
    #[serde(default = "bios_default")]
    pub bios_pcrs: Vec<u8>,
    /// VMM PCRs (default \[17, 18, 19\]).
    #[serde(default = "vmm_default")]
    pub vmm_pcrs: Vec<u8>,
    /// Match the VMM PCRs event by event.
    #[serde(default)]
    pub vmm_events: bool,
    /// Import even from a host that has policies and is not trusted now (its evidence
    /// would bless whatever it booted).
    #[serde(default)]
    pub force: bool,
}

fn sha256() -> String {
    "sha256".to_owned()
}
fn bios_default() -> Vec<u8> {
    vec![0]
}
fn vmm_default() -> Vec<u8> {
    vec![17, 18, 19]
}

impl Service {
    /// The latest version of every policy.
    ///
    /// # Errors
    /// `Store`, or `Policy` for a stored document that no longer validates.
    pub async fn policies(&self) -> Result<Vec<Policy>, ServiceError> {
        self.store
            .latest_policies()
            .await?
            .iter()
            .map(|(_, _, doc)| {
                let doc: PolicyDocument = serde_json::from_str(doc)
                    .map_err(|e| ServiceError::Rejected(format!("stored policy: {e}")))?;
                Ok(Policy::try_from(&doc)?)
            })
            .collect()
    }

    /// Stores a policy document as the next version of its name.
    ///
    /// # Errors
    /// `Policy` for an invalid document.
    pub async fn create_policy(
        &self,
        actor: &str,
        mut doc: PolicyDocument,
    ) -> Result<PolicyDocument, ServiceError> {
        let current = self
            .store
            .latest_policies()
            .await?
            .into_iter()
            .find(|(n, _, _)| *n == doc.name)
            .map_or(0, |(_, v, _)| v);
        doc.version = u32::try_from(current.saturating_add(1)).unwrap_or(u32::MAX);
        let policy = Policy::try_from(&doc)?;
        let json = serde_json::to_string(&PolicyDocument::from(&policy))
            .map_err(|e| ServiceError::Rejected(e.to_string()))?;
        self.store
            .put_policy(&policy.name, policy.version, &json)
            .await?;
        if let Ok(mut p) = self.policy_cache.write() {
            *p = None;
        }
        self.store
            .audit(
                actor,
                "policy_created",
                &policy.name,
                &format!("version {}", policy.version),
            )
            .await?;
        Ok(PolicyDocument::from(&policy))
    }

    /// Builds a policy from a host's latest verified evidence (not stored: the
    /// administrator reviews it and posts it to `/v1/policies`).
    ///
    /// # Errors
    /// `NotFound` for an unknown host or one never attested; `Policy` when a PCR is missing.
    pub async fn import_from_host(
        &self,
        actor: &str,
        req: &ImportRequest,
    ) -> Result<PolicyDocument, ServiceError> {
        let host = self.host_named(&req.host).await?;
        // A host judged against policies and not trusted now (or not recently): importing
        // its evidence would make what it booted the known-good. A host with no policy yet
        // (the first golden host) is the bootstrap case.
        let level = self
            .cache
            .host_by_id(&host.agent_id)
            .map_or(TrustLevel::Unknown, |h| {
                h.level_at(
                    now_ms(),
                    i64::try_from(self.config.verdict_ttl.as_millis()).unwrap_or(i64::MAX),
                )
            });
        if !host.policies.is_empty() && level != TrustLevel::Trusted && !req.force {
            return Err(ServiceError::Conflict(format!(
                "host {} is {} now against its policies ({}); importing its evidence would make what it booted known-good: check it, then import with force",
                host.host_name,
                level.as_str(),
                host.policies.join(", ")
            )));
        }
        let (_, selection, pcrs_json, log) =
            self.store.evidence(&host.agent_id).await?.ok_or_else(|| {
                ServiceError::NotFound(format!("verified evidence of {}", req.host))
            })?;
        let bank = HashAlg::from_name(&req.bank).ok_or_else(|| {
            ServiceError::Rejected("bank must be sha1, sha256, sha384 or sha512".to_owned())
        })?;
        let pcr_list = |list: &[u8]| {
            list.iter()
                .map(|i| {
                    PcrIndex::new(*i)
                        .ok_or_else(|| ServiceError::Rejected(format!("PCR {i} does not exist")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let options = ImportOptions {
            bank,
            bios_pcrs: pcr_list(&req.bios_pcrs)?,
            vmm_pcrs: pcr_list(&req.vmm_pcrs)?,
            vmm_events: req.vmm_events,
        };
        // What attestation stored after verifying it: the quoted values and the log that
        // replayed to them (checked again here).
        let _ = selection;
        let values = parse_pcrs(&pcrs_json)?;
        let parsed = log
            .as_deref()
            .map(EventLog::parse)
            .transpose()
            .map_err(|e| ServiceError::Rejected(format!("stored event log: {e}")))?;
        if let Some(l) = &parsed {
            replay(l)
                .and_then(|r| r.compare(&values))
                .map_err(|e| ServiceError::Rejected(format!("stored event log: {e}")))?;
        }
        let draft = draft(&req.name, 1, &values, parsed.as_ref(), &options)?;
        self.store
            .audit(
                actor,
                "policy_imported",
                &host.host_name,
                &format!(
                    "draft {} from agent {}{}",
                    req.name,
                    host.agent_id,
                    draft
                        .notes
                        .iter()
                        .map(|n| format!("; {n}"))
                        .collect::<String>()
                ),
            )
            .await?;
        let mut document = PolicyDocument::from(&draft.policy);
        document.notes = draft.notes;
        Ok(document)
    }

    /// Sets the policies a host accepts.
    ///
    /// # Errors
    /// `NotFound` for an unknown host or policy.
    pub async fn assign_policies(
        &self,
        actor: &str,
        host: &str,
        names: Vec<String>,
    ) -> Result<HostRecord, ServiceError> {
        let mut record = self.host_named(host).await?;
        let known = self.store.latest_policies().await?;
        if let Some(missing) = names
            .iter()
            .find(|n| !known.iter().any(|(k, _, _)| k == *n))
        {
            return Err(ServiceError::NotFound(format!("policy {missing}")));
        }
        record.policies = names;
        record.updated_at = now_ms();
        // Only the policies column: a concurrent alias change or deletion is not undone.
        if !self
            .store
            .set_policies(&record.agent_id, &record.policies, record.updated_at)
            .await?
        {
            return Err(ServiceError::NotFound(format!("host {host}")));
        }
        self.store
            .audit(
                actor,
                "policies_assigned",
                &record.host_name,
                &record.policies.join(","),
            )
            .await?;
        Ok(record)
    }

    /// Approves a host waiting for approval.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn approve(&self, actor: &str, host: &str) -> Result<HostRecord, ServiceError> {
        let mut record = self.host_named(host).await?;
        record.state = HostState::Enrolled;
        record.updated_at = now_ms();
        if !self
            .store
            .set_state(&record.agent_id, record.state, record.updated_at)
            .await?
        {
            return Err(ServiceError::NotFound(format!("host {host}")));
        }
        self.store
            .audit(actor, "approved", &record.host_name, "")
            .await?;
        self.refresh_cache().await?;
        Ok(record)
    }

    /// Deletes a host (it may then re-enroll, with another TPM).
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn delete_host(&self, actor: &str, host: &str) -> Result<(), ServiceError> {
        let record = self.host_named(host).await?;
        self.store.delete_host(&record.agent_id).await?;
        self.store
            .audit(
                actor,
                "deleted",
                &record.host_name,
                &format!("agent {}", record.agent_id),
            )
            .await?;
        self.refresh_cache().await?;
        Ok(())
    }

    /// Attests a host now (on demand).
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when the host is not enrolled.
    pub async fn attest_now(&self, actor: &str, host: &str) -> Result<VerdictRecord, ServiceError> {
        let record = self.host_named(host).await?;
        if record.state != HostState::Enrolled {
            return Err(ServiceError::Conflict(format!(
                "host {host} is not enrolled ({})",
                record.state.as_str()
            )));
        }
        // The host as it is in the database now (a change made a moment ago included).
        self.refresh_cache().await?;
        let enrolled = self
            .cache
            .host_by_id(&record.agent_id)
            .ok_or_else(|| ServiceError::NotFound(format!("host {host}")))?;
        let verdict = self.attest(&enrolled).await;
        self.store
            .audit(
                actor,
                "attested_on_demand",
                &record.host_name,
                verdict.level.as_str(),
            )
            .await?;
        Ok(verdict)
    }
}

pub(super) fn parse_pcrs(json: &str) -> Result<PcrValues, ServiceError> {
    let map: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_json::from_str(json).map_err(|_| ServiceError::Rejected("stored PCRs".to_owned()))?;
    let mut values = PcrValues::new();
    for (bank, pcrs) in map {
        let alg = HashAlg::from_name(&bank)
            .ok_or_else(|| ServiceError::Rejected("stored bank".to_owned()))?;
        for (i, hex) in pcrs {
            let index = i
                .parse()
                .ok()
                .and_then(PcrIndex::new)
                .ok_or_else(|| ServiceError::Rejected("stored PCR".to_owned()))?;
            values.insert(
                index,
                trustpool_evidence::Digest::from_hex(alg, &hex)
                    .ok_or_else(|| ServiceError::Rejected("stored digest".to_owned()))?,
            );
        }
    }
    Ok(values)
}
