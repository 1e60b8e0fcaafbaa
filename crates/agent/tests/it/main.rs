//! The agent against a real swtpm (feature `swtpm`): keys, emulated measured boot,
//! quotes verified by trustpool-evidence and tpm2_checkquote, activation, API errors,
//! handle leaks, mutual TLS, registration.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "swtpm")]
mod harness;
#[cfg(feature = "swtpm")]
mod register;
#[cfg(feature = "swtpm")]
mod swtpm;

mod config_checks;
