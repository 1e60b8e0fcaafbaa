//! The `trustpool` binary against real tpm2-tools output: exit codes, messages, JSON.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod attestation;
mod quote_verify;
