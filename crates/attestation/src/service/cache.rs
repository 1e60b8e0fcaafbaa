//! The trust levels PollHosts answers from: an in-memory map from every host name and alias
//! to the latest verdict, reloaded from the database every second (so verdicts written by
//! other servers on the same PostgreSQL appear) and updated on every new verdict. PollHosts
//! never touches the database and never attests inline.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use trustpool_api::oat::TrustLevel;
use trustpool_api::v1::TrustChange;

use crate::store::{HostRecord, HostState, Store, StoreError, VerdictRecord, now_ms};

#[derive(Debug, Clone)]
struct Entry {
    agent_id: String,
    level: TrustLevel,
    at: i64,
    reasons: Vec<String>,
}

/// Name → latest verdict.
#[derive(Debug, Default)]
pub struct TrustCache {
    by_name: RwLock<HashMap<String, Entry>>,
    names: RwLock<HashMap<String, Vec<String>>>,
    verdicts: RwLock<HashMap<String, Entry>>,
    loaded_until: std::sync::atomic::AtomicI64,
}

impl TrustCache {
    /// Rebuilds from the database; returns the hosts whose level changed (verdicts made by
    /// other servers, hosts enrolled or deleted elsewhere).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn reload(&self, store: &Store) -> Result<Vec<TrustChange>, StoreError> {
        let hosts = store.hosts().await?;
        self.reload_with(store, &hosts).await
    }

    /// As [`TrustCache::reload`] with a host list already read. After the first load only
    /// the verdicts recorded since the last one are read (a few seconds of overlap cover
    /// clock skew between servers).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn reload_with(
        &self,
        store: &Store,
        hosts: &[HostRecord],
    ) -> Result<Vec<TrustChange>, StoreError> {
        let since = self.loaded_until.load(std::sync::atomic::Ordering::Relaxed);
        let fresh = if since == 0 {
            store.latest_verdicts().await?
        } else {
            store.verdicts_since(since.saturating_sub(5_000)).await?
        };
        self.loaded_until
            .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
        let mut by_name = HashMap::with_capacity(hosts.len().saturating_mul(2));
        let mut names = HashMap::with_capacity(hosts.len());
        {
            let mut known = self
                .verdicts
                .write()
                .map_err(|_| StoreError::Corrupt { what: "cache lock" })?;
            for v in fresh {
                if known.get(&v.agent_id).is_none_or(|e| e.at <= v.at) {
                    let entry = Entry {
                        agent_id: v.agent_id.clone(),
                        level: v.level,
                        at: v.at,
                        reasons: v.reasons,
                    };
                    known.insert(v.agent_id, entry);
                }
            }
            let ids: std::collections::HashSet<&str> =
                hosts.iter().map(|h| h.agent_id.as_str()).collect();
            known.retain(|id, _| ids.contains(id.as_str()));
            for host in hosts.iter().filter(|h| h.state == HostState::Enrolled) {
                let entry = known.get(&host.agent_id).cloned().unwrap_or_else(|| Entry {
                    agent_id: host.agent_id.clone(),
                    level: TrustLevel::Unknown,
                    at: 0,
                    reasons: Vec::new(),
                });
                let host_names = host_names(host);
                for name in &host_names {
                    by_name.insert(name.clone(), entry.clone());
                }
                names.insert(host.agent_id.clone(), host_names);
            }
        }
        let mut changes = Vec::new();
        if let (Ok(mut b), Ok(mut n)) = (self.by_name.write(), self.names.write()) {
            for host in hosts.iter().filter(|h| h.state == HostState::Enrolled) {
                let old = b.get(&host.host_name).map(|e| e.level);
                if let Some(new) = by_name.get(&host.host_name)
                    && old != Some(new.level)
                {
                    changes.push(change(
                        host.host_name.clone(),
                        names.get(&host.agent_id).cloned().unwrap_or_default(),
                        new,
                    ));
                }
            }
            *b = by_name;
            *n = names;
        }
        Ok(changes)
    }

    /// Records a new verdict for a host already known; returns the change when its level
    /// is not the one it had.
    pub fn record(&self, verdict: &VerdictRecord) -> Option<TrustChange> {
        let names = self
            .names
            .read()
            .ok()
            .and_then(|n| n.get(&verdict.agent_id).cloned())
            .unwrap_or_default();
        let entry = Entry {
            agent_id: verdict.agent_id.clone(),
            level: verdict.level,
            at: verdict.at,
            reasons: verdict.reasons.clone(),
        };
        if let Ok(mut known) = self.verdicts.write() {
            known.insert(verdict.agent_id.clone(), entry.clone());
        }
        let mut b = self.by_name.write().ok()?;
        let old = names.first().and_then(|n| b.get(n)).map(|e| e.level);
        for name in &names {
            b.insert(name.clone(), entry.clone());
        }
        let primary = names.first()?.clone();
        (old != Some(verdict.level)).then(|| change(primary, names, &entry))
    }

    /// The current level of every enrolled host, as change events (a stream's snapshot).
    #[must_use]
    pub fn snapshot(&self) -> Vec<TrustChange> {
        let (Ok(b), Ok(n)) = (self.by_name.read(), self.names.read()) else {
            return Vec::new();
        };
        n.values()
            .filter_map(|names| {
                let primary = names.first()?;
                let entry = b.get(primary)?;
                Some(change(primary.clone(), names.clone(), entry))
            })
            .collect()
    }

    /// Counts of enrolled hosts by current level (with the TTL applied).
    #[must_use]
    pub fn counts(&self, ttl: Duration) -> [(&'static str, usize); 3] {
        let mut counts = [("trusted", 0usize), ("untrusted", 0), ("unknown", 0)];
        let primaries: Vec<String> = self
            .names
            .read()
            .map(|n| {
                n.values()
                    .filter_map(|names| names.first().cloned())
                    .collect()
            })
            .unwrap_or_default();
        for name in primaries {
            let slot = match self.level(&name, ttl) {
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
    /// unknown; unknown for names nobody enrolled.
    #[must_use]
    pub fn level(&self, name: &str, ttl: Duration) -> TrustLevel {
        let now = now_ms();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.by_name
            .read()
            .ok()
            .and_then(|b| b.get(name).map(|e| (e.at, e.level)))
            .filter(|(at, _)| now.saturating_sub(*at) <= ttl_ms)
            .map_or(TrustLevel::Unknown, |(_, level)| level)
    }

    /// The levels of many names under one lock acquisition and one clock read (PollHosts
    /// sends every compute node at once).
    #[must_use]
    pub fn levels(&self, names: &[String], ttl: Duration) -> Vec<TrustLevel> {
        let now = now_ms();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let Ok(b) = self.by_name.read() else {
            return vec![TrustLevel::Unknown; names.len()];
        };
        names
            .iter()
            .map(|name| match b.get(name) {
                Some(e) if now.saturating_sub(e.at) <= ttl_ms => e.level,
                _ => TrustLevel::Unknown,
            })
            .collect()
    }

    /// The agent id of a name, if enrolled.
    #[must_use]
    pub fn agent_id(&self, name: &str) -> Option<String> {
        self.by_name
            .read()
            .ok()
            .and_then(|b| b.get(name).map(|e| e.agent_id.clone()))
    }
}

fn change(host_name: String, names: Vec<String>, entry: &Entry) -> TrustChange {
    TrustChange {
        host_name,
        aliases: names.into_iter().skip(1).collect(),
        trust_lvl: entry.level,
        vtime: rfc3339(entry.at),
        reasons: entry.reasons.clone(),
    }
}

fn host_names(host: &HostRecord) -> Vec<String> {
    let mut names = vec![host.host_name.clone()];
    names.extend(host.aliases.iter().cloned());
    if let Some((short, _)) = host.host_name.split_once('.') {
        names.push(short.to_owned());
    }
    names
}

pub use trustpool_api::time::rfc3339;
