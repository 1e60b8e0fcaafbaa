//! Continuity between two quotes of the same TPM, from their `TPMS_CLOCK_INFO` (TPM 2.0
//! Library Part 1, rev. 1.59, §36 "Clocks and Timers" and §36.8 resetCount/restartCount):
//! `resetCount` increments on every TPM Reset (a reboot: PCRs cleared), `restartCount` on
//! every TPM Restart or Resume since the last reset, and `clock` only moves forward while
//! the counts stay the same. A quote that goes backwards was made before the previous one
//! (or by another TPM), whatever its nonce says.

use thiserror::Error;

use crate::tpm::attest::ClockInfo;

/// What happened to the TPM between two quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Same boot: counts equal, clock did not go back.
    SameBoot,
    /// `restartCount` grew: a TPM Restart or Resume (e.g. hibernation); PCRs may have been
    /// reset, so the event log must be read again.
    Restarted,
    /// `resetCount` grew: the host rebooted; PCRs and the event log are new.
    Rebooted,
}

/// The counters or clock went backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClockError {
    /// `resetCount` is lower than in an earlier quote.
    #[error("TPM resetCount went backwards ({previous} → {current})")]
    ResetCountWentBackwards {
        /// Earlier value.
        previous: u32,
        /// This quote's value.
        current: u32,
    },
    /// `restartCount` is lower than in an earlier quote of the same boot.
    #[error("TPM restartCount went backwards within one boot ({previous} → {current})")]
    RestartCountWentBackwards {
        /// Earlier value.
        previous: u32,
        /// This quote's value.
        current: u32,
    },
    /// `clock` is lower than in an earlier quote with the same counts.
    #[error("TPM clock went backwards without a reboot ({previous} ms → {current} ms)")]
    ClockWentBackwards {
        /// Earlier value.
        previous: u64,
        /// This quote's value.
        current: u64,
    },
}

impl ClockInfo {
    /// How this quote relates to an earlier one of the same TPM.
    ///
    /// # Errors
    /// A `ClockError` when a counter or the clock went backwards without a reboot.
    pub fn since(&self, previous: &Self) -> Result<Continuity, ClockError> {
        use core::cmp::Ordering::{Equal, Greater, Less};
        match self.reset_count.cmp(&previous.reset_count) {
            Less => Err(ClockError::ResetCountWentBackwards {
                previous: previous.reset_count,
                current: self.reset_count,
            }),
            Greater => Ok(Continuity::Rebooted),
            Equal => match self.restart_count.cmp(&previous.restart_count) {
                Less => Err(ClockError::RestartCountWentBackwards {
                    previous: previous.restart_count,
                    current: self.restart_count,
                }),
                Greater => Ok(Continuity::Restarted),
                Equal if self.clock < previous.clock => Err(ClockError::ClockWentBackwards {
                    previous: previous.clock,
                    current: self.clock,
                }),
                Equal => Ok(Continuity::SameBoot),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(reset_count: u32, restart_count: u32, clock: u64) -> ClockInfo {
        ClockInfo {
            clock,
            reset_count,
            restart_count,
            safe: true,
        }
    }

    #[test]
    fn continuity_table() {
        let prev = at(5, 2, 10_000);
        let cases = [
            (
                "later, same boot",
                at(5, 2, 40_000),
                Ok(Continuity::SameBoot),
            ),
            ("same clock", at(5, 2, 10_000), Ok(Continuity::SameBoot)),
            ("restart", at(5, 3, 100), Ok(Continuity::Restarted)),
            ("reboot, clock back", at(6, 0, 50), Ok(Continuity::Rebooted)),
            (
                "clock back",
                at(5, 2, 9_999),
                Err(ClockError::ClockWentBackwards {
                    previous: 10_000,
                    current: 9_999,
                }),
            ),
            (
                "restart count back",
                at(5, 1, 20_000),
                Err(ClockError::RestartCountWentBackwards {
                    previous: 2,
                    current: 1,
                }),
            ),
            (
                "reset count back",
                at(4, 9, 90_000),
                Err(ClockError::ResetCountWentBackwards {
                    previous: 5,
                    current: 4,
                }),
            ),
        ];
        for (name, now, want) in cases {
            assert_eq!(now.since(&prev), want, "{name}");
        }
    }
}
