//! The enrolled hosts in memory and the trust levels PollHosts answers from: every host
//! name, alias and short name → the host's latest verdict. Kept in step with the database
//! incrementally: every second one value, the fleet revision, says whether any host row
//! was written; only then (or once a minute regardless) one index-only query reads each
//! enrolled host's row version, and only new or changed rows are read and prepared;
//! verdicts recorded since the last sync by other servers on a shared PostgreSQL are
//! applied on top. PollHosts never touches the database and never attests inline.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use futures_util::StreamExt as _;
use trustpool_api::oat::TrustLevel;
use trustpool_api::v1::TrustChange;

use super::fleet::{FleetHost, NameKind};
use crate::store::{Store, StoreError, VerdictRecord, now_ms};

/// Changed rows read one by one up to this many; beyond, one range query streams them.
const READ_ONE_BY_ONE: usize = 32;

#[derive(Debug, Default)]
struct Fleet {
    by_id: HashMap<Arc<str>, Arc<FleetHost>>,
    /// Every claim on a name (usually one).
    by_name: HashMap<String, Vec<(NameKind, Arc<FleetHost>)>>,
    /// Names of deleted hosts: they designate nobody (not even another host's weaker
    /// claim) until an administrator gives them out again.
    retired: HashSet<String>,
}

impl Fleet {
    /// The host a name designates: the strongest claim, if no other host has one as strong
    /// and the name is not a deleted host's.
    fn resolve(&self, name: &str) -> Option<&Arc<FleetHost>> {
        if self.retired.contains(name) {
            return None;
        }
        let claims = self.by_name.get(name)?;
        let best = claims.iter().map(|(kind, _)| *kind).min()?;
        let mut strongest = claims.iter().filter(|(kind, _)| *kind == best);
        let (_, host) = strongest.next()?;
        strongest.next().is_none().then_some(host)
    }

