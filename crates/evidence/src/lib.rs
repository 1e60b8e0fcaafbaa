//! Pure-Rust parsing and verification of TPM 2.0 evidence: quotes (`TPMS_ATTEST` +
//! `TPMT_SIGNATURE`), attestation and endorsement keys (`TPMT_PUBLIC`), TCG PC Client
//! event logs (crypto-agile and legacy SHA-1), and the verifier's half of credential
//! activation (`make_credential`).
//!
//! Everything the attestation server calls "trusted" rests on this crate, so it is strict:
//! every byte is read through one bounds-checked [`Reader`], sizes are bounded by named
//! constants, trailing bytes are an error, and nothing is padded, truncated or guessed.
//! A [`VerifiedQuote`] can only be built by [`verify_quote`].
//!
//! ```
//! use trustpool_evidence::{AttestationKey, Challenge, QuoteEvidence, VerifyOptions, verify_quote};
//! # fn check(ak_public: trustpool_evidence::Public, nonce: &[u8],
//! #          selection: &trustpool_evidence::PcrSelection, pcrs: &trustpool_evidence::PcrValues,
//! #          attest: &[u8], signature: &[u8]) -> Result<(), trustpool_evidence::VerifyError> {
//! // The AK's TPMT_PUBLIC comes from the enrolment record, never from the evidence.
//! let ak = AttestationKey::new(ak_public, VerifyOptions::default())?;
//! let quote = verify_quote(&ak, &Challenge { nonce, selection }, &QuoteEvidence { attest, signature, pcrs })?;
//! println!("PCRs verified: {}", quote.selection());
//! # Ok(()) }
//! ```
//!
//! What this crate does **not** do: it performs no I/O, holds no trust anchors (callers
//! pass the enrolled AK), issues no nonces and keeps no state (freshness and single use
//! of nonces, reboot tracking and policy are the attestation server's), and does not log.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    clippy::cast_possible_truncation
)]

pub mod alg;
pub mod codec;
pub mod credential;
pub mod spki;
pub mod tpm;
pub mod tpm2_tools;
mod verify;

pub use alg::{Digest, EccCurve, HashAlg};
pub use codec::{ParseError, Reader, Writer};
pub use tpm::attest::{Attest, Attested, ClockInfo, QuoteInfo};
pub use tpm::clock::{ClockError, Continuity};
pub use tpm::pcr::{PcrIndex, PcrSelection, PcrSet, PcrValues};
pub use tpm::public::{ObjectAttributes, Public, PublicKey, Scheme, SymDef};
pub use tpm::signature::{SigScheme, Signature, SignatureValue};
pub use verify::{
    AttestationKey, Challenge, KeyProvenance, QuoteEvidence, VerifiedQuote, VerifyError,
    VerifyOptions, verify_quote,
};
pub mod event_log;
pub use credential::{Credential, CredentialError, make_credential};
pub use event_log::replay::{
    LogMatchesQuote, PcrMismatch, ReplayError, ReplayedLog, replay, replay_banks,
};
pub use event_log::{Event, EventLog, EventType, LogFormat};
