//! The TrustedFilter's view of the attestation server: Nova's cache
//! (`../shared/reference/oat-nova.md` §1.5) — one batched `PollHosts` for every known host
//! whenever a looked-up entry is older than `attestation_auth_timeout`, validity measured
//! from the server's `vtime` — made safer:
//!
//! - a stale entry reads as *nothing known* (unknown), never as its old level;
//! - `vtime` in the future is clamped to the time of the answer (a server clock running
//!   ahead cannot stretch the cache);
//! - after a failed poll every entry is unknown (as in Nova) and polls back off
//!   exponentially (Nova re-polled on every lookup);
//! - a malformed answer is an error, never a crash; a malformed entry leaves its host
//!   unknown;
//! - changes pushed by the server's trust stream ([`TrustCache::apply_change`]) take effect
//!   at once;
//! - a slot takes a level only from an answer or change at least as new as what it holds
//!   (by `vtime`, see [`slot`]): a poll answer computed before a pushed `untrusted` cannot
//!   overwrite it with `trusted`;
//! - the cache holds a slot for each of the scheduler's own compute nodes and nothing else:
//!   a poll asks for those names only, and neither a poll answer nor a pushed change creates
//!   a slot (an attacker who gets the server to publish a name gets no entry for it here,
//!   and 100,001 names could otherwise make every `PollHosts` fail); a deleted node's slot
//!   is dropped ([`TrustCache::forget`]);
//! - a pushed change whose `vtime` does not parse leaves its names unknown (nothing known,
//!   so the next lookup polls), never trusted as of "now".

pub mod slot;
/// The attestation server as the source of levels.
pub mod source;

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use trustpool_api::oat::TrustLevel;
use trustpool_api::oat::read_answer;
use trustpool_api::time::parse_iso8601;
use trustpool_api::v1::TrustChange;

use crate::fast_hash::FxHashMap;
use crate::filters::trusted_requirement as requirement;
use crate::request::RequestSpec;
pub use slot::TrustSlot;

/// One host's cached level. Levels other than `trusted` and `untrusted` (OAT 1.x also
/// said `timeout`, `pending`) are kept as unknown: they match no flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The level.
    pub level: TrustLevel,
    /// When the server vouched for it, Unix ms (0: never).
    pub vtime_ms: i64,
}

/// Polls the attestation server: every name in one request, the JSON answer back.
pub trait Poller {
    /// `POST {api_url}/PollHosts` with `{"count": N, "hosts": [...]}`: the answer's body.
    fn poll_hosts(
        &self,
        hosts: Vec<String>,
    ) -> impl Future<Output = Result<Vec<u8>, String>> + Send;
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_try_ms: i64,
    last_error: Option<String>,
}

/// The cache (shared by every request; Nova rebuilt it per request until Kilo).
#[derive(Debug)]
pub struct TrustCache {
    timeout_ms: i64,
    slots: RwLock<FxHashMap<String, Arc<TrustSlot>>>,
    backoff: Mutex<Backoff>,
    polling: tokio::sync::Mutex<()>,
}

/// Longest wait between polls of a failing server.
const MAX_BACKOFF_MS: i64 = 30_000;

impl TrustCache {
    /// A cache whose entries are valid for `timeout_ms` after their `vtime`.
    #[must_use]
    pub fn new(timeout_ms: i64) -> Self {
        Self {
            timeout_ms,
            slots: RwLock::new(FxHashMap::default()),
            backoff: Mutex::new(Backoff::default()),
            polling: tokio::sync::Mutex::new(()),
        }
    }

    /// Entries are valid this long after their `vtime`.
    #[must_use]
    pub fn timeout_ms(&self) -> i64 {
        self.timeout_ms
    }

