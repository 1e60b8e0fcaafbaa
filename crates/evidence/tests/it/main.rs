//! Integration tests of trustpool-evidence: real tpm2-tools fixtures, the negative matrix,
//! parser robustness, event logs, and (feature `swtpm`) credential activation on swtpm.

// Test code: a failed unwrap is a failed test (clippy's allow-*-in-tests covers only
// `#[test]` functions, not their helpers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions
)]

mod credential;
mod event_log;
mod fixtures;
mod negative;
mod parsers;

/// A small deterministic PRNG (xorshift64*) for robustness loops: reproducible failures.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
