//! The scheduler of attestations: every enrolled host is challenged every interval, with
//! jitter (so a fleet does not stampede), bounded concurrency, per-agent timeouts, and a
//! lease in the database so that each host is challenged by one server at a time; a dead
//! server's leases expire within one interval and another takes over.
//!
//! Fairness (stalling agents must not make answering hosts late):
//!
//! - **One challenge in flight per host.** A host still being challenged is not challenged
//!   again. Its latest verdict stays what it was meanwhile, and ages: if the agent never
//!   answers, the verdict passes `verdict_ttl` and the host reads `unknown`, never a stale
//!   `trusted`.
//! - **Two budgets.** Hosts whose agents answered their last challenge (`Standing::Answering`)
//!   draw from `max_concurrency` permits; the others (not known to answer yet, or whose
//!   last challenge got no answer) from the small `max_concurrency_failing`. A host moves
//!   to the main budget when its agent answers, and out of it when it does not.
//! - **Backoff.** A host whose agent did not answer is retried after the interval doubled
//!   for each further failure, at most `verdict_ttl` after the last attempt ended (so it is
//!   retried at least once per TTL; it reads `unknown` meanwhile). An answer resets it.
//!
//! ```text
//!            new host, or last verdict unknown
//!                          │
//!                          ▼
//!   answered ┌──────── Unproven ───────┐ no answer
//!            ▼       (failing budget)  ▼
//!      Answering ◄──── answered ──── Failing { failures }
//!    (main budget) ─── no answer ──►  (failing budget, backing off)
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use super::Service;
use super::attest::Contact;
use super::fleet::FleetHost;
use super::metrics::ChallengerGauges;
use crate::store::now_ms;
use trustpool_api::oat::TrustLevel;

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

/// Where a host stands with the challenger: which budget it draws from, and how soon it is
/// challenged again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Its agent answered the last challenge: the main budget, every interval.
    Answering,
    /// Not known to answer: new to this server, or its latest verdict is `unknown`. The
    /// failing budget, every interval, ahead of the hosts backing off.
    Unproven,
    /// Its agent did not answer the last `failures` challenges: the failing budget,
    /// backing off.
    Failing { failures: u32 },
}

/// A concurrency budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    Main,
    Failing,
}

impl Standing {
    /// What this server knows before challenging a host itself: its latest verdict (by any
    /// server sharing the database, before a restart too) says whether its agent answers.
    fn of(host: &FleetHost) -> Self {
        match host.latest() {
            Some(latest) if latest.level != TrustLevel::Unknown => Self::Answering,
            _ => Self::Unproven,
        }
    }

    fn budget(self) -> Budget {
        match self {
            Self::Answering => Budget::Main,
            Self::Unproven | Self::Failing { .. } => Budget::Failing,
        }
    }

    /// Who goes first when a budget is short: the fewer failures, the sooner.
    fn rank(self) -> u32 {
        match self {
            Self::Answering | Self::Unproven => 0,
            Self::Failing { failures } => failures,
        }
    }

    /// After a challenge: an answer resets, no answer counts one more failure, and a
    /// challenge never sent (the host's key unusable, the server's policies unreadable)
    /// changes nothing.
    fn after(self, contact: Contact) -> Self {
        match (contact, self) {
            (Contact::Answered, _) => Self::Answering,
            (Contact::NoAnswer, Self::Failing { failures }) => Self::Failing {
                failures: failures.saturating_add(1),
            },
            (Contact::NoAnswer, _) => Self::Failing { failures: 1 },
            (Contact::NotAsked, standing) => standing,
        }
    }
}

/// How long a host that failed `failures` times in a row waits after its last attempt:
/// the interval, doubled for each further failure, at most the verdict TTL.
fn backoff(failures: u32, interval: Duration, ttl: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    interval.saturating_mul(factor).min(ttl.max(interval))
}

/// When a host is next due, the version of it that was scheduled, and its standing.
struct Due {
    at: Instant,
    host: Arc<FleetHost>,
    standing: Standing,
}

/// A challenge that ended: the version of the host it challenged, and whether the agent
/// answered.
struct Done {
    host: Arc<FleetHost>,
    contact: Contact,
    ended: Instant,
}

/// The two budgets' permits.
struct Budgets {
    main: Arc<Semaphore>,
    failing: Arc<Semaphore>,
}

impl Budgets {
    fn try_acquire(&self, budget: Budget) -> Option<OwnedSemaphorePermit> {
        let permits = match budget {
            Budget::Main => &self.main,
            Budget::Failing => &self.failing,
        };
        permits.clone().try_acquire_owned().ok()
    }
}