    /// Who each of `names` designates now (by agent id).
    fn resolution<'n>(&self, names: impl IntoIterator<Item = &'n String>) -> Resolution<'n> {
        names
            .into_iter()
            .map(|n| (n, self.resolve(n).map(|h| h.agent_id.clone())))
            .collect()
    }

    /// The names that designate `host` now, its registered name first.
    fn names_of(&self, host: &Arc<FleetHost>) -> Vec<String> {
        host.names
            .iter()
            .filter(|(name, _)| self.resolve(name).is_some_and(|h| Arc::ptr_eq(h, host)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The stream event for a host: its level, under the names that designate it (None
    /// when no name does).
    fn change(&self, host: &Arc<FleetHost>) -> Option<TrustChange> {
        let mut names = self.names_of(host).into_iter();
        let host_name = names.next()?;
        let latest = host.latest();
        Some(TrustChange {
            host_name,
            aliases: names.collect(),
            trust_lvl: latest.as_ref().map_or(TrustLevel::Unknown, |l| l.level),
            vtime: rfc3339(latest.as_ref().map_or(0, |l| l.at)),
            reasons: latest.map(|l| l.reasons).unwrap_or_default(),
        })
    }

    fn insert(&mut self, host: Arc<FleetHost>) -> Option<Arc<FleetHost>> {
        let previous = self.remove(&host.agent_id);
        for (name, kind) in &host.names {
            self.by_name
                .entry(name.clone())
                .or_default()
                .push((*kind, host.clone()));
        }
        self.by_id.insert(host.agent_id.clone(), host);
        previous
    }

    fn remove(&mut self, agent_id: &str) -> Option<Arc<FleetHost>> {
        let host = self.by_id.remove(agent_id)?;
        for (name, _) in &host.names {
            if let Some(claims) = self.by_name.get_mut(name) {
                claims.retain(|(_, h)| !Arc::ptr_eq(h, &host));
                if claims.is_empty() {
                    self.by_name.remove(name);
                }
            }
        }
        Some(host)
    }
}

/// Who each name designated (by agent id) before a change.
type Resolution<'n> = HashMap<&'n String, Option<Arc<str>>>;

/// What a sync changed: hosts whose level or names the stream must announce, and names that
/// stopped designating any host (with why).
#[derive(Debug, Default)]
struct Changed {
    hosts: HashSet<Arc<str>>,
    released: HashMap<String, &'static str>,
}

impl Changed {
    /// Compares who `before` said each name designates with the fleet now.
    fn names_moved(
        &mut self,
        fleet: &Fleet,
        before: &HashMap<&String, Option<Arc<str>>>,
        why: &'static str,
    ) {
        for (name, was) in before {
            let now = fleet.resolve(name).map(|h| h.agent_id.clone());
            if now == *was {
                continue;
            }
            match now {
                Some(id) => {
                    self.hosts.insert(id);
                }
                None => {
                    self.released.insert((*name).clone(), why);
                }
            }
        }
    }

    fn into_events(self, fleet: &Fleet) -> Vec<TrustChange> {
        let now = rfc3339(now_ms());
        let mut events: Vec<TrustChange> = self
            .hosts
            .iter()
            .filter_map(|id| fleet.by_id.get(id))
            .filter_map(|h| fleet.change(h))
            .collect();
        events.extend(self.released.into_iter().map(|(name, why)| TrustChange {
            host_name: name,
            aliases: Vec::new(),
            trust_lvl: TrustLevel::Unknown,
            vtime: now.clone(),
            reasons: vec![why.to_owned()],
        }));
        events
    }
}

/// How often the row versions are scanned even when the fleet revision did not move
/// (a row changed by hand, outside the store).
const FULL_SCAN_EVERY: Duration = Duration::from_secs(60);

/// Where the last sync left off.
#[derive(Debug, Default)]
struct SyncMark {
    /// The fleet revision the last scan started from.
    revision: Option<i64>,
    /// When the row versions were last scanned.
    scanned: Option<std::time::Instant>,
}

/// The enrolled hosts, by agent id and by every name.
#[derive(Debug, Default)]
pub struct TrustCache {
    fleet: RwLock<Fleet>,
    /// One sync at a time (the challenger's and one after a local change may meet).
    syncing: tokio::sync::Mutex<SyncMark>,
    /// Verdicts up to this time (Unix ms) have been read from the database.
    verdicts_until: AtomicI64,
    /// Bumped whenever a host is added, changed or removed.
    generation: AtomicU64,
}

impl TrustCache {
    fn read(&self) -> RwLockReadGuard<'_, Fleet> {
        // Every writer leaves the maps consistent before it can panic.
        self.fleet
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Brings the hosts and verdicts up to date with the database; returns the trust
    /// changes this caused (hosts enrolled, changed or deleted elsewhere, verdicts made by
    /// other servers).
    ///
    /// # Errors
    /// A `StoreError`; the cache keeps what it had.
    pub async fn sync(&self, store: &Store) -> Result<Vec<TrustChange>, StoreError> {
        let mut mark = self.syncing.lock().await;
        let mut changed = Changed::default();
        // One counter moves with every host write: when it has not, nothing is scanned.
        let revision = store.fleet_revision().await?;
        if mark.revision != Some(revision)
            || mark
                .scanned
                .is_none_or(|at| at.elapsed() >= FULL_SCAN_EVERY)
        {
            self.sync_hosts(store, &mut changed).await?;
            *mark = SyncMark {
                revision: Some(revision),
                scanned: Some(std::time::Instant::now()),
            };
        }
        self.sync_verdicts(store, &mut changed).await?;
        // One event per host, its state after this sync: a new host's is made after the
        // verdicts are applied (its first verdict does not follow an `unknown` of its own).
        Ok(changed.into_events(&self.read()))
    }

    /// Hosts enrolled, changed or deleted since the last scan of the row versions, and the
    /// deleted hosts' names.
    async fn sync_hosts(&self, store: &Store, changed: &mut Changed) -> Result<(), StoreError> {
        let versions = store.enrolled_host_versions().await?;
        let retired: HashSet<String> = store.retired_names().await?.into_iter().collect();
        let (stale, gone) = {
            let fleet = self.read();
            let stale: HashSet<String> = versions
                .iter()
                .filter(|(id, at)| {
                    fleet
                        .by_id
                        .get(id.as_str())
                        .is_none_or(|h| h.updated_at != *at)
                })
                .map(|(id, _)| id.clone())
                .collect();
            let current: HashSet<&str> = versions.iter().map(|(id, _)| id.as_str()).collect();
            let gone: Vec<Arc<str>> = fleet
                .by_id
                .keys()
                .filter(|id| !current.contains(&***id))
                .cloned()
                .collect();
            (stale, gone)
        };
        drop(versions);
        let prepared = read_prepared(store, &stale).await?;
        let mut fleet = self
            .fleet
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if prepared.is_empty() && gone.is_empty() && fleet.retired == retired {
            return Ok(());
        }
        // Every name whose designation this can move: the old and new names of each
        // changed host, the names of deleted hosts, and names retired or given out again.
        let mut touched: HashSet<String> = fleet
            .retired
            .symmetric_difference(&retired)
            .cloned()
            .collect();
        let mut deleted_names: HashSet<String> = HashSet::new();
        for host in &prepared {
            touched.extend(host.names.iter().map(|(n, _)| n.clone()));
            if let Some(old) = fleet.by_id.get(host.agent_id.as_ref()) {
                touched.extend(old.names.iter().map(|(n, _)| n.clone()));
            }
        }
        for id in &gone {
            if let Some(old) = fleet.by_id.get(id) {
                deleted_names.extend(old.names.iter().map(|(n, _)| n.clone()));
            }
        }
        let before: HashMap<String, Option<Arc<str>>> = fleet
            .resolution(touched.iter().chain(&deleted_names))
            .into_iter()
            .map(|(n, id)| (n.clone(), id))
            .collect();
        for host in prepared {
            let host = Arc::new(host);
            match fleet.insert(host.clone()) {
                Some(previous) => host.carry_over(&previous),
                None => {
                    changed.hosts.insert(host.agent_id.clone());
                }
            }
        }
        for id in gone {
            fleet.remove(&id);
        }
        fleet.retired = retired;
        let (deleted, other): (Resolution<'_>, Resolution<'_>) = before
            .iter()
            .map(|(n, id)| (n, id.clone()))
            .partition(|(n, _)| deleted_names.contains(*n));
        changed.names_moved(&fleet, &deleted, "the host was deleted");
        changed.names_moved(&fleet, &other, "no host answers to this name now");
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Verdicts recorded by other servers since the last sync (all of them, the first time).
    async fn sync_verdicts(&self, store: &Store, changed: &mut Changed) -> Result<(), StoreError> {
        // A few seconds of overlap cover clock skew between servers.
        let since = self.verdicts_until.load(Ordering::Relaxed);
        let started = now_ms();
        let fresh = if since == 0 {
            store.latest_verdicts().await?
        } else if store.is_shared() {
            store.verdicts_since(since.saturating_sub(5_000)).await?
        } else {
            // A SQLite database has one server, and each of its verdicts was recorded
            // here as it was made.
            Vec::new()
        };
        self.verdicts_until.store(started, Ordering::Relaxed);
        for verdict in &fresh {
            let Some(host) = self.host_by_id(&verdict.agent_id) else {
                continue;
            };
            let Some(replaced) = host.record(verdict) else {
                continue;
            };
            // The host's current run in the database: a restarted server, or one taking
            // the host over, extends it instead of starting another.
            host.set_run(verdict.id.clone(), verdict.run_digest());
            if replaced != Some(verdict.level) {
                changed.hosts.insert(host.agent_id.clone());
            }
        }
        Ok(())
    }

    /// Records a verdict for an enrolled host; returns the change when its level is not
    /// the one it had.
    pub fn record(&self, verdict: &VerdictRecord) -> Option<TrustChange> {
        let fleet = self.read();
        let host = fleet.by_id.get(verdict.agent_id.as_str())?;
        let replaced = host.record(verdict)?;
        if replaced == Some(verdict.level) {
            return None;
        }
        fleet.change(host)
    }

    /// Changes whenever a host is added, changed or removed.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every enrolled host.
    #[must_use]
    pub fn hosts(&self) -> Vec<Arc<FleetHost>> {
        self.read().by_id.values().cloned().collect()
    }

    /// The enrolled host with this agent id.
    #[must_use]
    pub fn host_by_id(&self, agent_id: &str) -> Option<Arc<FleetHost>> {
        self.read().by_id.get(agent_id).cloned()
    }

    /// The enrolled host a name designates.
    #[must_use]
    pub fn host_named(&self, name: &str) -> Option<Arc<FleetHost>> {
        self.read().resolve(name).cloned()
    }

    /// The current level of every enrolled host, as change events (a stream's snapshot).
    #[must_use]
    pub fn snapshot(&self) -> Vec<TrustChange> {
        let fleet = self.read();
        fleet
            .by_id
            .values()
            .filter_map(|h| fleet.change(h))
            .collect()
    }

    /// Counts of enrolled hosts by current level (with the TTL applied).
    #[must_use]
    pub fn counts(&self, ttl: Duration) -> [(&'static str, usize); 3] {
        let (now, ttl_ms) = (now_ms(), millis(ttl));
        let mut counts = [("trusted", 0usize), ("untrusted", 0), ("unknown", 0)];
        for host in self.read().by_id.values() {
            let slot = match host.level_at(now, ttl_ms) {
                TrustLevel::Trusted => 0,
                TrustLevel::Untrusted => 1,
                TrustLevel::Unknown => 2,
            };
            if let Some((_, c)) = counts.get_mut(slot) {
                *c = c.saturating_add(1);
            }
        }
        counts
    }

    /// The level of a host name now: the latest verdict if younger than `ttl`, else
    /// unknown; unknown for names nobody enrolled and for ambiguous names.
    #[must_use]
    pub fn level(&self, name: &str, ttl: Duration) -> TrustLevel {
        self.read()
            .resolve(name)
            .map_or(TrustLevel::Unknown, |h| h.level_at(now_ms(), millis(ttl)))
    }

    /// The levels of many names under one lock acquisition and one clock read (PollHosts
    /// sends every compute node at once).
    #[must_use]
    pub fn levels(&self, names: &[String], ttl: Duration) -> Vec<TrustLevel> {
        let (now, ttl_ms) = (now_ms(), millis(ttl));
        let fleet = self.read();
        names
            .iter()
            .map(|name| {
                fleet
                    .resolve(name)
                    .map_or(TrustLevel::Unknown, |h| h.level_at(now, ttl_ms))
            })
            .collect()
    }

    /// The agent id of a name, if enrolled.
    #[must_use]
    pub fn agent_id(&self, name: &str) -> Option<String> {
        self.read().resolve(name).map(|h| h.agent_id.to_string())
    }
}

/// Reads and prepares the rows of these hosts, streaming (never every row at once). A row
/// that does not decode is logged and left out — its host stays unattested and `unknown` —
/// instead of stopping every other host's sync.
async fn read_prepared(
    store: &Store,
    stale: &HashSet<String>,
) -> Result<Vec<FleetHost>, StoreError> {
    let skip = |e: &StoreError| {
        tracing::error!(error = %crate::error_chain(e), "a host row is unreadable; that host is not attested");
    };
    let mut prepared = Vec::with_capacity(stale.len());
    if stale.len() <= READ_ONE_BY_ONE {
        for id in stale {
            match store.host(id).await {
                Ok(Some(record)) if record.state == crate::store::HostState::Enrolled => {
                    prepared.push(FleetHost::prepare(&record));
                }
                Ok(_) => {}
                Err(e) => skip(&e),
            }
        }
        return Ok(prepared);
    }
    let mut rows = store.enrolled_hosts();
    while let Some(row) = rows.next().await {
        match row {
            Ok(record) if stale.contains(&record.agent_id) => {
                prepared.push(FleetHost::prepare(&record));
                if prepared.len() % 256 == 0 {
                    // Preparing parses keys: let other tasks run on a large first load.
                    tokio::task::yield_now().await;
                }
            }
            Ok(_) => {}
            Err(e) => skip(&e),
        }
    }
    Ok(prepared)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub use trustpool_api::time::rfc3339;
