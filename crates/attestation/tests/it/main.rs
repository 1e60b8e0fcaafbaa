//! The attestation server end to end: real agents on swtpm (feature `swtpm`), the store on
//! SQLite (and PostgreSQL when `TRUSTPOOL_TEST_POSTGRES` is set: `make test` starts one).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bounded;
mod browser;
mod cache;
mod check_config;
mod disk;
#[cfg(feature = "swtpm")]
mod e2e;
mod ekcert;
mod enroll;
mod fairness;
mod fixtures;
mod identity;
mod poll_hosts;
mod serving;
mod store;
