//! What every server does hourly: re-reads the EK CA and CRL files and re-checks every
//! enrolled host's EK certificate against them (a TPM whose EK certificate was revoked
//! after it enrolled becomes untrusted, naming why); deletes enrollment challenges past
//! their expiry and audit rows past `attestation.audit_days`. (Verdict history is pruned
//! by the challenger.)

use std::sync::Arc;
use std::time::Duration;

use super::Service;
use crate::store::{StoreError, now_ms};

/// How often.
const EVERY: Duration = Duration::from_secs(3600);

/// Runs until the task is aborted.
pub async fn run(service: Arc<Service>) {
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        ticker.tick().await;
        if let Err(e) = service.recheck_ek_certificates().await {
            tracing::error!(error = %crate::error_chain(&e), "EK certificate re-check failed");
        }
        if let Err(e) = service.maintain().await {
            tracing::error!(error = %crate::error_chain(&e), "database maintenance failed");
        }
    }
}

impl Service {
    /// Re-reads the EK CA and CRL files (a file that no longer loads keeps the previous set,
    /// logged) and re-validates every enrolled host's EK certificate; returns how many are
    /// refused now. Those hosts are untrusted at their next challenge, with the reason.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn recheck_ek_certificates(&self) -> Result<usize, StoreError> {
        let c = &self.config;
        match crate::ekcert::EkCaStore::load(&c.ek_ca, &c.dev_ek_ca)
            .and_then(|s| s.with_crls(&c.ek_crl))
        {
            Ok(fresh) => {
                if let Ok(mut cas) = self.ek_cas.write() {
                    *cas = Arc::new(fresh);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "EK CA or CRL files do not load; keeping the previous ones");
            }
        }
        let cas = self.ek_cas();
        let now = now_ms() / 1000;
        let mut refused = std::collections::HashMap::new();
        // Streamed, one row at a time: at 100,000 hosts the whole table at once would be
        // hundreds of MB (only enrolled hosts are challenged, so only they are checked).
        let mut rows = self.store.enrolled_hosts();
        let mut seen = 0usize;
        while let Some(row) = futures_util::StreamExt::next(&mut rows).await {
            let host = match row {
                Ok(host) => host,
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), "a host row is unreadable; its EK is not re-checked");
                    continue;
                }
            };
            seen = seen.wrapping_add(1);
            if seen.is_multiple_of(256) {
                tokio::task::yield_now().await;
            }
            let verdict = match (
                host.ek_certificate.as_deref(),
                trustpool_evidence::Public::parse_tpm2b(&host.ek_public),
            ) {
                (Some(cert), Ok(ek)) => cas
                    .validate(cert, &ek, now)
                    .err()
                    .map(|e| format!("EK certificate no longer valid: {}", crate::error_chain(&e))),
                (None, _) => Some("no EK certificate on record".to_owned()),
                (_, Err(e)) => Some(format!("enrolled EK unreadable: {e}")),
            };
            if let Some(reason) = verdict {
                tracing::warn!(host = %host.host_name, %reason, "EK certificate refused");
                refused.insert(host.agent_id, reason);
            }
        }
        let count = refused.len();
        if let Ok(mut r) = self.ek_refused.write() {
            *r = refused;
        }
        Ok(count)
    }

    /// Deletes expired enrollment challenges and audit rows past retention; returns how
    /// many of each.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn maintain(&self) -> Result<(u64, u64), StoreError> {
        let now = now_ms();
        let challenges = self.store.purge_challenges(now).await?;
        let keep = i64::try_from(self.config.audit_retention.as_millis()).unwrap_or(i64::MAX);
        let audit = self.store.prune_audit(now.saturating_sub(keep)).await?;
        if challenges > 0 || audit > 0 {
            tracing::info!(
                challenges,
                audit,
                "deleted expired enrollment challenges and audit rows past retention"
            );
        }
        Ok((challenges, audit))
    }
}
