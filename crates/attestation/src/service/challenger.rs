//! The scheduler of attestations: every enrolled host is challenged every interval, with
//! jitter (so a fleet does not stampede), bounded concurrency, per-agent timeouts, and a
//! lease in the database so that each host is challenged by one server at a time; a dead
//! server's leases expire within one interval and another takes over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::Service;
use crate::store::{HostState, now_ms};

/// A random delay in `0..max`.
fn jitter(max: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(u64::from_le_bytes(bytes) % max_ms)
}

/// How often the host list and the trust cache are re-read from the database (verdicts
/// and enrollments by other servers, policy changes).
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Runs until the task is aborted.
pub async fn run(service: Arc<Service>) {
    let interval = service.config.interval;
    let permits = Arc::new(Semaphore::new(service.config.max_concurrency));
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut hosts: Vec<crate::store::HostRecord> = Vec::new();
    let mut reloaded: Option<Instant> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        if reloaded.is_none_or(|at| at.elapsed() >= RELOAD_EVERY) {
            reloaded = Some(Instant::now());
            if let Ok(mut p) = service.policy_cache.write() {
                *p = None;
            }
            match service.store.hosts().await {
                Ok(all) => {
                    match service.cache.reload_with(&service.store, &all).await {
                        Ok(changes) => {
                            for change in changes {
                                let _ = service.changes.send(change);
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %crate::error_chain(&e), "cannot reload verdicts")
                        }
                    }
                    hosts = all
                        .into_iter()
                        .filter(|h| h.state == HostState::Enrolled)
                        .collect();
                }
                Err(e) => tracing::error!(error = %crate::error_chain(&e), "cannot list hosts"),
            }
            let ids: std::collections::HashSet<&str> =
                hosts.iter().map(|h| h.agent_id.as_str()).collect();
            due.retain(|id, _| ids.contains(id.as_str()));
        }
        let now = Instant::now();
        let shared = service.store.is_shared();
        for host in &hosts {
            // A new host is attested soon after enrollment, then every interval.
            let next = *due
                .entry(host.agent_id.clone())
                .or_insert_with(|| now + jitter(Duration::from_secs(1)));
            if next > now {
                continue;
            }
            // On a shared database, one server at a time challenges a host.
            if shared {
                let lease_until = now_ms()
                    .saturating_add(i64::try_from((interval * 2).as_millis()).unwrap_or(i64::MAX));
                match service
                    .store
                    .lease(&host.agent_id, &service.config.server_id, lease_until)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        due.insert(host.agent_id.clone(), now + interval);
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %crate::error_chain(&e), "lease");
                        continue;
                    }
                }
            }
            // Wait for a free slot: at most max_concurrency challenges run at once, and a
            // new one starts as soon as one finishes (not at the next tick).
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            due.insert(
                host.agent_id.clone(),
                now + interval + jitter(interval / 10),
            );
            let service = service.clone();
            let host = host.clone();
            tokio::spawn(async move {
                service.attest(&host).await;
                drop(permit);
            });
        }
    }
}
