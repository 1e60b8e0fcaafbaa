//! One host's trust level and `vtime`, shared between the cache (which writes it) and the
//! host's state (which the TrustedFilter reads): one atomic word, so a reader never sees a
//! level with another answer's `vtime`, and the filter reads it without a map lookup.
//!
//! Answers are ordered by their `vtime` ([`TrustSlot::offer`]): a slot takes a level only
//! from an answer at least as new as the one it holds, so a `PollHosts` answer computed
//! before a pushed `untrusted` cannot turn it back into `trusted` when it arrives after it.
//! What "newer" means, with two kinds of `vtime` on one clock (the attestation server's):
//!
//! - a `PollHosts` answer's `vtime` is the time the server computed the answer (the same
//!   "now" for every host): "as of `vtime`, the level was L";
//! - a pushed change's `vtime` is the time of the verdict: "from `vtime`, the level is L".
//!
//! A verdict made at `v` is in every answer computed at `a ≥ v`, and an answer computed at
//! `a < v` predates it: comparing the two on the server's timeline orders them. The server
//! stamps whole seconds, so an answer and a verdict of the same second are ambiguous; on a
//! tie `trusted` never replaces `untrusted` (fail closed: the next poll, a second later,
//! settles it). Residual: `vtime` is clamped to the time of arrival (a server clock running
//! ahead cannot stretch the cache), so with the server's clock ahead of the scheduler's by
//! more than the network delay, both clamp to their arrival and the order is the arrival
//! order — keep the clocks synchronised.

use core::sync::atomic::{AtomicU64, Ordering};

use trustpool_api::oat::TrustLevel;

/// Bits 62–63: the level (0 unknown, 1 trusted, 2 untrusted); bits 0–61: `vtime`, Unix ms.
#[derive(Debug, Default)]
pub struct TrustSlot(AtomicU64);

const VTIME_MASK: u64 = (1 << 62) - 1;

fn pack(level: TrustLevel, vtime_ms: i64) -> u64 {
    let code: u64 = match level {
        TrustLevel::Unknown => 0,
        TrustLevel::Trusted => 1,
        TrustLevel::Untrusted => 2,
    };
    let vtime = u64::try_from(vtime_ms).unwrap_or(0) & VTIME_MASK;
    (code << 62) | vtime
}

fn unpack(word: u64) -> (TrustLevel, i64) {
    let level = match word >> 62 {
        1 => TrustLevel::Trusted,
        2 => TrustLevel::Untrusted,
        _ => TrustLevel::Unknown,
    };
    (level, i64::try_from(word & VTIME_MASK).unwrap_or(0))
}

/// Whether an answer `new` may replace the held `old`: a newer `vtime`, or the same one
/// unless that would turn `untrusted` into `trusted` (see the module docs).
fn supersedes(new: u64, old: u64) -> bool {
    let ((new_level, new_vtime), (old_level, old_vtime)) = (unpack(new), unpack(old));
    new_vtime > old_vtime
        || (new_vtime == old_vtime
            && !(new_level == TrustLevel::Trusted && old_level == TrustLevel::Untrusted))
}

impl TrustSlot {
    /// Stores `level` vouched for at `vtime_ms` whatever the slot holds (negative times
    /// read as never). Only for forgetting: `(Unknown, 0)` after a failed poll, for a node
    /// a poll answer left out, for a change whose `vtime` does not parse. An answer goes
    /// through [`TrustSlot::offer`].
    pub fn set(&self, level: TrustLevel, vtime_ms: i64) {
        self.0.store(pack(level, vtime_ms), Ordering::Release);
    }

    /// Stores `level` vouched for at `vtime_ms` (already clamped to the time of arrival)
    /// if that answer is at least as new as the one held (module docs). Returns whether it
    /// was stored; an older answer leaves the slot as it was.
    pub fn offer(&self, level: TrustLevel, vtime_ms: i64) -> bool {
        let new = pack(level, vtime_ms);
        let mut held = self.0.load(Ordering::Acquire);
        loop {
            if !supersedes(new, held) {
                return false;
            }
            match self
                .0
                .compare_exchange_weak(held, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now_held) => held = now_held,
            }
        }
    }

    /// The stored level and `vtime` (0: never).
    #[must_use]
    pub fn get(&self) -> (TrustLevel, i64) {
        unpack(self.0.load(Ordering::Acquire))
    }

    /// The level if it is still valid at `now_ms` (`now − vtime ≤ timeout`), else None:
    /// a stale level is never read as current.
    #[must_use]
    pub fn current(&self, now_ms: i64, timeout_ms: i64) -> Option<TrustLevel> {
        let (level, vtime) = self.get();
        (vtime > 0 && now_ms.saturating_sub(vtime) <= timeout_ms).then_some(level)
    }
}

impl PartialEq for TrustSlot {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_level_and_vtime() {
        let slot = TrustSlot::default();
        assert_eq!(slot.get(), (TrustLevel::Unknown, 0));
        assert_eq!(slot.current(1, 60_000), None, "never vouched for");
        slot.set(TrustLevel::Untrusted, 1_800_000_000_000);
        assert_eq!(slot.get(), (TrustLevel::Untrusted, 1_800_000_000_000));
        assert_eq!(
            slot.current(1_800_000_060_000, 60_000),
            Some(TrustLevel::Untrusted)
        );
        assert_eq!(slot.current(1_800_000_060_001, 60_000), None, "expired");
        slot.set(TrustLevel::Trusted, -5);
        assert_eq!(slot.get(), (TrustLevel::Trusted, 0));
    }

    #[test]
    fn an_answer_older_than_the_one_held_is_refused() {
        let slot = TrustSlot::default();
        let t = 1_800_000_000_000;
        assert!(slot.offer(TrustLevel::Untrusted, t));
        assert!(!slot.offer(TrustLevel::Trusted, t - 1000), "older answer");
        assert!(!slot.offer(TrustLevel::Unknown, t - 1), "older answer");
        assert_eq!(slot.get(), (TrustLevel::Untrusted, t));
        // Same second: trusted never replaces untrusted; anything else may.
        assert!(!slot.offer(TrustLevel::Trusted, t));
        assert!(slot.offer(TrustLevel::Untrusted, t));
        assert!(slot.offer(TrustLevel::Trusted, t + 1000), "newer answer");
        assert!(slot.offer(TrustLevel::Untrusted, t + 1000));
        assert_eq!(slot.get(), (TrustLevel::Untrusted, t + 1000));
        // Forgetting is unconditional, and then any answer counts.
        slot.set(TrustLevel::Unknown, 0);
        assert!(slot.offer(TrustLevel::Trusted, t));
        assert_eq!(slot.get(), (TrustLevel::Trusted, t));
    }
}
