//! What keeps the database from growing without bound, run hourly by every server:
//! enrollment challenges past their expiry (a registration never answered leaves one) and
//! audit rows past `attestation.audit_days`. (Verdict history is pruned by the challenger.)

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
        if let Err(e) = service.maintain().await {
            tracing::error!(error = %crate::error_chain(&e), "database maintenance failed");
        }
    }
}

impl Service {
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
