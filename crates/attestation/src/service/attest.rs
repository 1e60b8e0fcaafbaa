//! Attesting one host: a fresh single-use nonce, the agent's quote, `trustpool-evidence`
//! (signature under the enrolled AK, nonce, selection, PCR digest, event log replay, clock
//! continuity) and `trustpool-policy` (both parts of an accepted policy). Every failure
//! becomes a verdict: `unknown` when nothing current is known (agent unreachable),
//! `untrusted` with the reason otherwise. Never a stale `trusted`.

use std::collections::BTreeMap;
use std::sync::Arc;

use trustpool_api::agent::{QuoteRequest, QuoteResponse};
use trustpool_api::oat::TrustLevel;
use trustpool_api::{HashAlgorithm, Nonce, PcrBankSelection, PcrSelection as ApiSelection};
use trustpool_client::AgentClient;
use trustpool_evidence::{
    Challenge, ClockInfo, Digest, EventLog, HashAlg, PcrIndex, PcrSelection, PcrSet, PcrValues,
    QuoteEvidence, replay_banks, verify_quote,
};
use trustpool_policy::{Evidence, Policy, Verdict, VerifiedLog, appraise};

use super::Service;
use super::fleet::FleetHost;
use crate::store::{VerdictRecord, VerdictWrite, new_id, now_ms};

/// PCRs always quoted (so a golden host can be imported): SRTM 0–7, the UEFI OS loader
/// 8–9, and the DRTM 17–19.
const DEFAULT_PCRS: [u8; 13] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 18, 19];

fn api_bank(alg: HashAlg) -> HashAlgorithm {
    match alg {
        HashAlg::Sha1 => HashAlgorithm::Sha1,
        HashAlg::Sha384 => HashAlgorithm::Sha384,
        HashAlg::Sha512 => HashAlgorithm::Sha512,
        _ => HashAlgorithm::Sha256,
    }
}

/// The selection to ask for: the default PCRs in SHA-256, plus every PCR the host's
/// policies name (in their banks).
#[must_use]
pub fn selection_for(policies: &[Policy]) -> PcrSelection {
    let mut banks: BTreeMap<HashAlg, PcrSet> = BTreeMap::new();
    banks.insert(
        HashAlg::Sha256,
        PcrSet::from_indices(DEFAULT_PCRS.iter().filter_map(|i| PcrIndex::new(*i))),
    );
    for policy in policies {
        for (bank, pcr) in policy.required_pcrs() {
            let set = banks.entry(bank).or_default();
            *set = set.with(pcr);
        }
    }
    PcrSelection::new(banks.into_iter().collect()).unwrap_or_default()
}

fn api_selection(selection: &PcrSelection) -> Option<ApiSelection> {
    ApiSelection::new(
        selection
            .banks()
            .iter()
            .map(|(alg, set)| PcrBankSelection {
                bank: api_bank(*alg),
                pcrs: set.iter().map(PcrIndex::get).collect(),
            })
            .collect(),
    )
    .ok()
}

fn values(response: &QuoteResponse) -> Result<PcrValues, String> {
    let mut values = PcrValues::new();
    for bank in &response.pcrs {
        let alg = HashAlg::from_name(bank.bank.name()).ok_or("unknown bank")?;
        for (i, v) in &bank.values {
            let index = PcrIndex::new(*i).ok_or_else(|| format!("PCR {i} does not exist"))?;
            values.insert(
                index,
                Digest::new(alg, v.as_slice())
                    .ok_or_else(|| format!("PCR {alg}:{i} has the wrong size"))?,
            );
        }
    }
    Ok(values)
}

fn pcrs_json(values: &PcrValues) -> String {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for alg in values.algs() {
        out.insert(
            alg.name().to_owned(),
            values
                .bank(alg)
                .map(|(i, d)| (i.to_string(), d.to_hex()))
                .collect(),
        );
    }
    serde_json::to_string(&out).unwrap_or_default()
}

