//! Test support for trustpool: software attestation keys that build quotes with the same
//! byte layout a TPM uses (for negative tests that need a *signed* malformed quote, and
//! for load tests), and a launcher for a private swtpm with tpm2-tools at hand.
//!
//! Nothing here is used by a production binary. Functional tests of TPM behaviour use
//! [`swtpm::Swtpm`], a real software TPM, never [`soft_ak::SoftAk`].

// Test support only (a dev-dependency): a failed expectation here is a failed test, so
// panicking is the right response and these lints do not apply.
#![allow(
    clippy::missing_panics_doc,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod attest;
pub mod fixtures;
pub mod pki;
pub mod pool;
pub mod ports;
pub mod soft_ak;
pub mod swtpm;
