//! The known-good database's logic: a [`Policy`] (BIOS part + VMM/OS part, each a set of
//! PCR rules matched by value or event by event), [`appraise()`] verified evidence against
//! the policies a host accepts (any-of), and a [`Verdict`] with every [`Reason`] it is not
//! trusted. Also: the JSON [`PolicyDocument`] and [`from_evidence`] (import from a golden
//! host).
//!
//! Pure: no I/O, no clock. It only ever sees evidence `trustpool-evidence` verified
//! ([`VerifiedQuote`](trustpool_evidence::VerifiedQuote), [`VerifiedLog`]); freshness and
//! the `unknown` level (never attested, expired) are the attestation server's.
//!
//! Fail closed: a policy part without rules is refused; a PCR the policy names but the
//! quote does not cover, an event no rule allows, a missing required event, a missing log
//! for event rules — each makes the verdict untrusted.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod appraise;
mod document;
mod import;
mod model;

pub use appraise::{Evidence, Reason, Verdict, VerifiedLog, appraise, appraise_one, explain};
pub use document::{EventDocument, PartDocument, PcrDocument, PolicyDocument};
pub use import::{Draft, ImportOptions, UEFI_BOOT_CHAIN, draft, from_evidence, from_values};
pub use model::{EventRule, Part, PartPolicy, PcrRule, Policy, PolicyError};