/// Whether a challenge got an answer from the host's registered agent. The challenger
/// backs off hosts whose agents do not answer and gives them a budget of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    /// An answer arrived, whatever it proved: a quote, or a prompt answer with another
    /// certificate than the pinned one (untrusted, but not stalling).
    Answered,
    /// No answer: connection refused, timeout, TLS failure, an HTTP error or an undecodable
    /// answer.
    NoAnswer,
    /// The agent was not asked: the host's enrolled AK or certificate is unusable, or this
    /// server could not prepare the challenge (policies unreadable, no randomness).
    NotAsked,
}

/// A stored verdict and whether the agent answered the challenge that made it.
#[derive(Debug, Clone)]
pub struct Attested {
    /// The verdict, as stored.
    pub verdict: VerdictRecord,
    /// Whether the agent answered.
    pub contact: Contact,
}

/// What one attestation concluded, before it is stored.
struct Outcome {
    level: TrustLevel,
    policy: Option<String>,
    reasons: Vec<String>,
    clock: Option<ClockInfo>,
    pcrs: Option<String>,
    contact: Contact,
}

impl Outcome {
    fn unknown(reason: String) -> Self {
        Self {
            level: TrustLevel::Unknown,
            policy: None,
            reasons: vec![reason],
            clock: None,
            pcrs: None,
            contact: Contact::NotAsked,
        }
    }
    fn untrusted(reason: String) -> Self {
        Self {
            level: TrustLevel::Untrusted,
            policy: None,
            reasons: vec![reason],
            clock: None,
            pcrs: None,
            contact: Contact::NotAsked,
        }
    }
    fn with(self, contact: Contact) -> Self {
        Self { contact, ..self }
    }
}

impl Service {
    /// The accepted policies of a host (latest versions), parsed.
    async fn host_policies(&self, host: &FleetHost) -> Result<Vec<Policy>, String> {
        let all = self
            .cached_policies()
            .await
            .map_err(|e| format!("loading policies: {e}"))?;
        Ok(all
            .iter()
            .filter(|p| host.policies.contains(&p.name))
            .cloned()
            .collect())
    }

    /// Every latest policy, parsed once per change (not per challenge).
    async fn cached_policies(&self) -> Result<Arc<Vec<Policy>>, super::ServiceError> {
        if let Ok(cache) = self.policy_cache.read()
            && let Some((_, policies)) = cache.as_ref()
        {
            return Ok(policies.clone());
        }
        let versions = self.store.policy_versions().await?;
        let policies = Arc::new(self.policies().await?);
        if let Ok(mut cache) = self.policy_cache.write() {
            *cache = Some((versions, policies.clone()));
        }
        Ok(policies)
    }

    /// Challenges and appraises one host, stores and returns the verdict.
    pub async fn attest(&self, host: &FleetHost) -> VerdictRecord {
        self.attest_reporting(host).await.verdict
    }

    /// As [`Service::attest`], and says whether the agent answered (for the challenger).
    pub async fn attest_reporting(&self, host: &FleetHost) -> Attested {
        let started = std::time::Instant::now();
        let outcome = self.challenge(host).await;
        let now = now_ms();
        let mut verdict = VerdictRecord {
            id: new_id(),
            agent_id: host.agent_id.to_string(),
            at: now,
            until: now,
            repeats: 1,
            level: outcome.level,
            policy: outcome.policy,
            reasons: outcome.reasons,
            reset_count: outcome.clock.map(|c| i64::from(c.reset_count)),
            restart_count: outcome.clock.map(|c| i64::from(c.restart_count)),
            clock: outcome
                .clock
                .map(|c| i64::try_from(c.clock).unwrap_or(i64::MAX)),
            pcrs: outcome.pcrs,
        };
        // The same outcome as last time extends the stored run instead of adding a row.
        let content = verdict.run_digest();
        let write = VerdictWrite {
            verdict: verdict.clone(),
            repeats: host.run_repeated_by(&content),
        };
        let (ack, stored) = tokio::sync::oneshot::channel();
        let stored_as = match self.verdict_writer.send((write, ack)).await {
            Ok(()) => stored.await.ok().flatten(),
            Err(_) => None,
        };
        match stored_as {
            Some(id) => {
                host.set_run(id.clone(), content);
                verdict.id = id;
            }
            None => tracing::error!(host = %host.host_name, "verdict not stored"),
        }
        self.metrics.record(verdict.level, started.elapsed());
        if let Some(change) = self.cache.record(&verdict) {
            // No subscriber is not an error.
            let _ = self.changes.send(change);
        }
        tracing::info!(host = %host.host_name, level = verdict.level.as_str(), reasons = verdict.reasons.len(), "attestation decided");
        Attested {
            verdict,
            contact: outcome.contact,
        }
    }

