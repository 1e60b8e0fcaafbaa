//! Why a quote was rejected: one variant per check, so that a test can make exactly one
//! check fail and assert which.

use thiserror::Error;

use crate::alg::{Digest, HashAlg};
use crate::codec::ParseError;
use crate::tpm::pcr::{PcrIndex, PcrSelection};

/// A quote (or the key meant to verify it) failed a check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A structure could not be parsed.
    #[error("malformed evidence")]
    Malformed(#[from] ParseError),
    /// The attestation key lacks an attribute an AK must have (restricted, sign,
    /// fixedTPM, fixedParent, sensitiveDataOrigin).
    #[error("attestation key attribute {0} is not set")]
    AkAttributeMissing(&'static str),
    /// The attestation key has an attribute an AK must not have (decrypt).
    #[error("attestation key attribute {0} is set, but an attestation key must be signing-only")]
    AkAttributeForbidden(&'static str),
    /// The attestation key does not name a fixed signing scheme (RSASSA, RSAPSS or ECDSA
    /// with a hash), so the quote's digest algorithm would be the signer's choice.
    #[error("attestation key has no fixed signing scheme")]
    AkSchemeNotFixed,
    /// The RSA attestation key is shorter than 2048 bits.
    #[error("attestation key is RSA-{bits}; at least RSA-2048 is required")]
    AkKeyTooSmall {
        /// Modulus size in bits.
        bits: usize,
    },
    /// The attestation key's Name algorithm is weaker than SHA-256 (and SHA-1 is not
    /// allowed): its binding to the EK by credential activation rests on that hash.
    #[error("attestation key nameAlg {0} is not allowed; SHA-256 or stronger is required")]
    AkNameAlgNotAllowed(HashAlg),
    /// A hash algorithm the caller did not allow (SHA-1 unless explicitly enabled).
    #[error("hash algorithm {0} is not allowed")]
    HashNotAllowed(HashAlg),
    /// The signature's scheme or hash is not the attestation key's.
    #[error("signature scheme {got} does not match the attestation key's scheme {expected}")]
    SchemeMismatch {
        /// The key's scheme (`rsassa-sha256`).
        expected: String,
        /// The signature's scheme.
        got: String,
    },
    /// The signature does not verify under the enrolled attestation key.
    #[error("quote signature does not verify under the attestation key")]
    SignatureInvalid,
    /// `TPMS_ATTEST.magic` is not `TPM_GENERATED_VALUE`: the TPM did not produce it.
    #[error("TPMS_ATTEST.magic is {got:#010x}, not TPM_GENERATED_VALUE (0xff544347)")]
    WrongMagic {
        /// The magic found.
        got: u32,
    },
    /// `TPMS_ATTEST.type` is not `TPM_ST_ATTEST_QUOTE`.
    #[error("TPMS_ATTEST.type is {got:#06x}, not TPM_ST_ATTEST_QUOTE (0x8018)")]
    NotAQuote {
        /// The type found.
        got: u16,
    },
    /// `extraData` is not the nonce issued for this challenge.
    #[error("quote nonce (extraData) does not match the issued challenge")]
    NonceMismatch,
    /// The quote covers other PCRs than were asked for.
    #[error("quote covers PCRs {quoted}, but {asked} were asked for")]
    SelectionMismatch {
        /// The selection in the challenge.
        asked: PcrSelection,
        /// The selection in the quote.
        quoted: PcrSelection,
    },
    /// A PCR in the quote's selection has no reported value.
    #[error("no value reported for quoted PCR {bank}:{index}")]
    PcrValueMissing {
        /// Bank.
        bank: HashAlg,
        /// PCR.
        index: PcrIndex,
    },
    /// A value was reported for a PCR the quote does not cover (it would be unverified).
    #[error("value reported for PCR {bank}:{index}, which the quote does not cover")]
    PcrValueNotQuoted {
        /// Bank.
        bank: HashAlg,
        /// PCR.
        index: PcrIndex,
    },
    /// The reported PCR values do not hash to the quote's `pcrDigest`.
    #[error("PCR values hash to {computed}, but the quote's pcrDigest is {quoted}")]
    PcrDigestMismatch {
        /// Digest of the reported values.
        computed: Digest,
        /// `pcrDigest` as signed (hex).
        quoted: String,
    },
}
