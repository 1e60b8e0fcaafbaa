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
use super::fleet::FleetHost;
use crate::store::now_ms;

/// A random delay in `0..max`.
fn jitter(max: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(u64::from_le_bytes(bytes) % max_ms)
}

/// How often the enrolled hosts, verdicts and policies are synced with the database
/// (verdicts and enrollments by other servers, policy changes).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// How often verdict history past the retention period is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// When a host is next due, and the version of it that was scheduled.
struct Due {
    at: Instant,
    host: Arc<FleetHost>,
}

/// Runs until the task is aborted.
pub async fn run(service: Arc<Service>) {
    let interval = service.config.interval;
    let permits = Arc::new(Semaphore::new(service.config.max_concurrency));
    let mut due: HashMap<Arc<str>, Due> = HashMap::new();
    let mut generation = None;
    let mut synced: Option<Instant> = None;
    let mut pruned: Option<Instant> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        if synced.is_none_or(|at| at.elapsed() >= SYNC_EVERY) {
            synced = Some(Instant::now());
            if let Err(e) = service.refresh_cache().await {
                tracing::error!(error = %crate::error_chain(&e), "cannot sync hosts and verdicts");
            }
        }
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(Instant::now());
            tokio::spawn(prune(service.clone()));
        }
        let now = Instant::now();
        if generation != Some(service.cache.generation()) {
            generation = Some(service.cache.generation());
            reschedule(&mut due, service.cache.hosts(), now);
        }
        let shared = service.store.is_shared();
        for slot in due.values_mut() {
            if slot.at > now {
                continue;
            }
            // On a shared database, one server at a time challenges a host.
            if shared {
                let lease_until = now_ms()
                    .saturating_add(i64::try_from((interval * 2).as_millis()).unwrap_or(i64::MAX));
                match service
                    .store
                    .lease(&slot.host.agent_id, &service.config.server_id, lease_until)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        slot.at = now + interval;
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
            slot.at = now + interval + jitter(interval / 10);
            let service = service.clone();
            let host = slot.host.clone();
            tokio::spawn(async move {
                service.attest(&host).await;
                drop(permit);
            });
        }
    }
}

/// Deletes the verdict runs that ended before the retention period.
async fn prune(service: Arc<Service>) {
    let keep = i64::try_from(service.config.history.as_millis()).unwrap_or(i64::MAX);
    match service
        .store
        .prune_verdicts(now_ms().saturating_sub(keep))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            verdicts = n,
            "pruned verdict history past the retention period"
        ),
        Err(e) => tracing::error!(error = %crate::error_chain(&e), "cannot prune verdict history"),
    }
}

/// Follows a new set of enrolled hosts: a new host, or one whose record changed (new
/// policies, new agent URL), is attested within a second; the others keep their turn.
fn reschedule(due: &mut HashMap<Arc<str>, Due>, hosts: Vec<Arc<FleetHost>>, now: Instant) {
    let mut next = HashMap::with_capacity(hosts.len());
    for host in hosts {
        let at = match due.remove(&host.agent_id) {
            Some(slot) if Arc::ptr_eq(&slot.host, &host) => slot.at,
            _ => now + jitter(Duration::from_secs(1)),
        };
        next.insert(host.agent_id.clone(), Due { at, host });
    }
    *due = next;
}
