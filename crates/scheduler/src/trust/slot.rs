//! One host's trust level and `vtime`, shared between the cache (which writes it) and the
//! host's state (which the TrustedFilter reads): one atomic word, so a reader never sees a
//! level with another answer's `vtime`, and the filter reads it without a map lookup.

use core::sync::atomic::{AtomicU64, Ordering};

use trustpool_api::oat::TrustLevel;

/// Bits 62–63: the level (0 unknown, 1 trusted, 2 untrusted); bits 0–61: `vtime`, Unix ms.
#[derive(Debug, Default)]
pub struct TrustSlot(AtomicU64);

const VTIME_MASK: u64 = (1 << 62) - 1;

impl TrustSlot {
    /// Stores `level` vouched for at `vtime_ms` (negative times read as never).
    pub fn set(&self, level: TrustLevel, vtime_ms: i64) {
        let code: u64 = match level {
            TrustLevel::Unknown => 0,
            TrustLevel::Trusted => 1,
            TrustLevel::Untrusted => 2,
        };
        let vtime = u64::try_from(vtime_ms).unwrap_or(0) & VTIME_MASK;
        self.0.store((code << 62) | vtime, Ordering::Release);
    }

    /// The stored level and `vtime` (0: never).
    #[must_use]
    pub fn get(&self) -> (TrustLevel, i64) {
        let word = self.0.load(Ordering::Acquire);
        let level = match word >> 62 {
            1 => TrustLevel::Trusted,
            2 => TrustLevel::Untrusted,
            _ => TrustLevel::Unknown,
        };
        (level, i64::try_from(word & VTIME_MASK).unwrap_or(0))
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
}