    async fn challenge(&self, host: &FleetHost) -> Outcome {
        if let Some(reason) = self
            .ek_refused
            .read()
            .ok()
            .and_then(|r| r.get(host.agent_id.as_ref()).cloned())
        {
            return Outcome::untrusted(reason);
        }
        let key = match host.key() {
            Ok(k) => k,
            Err(e) => return Outcome::untrusted(e),
        };
        let policies = match self.host_policies(host).await {
            Ok(p) => p,
            Err(e) => return Outcome::unknown(e),
        };
        let selection = selection_for(&policies);
        let Some(wire_selection) = api_selection(&selection) else {
            return Outcome::unknown("no PCR selection".to_owned());
        };
        let mut nonce = [0u8; 32];
        if aws_lc_rs::rand::fill(&mut nonce).is_err() {
            return Outcome::unknown("no randomness".to_owned());
        }
        let Ok(wire_nonce) = Nonce::new(nonce.to_vec()) else {
            return Outcome::unknown("nonce".to_owned());
        };
        // The agent must answer with the TLS certificate it registered (pinned): another
        // machine at its URL is refused before its answer is read.
        let Some(pinned) = host.pinned_certificate() else {
            return Outcome::untrusted("the registered agent certificate is unusable".to_owned());
        };
        // One shared pool: connections and the TLS configuration are reused across challenges.
        let client = AgentClient::with_pool(&host.agent_url, &self.agent_pool);
        let request = QuoteRequest {
            nonce: wire_nonce,
            selection: wire_selection,
            include_event_log: true,
        };
        let response = match tokio::time::timeout(
            self.config.agent_timeout,
            client.quote_pinned(&request, &pinned),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e @ trustpool_client::ClientError::Pinning { .. })) => {
                return Outcome::untrusted(e.to_string()).with(Contact::Answered);
            }
            Ok(Err(e)) => {
                return Outcome::unknown(format!(
                    "agent did not answer the challenge: {}",
                    crate::error_chain(&e)
                ))
                .with(Contact::NoAnswer);
            }
            Err(_) => {
                return Outcome::unknown("agent did not answer the challenge in time".to_owned())
                    .with(Contact::NoAnswer);
            }
        };
        let pcrs = match values(&response) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::untrusted(format!("PCR values: {e}")).with(Contact::Answered);
            }
        };
        // The nonce was used once, here, and is dropped with this function.
        let quote = match verify_quote(
            &key,
            &Challenge {
                nonce: &nonce,
                selection: &selection,
            },
            &QuoteEvidence {
                attest: response.attest.as_slice(),
                signature: response.signature.as_slice(),
                pcrs: &pcrs,
            },
        ) {
            Ok(q) => q,
            Err(e) => {
                return Outcome::untrusted(format!("quote rejected: {}", crate::error_chain(&e)))
                    .with(Contact::Answered);
            }
        };
        let mut outcome = Outcome {
            level: TrustLevel::Untrusted,
            policy: None,
            reasons: Vec::new(),
            clock: Some(quote.clock_info()),
            pcrs: Some(pcrs_json(quote.pcrs())),
            contact: Contact::Answered,
        };
        if let Some(previous) = self.last_clock(host).await
            && let Err(e) = quote.clock_info().since(&previous)
        {
            // The rejected quote's clock is not recorded: the baseline stays the last
            // accepted quote, on every server and across restarts (else the next quote would
            // be "continuous" with the rollback and the host would flip back to trusted).
            // Only an administrator moves it (`trustpool host-clock-reset`).
            outcome.clock = None;
            outcome.reasons.push(format!(
                "quote rejected: {e} (if the TPM was cleared or replaced, an administrator accepts it: trustpool host-clock-reset {})",
                host.host_name
            ));
            return outcome;
        }
        // TPMS_CLOCK_INFO.safe = NO: the TPM may have reported a later Clock before (it lost
        // power without saving it: TPM 2.0 Part 1 §36.6), so the continuity just checked
        // cannot be relied on. Not trusted; the baseline is kept.
        if !quote.clock_info().safe {
            outcome.clock = None;
            outcome.reasons.push(
                "quote rejected: the TPM clock is not safe (clockInfo.safe = NO: it may have gone backwards unnoticed)"
                    .to_owned(),
            );
            return outcome;
        }
        host.set_clock(quote.clock_info());
        let log_bytes = response.event_log.as_ref().map(|l| l.0.clone());
        let log = match &log_bytes {
            Some(bytes) => match EventLog::parse(bytes) {
                Ok(log) => Some(log),
                Err(e) => {
                    outcome.reasons.push(format!("event log rejected: {e}"));
                    return outcome;
                }
            },
            None => None,
        };
        let banks: Vec<HashAlg> = selection.banks().iter().map(|(alg, _)| *alg).collect();
        let proof = match &log {
            Some(log) => match replay_banks(log, &banks).and_then(|r| r.verify_against(&quote)) {
                Ok(proof) => Some(proof),
                Err(e) => {
                    outcome.reasons.push(format!("event log rejected: {e}"));
                    return outcome;
                }
            },
            None => None,
        };
        // Keep the latest verified evidence (for import-from-host); skip identical rewrites.
        let stored_log = if proof.is_some() {
            log_bytes.as_deref()
        } else {
            None
        };
        let pcrs_text = outcome.pcrs.as_deref().unwrap_or("{}");
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(
            aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                &[pcrs_text.as_bytes(), stored_log.unwrap_or_default()].concat(),
            )
            .as_ref(),
        );
        if !host.evidence_stored(&fingerprint)
            && self
                .store
                .put_evidence(
                    &host.agent_id,
                    &selection.to_string(),
                    pcrs_text,
                    stored_log,
                )
                .await
                .is_ok()
        {
            host.set_evidence_stored(fingerprint);
        }
        let verified_log = match (&log, proof) {
            (Some(log), Some(proof)) => Some(VerifiedLog::new(log, proof)),
            _ => None,
        };
        let verdict = appraise(
            &policies,
            &Evidence {
                quote: &quote,
                log: verified_log,
            },
        );
        match &verdict {
            Verdict::Trusted { policy, version } => {
                outcome.level = TrustLevel::Trusted;
                outcome.policy = Some(format!("{policy}@{version}"));
            }
            _ => outcome.reasons = verdict.reasons(),
        }
        outcome
    }

    async fn last_clock(&self, host: &FleetHost) -> Option<ClockInfo> {
        if let Some(clock) = host.clock() {
            return Some(clock);
        }
        let history = self.store.verdict_history(&host.agent_id, 10).await.ok()?;
        let accepted_after = host.clock_reset_at.unwrap_or(i64::MIN);
        let last = history
            .iter()
            .filter(|v| v.until > accepted_after)
            .find(|v| v.clock.is_some())?;
        Some(ClockInfo {
            clock: u64::try_from(last.clock?).ok()?,
            reset_count: u32::try_from(last.reset_count?).ok()?,
            restart_count: u32::try_from(last.restart_count?).ok()?,
            safe: true,
        })
    }
}