/// Runs until the task is aborted.
pub async fn run(service: Arc<Service>) {
    let interval = service.config.interval;
    let ttl = service.config.verdict_ttl;
    let budgets = Budgets {
        main: Arc::new(Semaphore::new(service.config.max_concurrency)),
        failing: Arc::new(Semaphore::new(service.config.max_concurrency_failing)),
    };
    // A lease outlives the longest challenge, so another server never starts a second one.
    let lease_ms = i64::try_from(
        (interval * 2)
            .max(service.config.agent_timeout + interval)
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    let mut due: HashMap<Arc<str>, Due> = HashMap::new();
    // The hosts being challenged (by agent id, so a host whose record changed meanwhile is
    // not challenged twice either), and the budget each draws from.
    let mut in_flight: HashMap<Arc<str>, Budget> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut generation = None;
    let mut synced: Option<Instant> = None;
    let mut pruned: Option<Instant> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        // A finished challenge frees a permit: the next host starts at once, not at the
        // next tick.
        tokio::select! {
            _ = ticker.tick() => {}
            Some(done) = done_rx.recv() => finish(&mut due, &mut in_flight, &done, interval, ttl),
        }
        while let Ok(done) = done_rx.try_recv() {
            finish(&mut due, &mut in_flight, &done, interval, ttl);
        }
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
        // Due and not in flight, most deserving first: fewest failures, then longest due.
        let mut ready: Vec<(u32, Instant, Arc<str>)> = due
            .iter()
            .filter(|(id, slot)| slot.at <= now && !in_flight.contains_key(*id))
            .map(|(id, slot)| (slot.standing.rank(), slot.at, id.clone()))
            .collect();
        ready.sort_unstable_by_key(|(rank, at, _)| (*rank, *at));
        let shared = service.store.is_shared();
        let (mut main_full, mut failing_full) = (false, false);
        for (_, _, id) in ready {
            let Some(slot) = due.get_mut(&id) else {
                continue;
            };
            let budget = slot.standing.budget();
            let full = match budget {
                Budget::Main => &mut main_full,
                Budget::Failing => &mut failing_full,
            };
            if *full {
                continue;
            }
            // No permit: the host stays due and starts when a challenge of its budget ends.
            let Some(permit) = budgets.try_acquire(budget) else {
                *full = true;
                continue;
            };
            // On a shared database, one server at a time challenges a host.
            if shared {
                match service
                    .store
                    .lease(
                        &slot.host.agent_id,
                        &service.config.server_id,
                        now_ms().saturating_add(lease_ms),
                    )
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        // Another server challenges it: its verdicts say how it stands.
                        slot.at = now + interval;
                        slot.standing = Standing::of(&slot.host);
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %crate::error_chain(&e), "lease");
                        continue;
                    }
                }
            }
            // The next turn of an answering host; one that fails is rescheduled when its
            // challenge ends (see `finish`).
            slot.at = now + interval + jitter(interval / 10);
            in_flight.insert(id, budget);
            let service = service.clone();
            let host = slot.host.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let contact = service.attest_reporting(&host).await.contact;
                drop(permit);
                // The receiver lives as long as the challenger.
                let _ = done.send(Done {
                    host,
                    contact,
                    ended: Instant::now(),
                });
            });
        }
        service.metrics.set_challenger(gauges(&due, &in_flight));
    }
}

/// Records how a challenge ended: the host's new standing and, when its agent did not
/// answer, when it is retried. A host whose record changed meanwhile keeps the turn
/// `reschedule` gave its new version (within a second).
fn finish(
    due: &mut HashMap<Arc<str>, Due>,
    in_flight: &mut HashMap<Arc<str>, Budget>,
    done: &Done,
    interval: Duration,
    ttl: Duration,
) {
    in_flight.remove(&done.host.agent_id);
    let Some(slot) = due.get_mut(&done.host.agent_id) else {
        return;
    };
    if !Arc::ptr_eq(&slot.host, &done.host) {
        return;
    }
    slot.standing = slot.standing.after(done.contact);
    if let Standing::Failing { failures } = slot.standing {
        slot.at = done.ended + backoff(failures, interval, ttl) + jitter(interval / 10);
    }
}

fn gauges(due: &HashMap<Arc<str>, Due>, in_flight: &HashMap<Arc<str>, Budget>) -> ChallengerGauges {
    let mut g = ChallengerGauges::default();
    for slot in due.values() {
        let gauge = match slot.standing {
            Standing::Answering => &mut g.answering,
            Standing::Unproven => &mut g.unproven,
            Standing::Failing { .. } => &mut g.backing_off,
        };
        *gauge = gauge.saturating_add(1);
    }
    for budget in in_flight.values() {
        let gauge = match budget {
            Budget::Main => &mut g.in_flight_main,
            Budget::Failing => &mut g.in_flight_failing,
        };
        *gauge = gauge.saturating_add(1);
    }
    g
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
/// policies, new agent URL), is attested within a second (once a challenge still in flight
/// has ended), standing as its latest verdict says; the others keep their turn and
/// standing.
fn reschedule(due: &mut HashMap<Arc<str>, Due>, hosts: Vec<Arc<FleetHost>>, now: Instant) {
    let mut next = HashMap::with_capacity(hosts.len());
    for host in hosts {
        let slot = match due.remove(&host.agent_id) {
            Some(slot) if Arc::ptr_eq(&slot.host, &host) => slot,
            _ => Due {
                at: now + jitter(Duration::from_secs(1)),
                standing: Standing::of(&host),
                host: host.clone(),
            },
        };
        next.insert(host.agent_id.clone(), slot);
    }
    *due = next;
}

#[cfg(test)]
mod tests {
    use super::{Standing, backoff};
    use crate::service::attest::Contact;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_the_interval_up_to_the_verdict_ttl() {
        let (interval, ttl) = (Duration::from_secs(30), Duration::from_secs(90));
        let waits: Vec<u64> = [1, 2, 3, 4, 40, u32::MAX]
            .iter()
            .map(|f| backoff(*f, interval, ttl).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 90, 90, 90, 90]);
    }

    #[test]
    fn an_answer_resets_and_no_answer_counts() {
        let failing = Standing::Unproven.after(Contact::NoAnswer);
        assert_eq!(failing, Standing::Failing { failures: 1 });
        assert_eq!(
            failing.after(Contact::NoAnswer),
            Standing::Failing { failures: 2 }
        );
        assert_eq!(failing.after(Contact::NotAsked), failing);
        assert_eq!(failing.after(Contact::Answered), Standing::Answering);
        assert_eq!(
            Standing::Answering.after(Contact::NoAnswer),
            Standing::Failing { failures: 1 }
        );
    }
}