    /// The slot of `name` (created unknown): what the host's state holds, so the
    /// TrustedFilter reads it directly.
    pub fn slot(&self, name: &str) -> Arc<TrustSlot> {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return slot.clone();
        }
        self.slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// A host's entry (for `os-hypervisors`).
    #[must_use]
    pub fn entry(&self, name: &str) -> Option<Entry> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        let (level, vtime_ms) = slots.get(name)?.get();
        Some(Entry { level, vtime_ms })
    }

    /// The level of `name` valid at `now_ms`, or None.
    #[must_use]
    pub fn level(&self, name: &str, now_ms: i64) -> Option<TrustLevel> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.get(name)?.current(now_ms, self.timeout_ms)
    }

    /// The level of `name` valid at `now_ms`, or unknown.
    #[must_use]
    pub fn current_level(&self, name: &str, now_ms: i64) -> TrustLevel {
        self.level(name, now_ms).unwrap_or(TrustLevel::Unknown)
    }

    /// Compute nodes the cache polls for (Nova's `compute_nodes`): the only names it keeps
    /// a slot for.
    pub fn add_hosts<'n>(&self, names: impl IntoIterator<Item = &'n str>) {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        for name in names {
            if !slots.contains_key(name) {
                slots.insert(name.to_owned(), Arc::default());
            }
        }
    }

    /// Drops the slot of a compute node that no longer exists: nothing polls for it or
    /// writes into it again (a host state still holding the `Arc` reads what it last had).
    pub fn forget(&self, name: &str) {
        self.slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Whether `name` has a slot (is one of the compute nodes).
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    /// Whether one of `names` that has a slot holds no entry valid at `now_ms` (a name
    /// without a slot is no compute node: no poll would give it an entry).
    fn any_stale(&self, names: &[&str], now_ms: i64) -> bool {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        names.iter().any(|n| {
            slots
                .get(*n)
                .is_some_and(|s| s.current(now_ms, self.timeout_ms).is_none())
        })
    }

    /// The last poll failure, while polls are backing off.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_error
            .clone()
    }

    /// Nova's `_update_cache_entry` trigger: if any of `names` has no entry valid for
    /// another `margin_ms`, polls every compute node in one request — unless a recent poll
    /// failed and the back-off has not elapsed. Names that are no compute node are neither
    /// polled for nor cached. Returns whether a request was made.
    pub async fn ensure_fresh<P: Poller + Sync>(
        &self,
        names: &[&str],
        poller: &P,
        now: &(dyn Fn() -> i64 + Sync),
        margin_ms: i64,
    ) -> bool {
        let stale = || self.any_stale(names, now().saturating_add(margin_ms));
        if !stale() {
            return false;
        }
        let _polling = self.polling.lock().await;
        // Another request may have polled while this one waited.
        if !stale() {
            return false;
        }
        self.poll_locked(poller, now).await
    }

    /// Polls every compute node now (after the server said this subscriber missed changes),
    /// unless backing off. Returns whether a request was made.
    pub async fn refresh<P: Poller + Sync>(
        &self,
        poller: &P,
        now: &(dyn Fn() -> i64 + Sync),
    ) -> bool {
        let _polling = self.polling.lock().await;
        self.poll_locked(poller, now).await
    }

    async fn poll_locked<P: Poller + Sync>(
        &self,
        poller: &P,
        now: &(dyn Fn() -> i64 + Sync),
    ) -> bool {
        if now()
            < self
                .backoff
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next_try_ms
        {
            return false;
        }
        let hosts: Vec<String> = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        if hosts.is_empty() {
            return false;
        }
        let outcome = poller.poll_hosts(hosts).await;
        let at = now();
        match outcome.and_then(|body| self.apply_poll(&body, at)) {
            Ok(()) => {
                *self.backoff.lock().unwrap_or_else(PoisonError::into_inner) = Backoff::default();
            }
            Err(error) => {
                tracing::warn!(%error, "attestation server poll failed: every host is unknown until it answers");
                self.reset_all();
                let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
                backoff.failures = backoff.failures.saturating_add(1);
                let wait = 1000_i64
                    .saturating_mul(1 << backoff.failures.saturating_sub(1).min(5))
                    .min(MAX_BACKOFF_MS);
                backoff.next_try_ms = at.saturating_add(wait);
                backoff.last_error = Some(error);
            }
        }
        true
    }

    fn reset_all(&self) {
        for slot in self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            slot.set(TrustLevel::Unknown, 0);
        }
    }

    /// What the TrustedFilter needs before filtering `hosts` for `spec`: nothing when the
    /// flavor asks for no trust level (Nova: "no request made"), else a fresh entry for
    /// every host. Returns whether a request was made.
    pub async fn prepare<P: Poller + Sync>(
        &self,
        spec: &RequestSpec,
        hosts: &[&str],
        poller: &P,
        now: &(dyn Fn() -> i64 + Sync),
    ) -> bool {
        if requirement(spec).is_none() {
            return false;
        }
        self.ensure_fresh(hosts, poller, now, 0).await
    }

    /// Applies a `PollHosts` answer received at `now_ms` (read by
    /// [`trustpool_api::oat::read_answer`]): every well-formed entry for a compute node is
    /// offered to its slot under its `host_name` (the last one wins, `vtime` clamped to
    /// `now_ms`), which keeps what it holds if that is newer — a change pushed while the
    /// answer was on its way ([`TrustSlot::offer`]); entries for other names are ignored;
    /// nodes missing from it become unknown (forgetting never makes a host trusted).
    ///
    /// # Errors
    /// When the body is not `{"hosts": [...]}` (Nova crashed on those).
    pub fn apply_poll(&self, body: &[u8], now_ms: i64) -> Result<(), String> {
        let answer = read_answer(body, now_ms)?;
        let mut by_name: FxHashMap<&str, (TrustLevel, i64)> = FxHashMap::default();
        for host in &answer {
            by_name.insert(&host.host_name, (host.level, host.vtime_ms.min(now_ms)));
        }
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        for (name, slot) in slots.iter() {
            match by_name.get(name.as_str()) {
                Some(&(level, vtime_ms)) => {
                    if !slot.offer(level, vtime_ms) {
                        tracing::debug!(host = %name, "poll answer older than the level held: kept the newer one");
                    }
                }
                None => slot.set(TrustLevel::Unknown, 0),
            }
        }
        Ok(())
    }

    /// A change pushed by the trust stream: `names` (the names that designate one host
    /// under the server's rule) now have `level`, vouched for at `vtime_ms` (clamped to
    /// `now_ms`). Only names that are compute nodes are written, and only where the slot
    /// holds nothing newer ([`TrustSlot::offer`]); the others are no concern of this
    /// scheduler and get no slot. Returns the nodes written.
    pub fn apply_change(
        &self,
        names: &[String],
        level: TrustLevel,
        vtime_ms: i64,
        now_ms: i64,
    ) -> Vec<String> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        names
            .iter()
            .filter_map(|name| {
                let slot = slots.get(name)?;
                slot.offer(level, vtime_ms.min(now_ms))
                    .then(|| name.clone())
            })
            .collect()
    }

    /// A [`TrustChange`] from the stream, received at `now_ms`: its `host_name` and
    /// `aliases` get its level ([`TrustCache::apply_change`]). A `vtime` that does not
    /// parse vouches for nothing: the names become unknown with no entry (the next lookup
    /// polls), never the level as of `now_ms`. Returns the nodes written.
    pub fn apply_stream_change(&self, change: &TrustChange, now_ms: i64) -> Vec<String> {
        let mut names = Vec::with_capacity(change.aliases.len().saturating_add(1));
        names.push(change.host_name.clone());
        names.extend(change.aliases.iter().cloned());
        match parse_iso8601(&change.vtime) {
            Some(vtime) => self.apply_change(&names, change.trust_lvl, vtime, now_ms),
            None => {
                tracing::warn!(host = ?change.host_name, vtime = ?change.vtime, "trust stream change with an unreadable vtime: its names are unknown until the next poll");
                let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
                names
                    .into_iter()
                    .filter(|name| {
                        slots
                            .get(name)
                            .map(|slot| slot.set(TrustLevel::Unknown, 0))
                            .is_some()
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests;
