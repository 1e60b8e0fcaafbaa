//! `TPMS_ATTEST` — TPM 2.0 Library Part 2, rev. 1.59, §10.12.12, and `TPMS_QUOTE_INFO`
//! (§10.12.4). The signed message of a quote is the marshalled `TPMS_ATTEST` (not the
//! `TPM2B_ATTEST` around it): tpm2-tools `tpm2_quote -m` and tss-esapi `Attest::marshall`
//! both write the bare structure, which is what [`Attest::parse`] takes.

use crate::alg::MAX_DIGEST_SIZE;
use crate::codec::{ParseError, Reader};
use crate::tpm::pcr::PcrSelection;

/// `TPM_GENERATED_VALUE` (Part 2, §6.2): the TPM puts this in every structure it signs
/// so that a restricted key cannot be made to sign a forgery of one.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;

/// `TPM_ST_ATTEST_QUOTE` (Part 2, §6.9).
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// `sizeof(TPMU_NAME)`: a `TPMT_HA` with the largest digest (2 + 64 bytes).
pub const MAX_NAME_SIZE: usize = 2 + MAX_DIGEST_SIZE;

/// `sizeof(TPMT_HA)`: the largest `TPM2B_DATA` (extraData) a TPM accepts.
pub const MAX_EXTRA_DATA_SIZE: usize = 2 + MAX_DIGEST_SIZE;

/// Largest `TPM2B_ATTEST` body we accept: `sizeof(TPMS_ATTEST)` is bounded by the TPM's
/// buffer size (Part 2, §10.12.13); 4 KiB is the common `MAX_COMMAND_SIZE`.
pub const MAX_ATTEST_SIZE: usize = 4096;

/// `TPMS_CLOCK_INFO` (Part 2, §10.11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared.
    pub clock: u64,
    /// TPM resets (`TPM2_Startup(CLEAR)` after `Shutdown(CLEAR)` or none).
    pub reset_count: u32,
    /// TPM restarts / resumes since the last reset.
    pub restart_count: u32,
    /// False if `clock` may have gone backwards since it was last reported.
    pub safe: bool,
}

/// `TPMS_QUOTE_INFO` (Part 2, §10.12.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInfo<'a> {
    /// The PCRs the quote covers.
    pub pcr_select: PcrSelection,
    /// Hash (with the signing scheme's hash) of the selected PCR values, concatenated.
    pub pcr_digest: &'a [u8],
}

/// The `attested` union of `TPMS_ATTEST`, decoded for quotes only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attested<'a> {
    /// `TPM_ST_ATTEST_QUOTE`.
    Quote(QuoteInfo<'a>),
    /// Any other attestation type (certify, time, …), kept opaque; never a quote.
    Other {
        /// The `TPMI_ST_ATTEST` value.
        tag: u16,
        /// The undecoded union body.
        body: &'a [u8],
    },
}

/// A parsed `TPMS_ATTEST`. Parsing checks structure only; whether `magic` and the type
/// are right is a verification question ([`crate::verify_quote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest<'a> {
    /// `magic`, which must be [`TPM_GENERATED_VALUE`].
    pub magic: u32,
    /// `qualifiedSigner`: the qualified name of the signing key.
    pub qualified_signer: &'a [u8],
    /// `extraData`: the caller's nonce.
    pub extra_data: &'a [u8],
    /// `clockInfo`.
    pub clock_info: ClockInfo,
    /// `firmwareVersion`: vendor-specific.
    pub firmware_version: u64,
    /// The type-specific body.
    pub attested: Attested<'a>,
    raw: &'a [u8],
}

impl<'a> Attest<'a> {
    /// Parses the bare `TPMS_ATTEST`; trailing bytes are an error.
    ///
    /// # Errors
    /// A `ParseError` naming the field that is malformed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_ATTEST_SIZE {
            return Err(ParseError::TooLarge {
                what: "TPMS_ATTEST",
                offset: 0,
                len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                max: u64::try_from(MAX_ATTEST_SIZE).unwrap_or(u64::MAX),
            });
        }
        let mut r = Reader::new(bytes);
        let magic = r.u32_be("TPMS_ATTEST.magic")?;
        let tag = r.u16_be("TPMS_ATTEST.type")?;
        let qualified_signer = r.tpm2b(MAX_NAME_SIZE, "TPMS_ATTEST.qualifiedSigner")?;
        let extra_data = r.tpm2b(MAX_EXTRA_DATA_SIZE, "TPMS_ATTEST.extraData")?;
        let clock = r.u64_be("TPMS_CLOCK_INFO.clock")?;
        let reset_count = r.u32_be("TPMS_CLOCK_INFO.resetCount")?;
        let restart_count = r.u32_be("TPMS_CLOCK_INFO.restartCount")?;
        let safe_at = r.offset();
        let safe = match r.u8("TPMS_CLOCK_INFO.safe")? {
            0 => false,
            1 => true,
            // TPMI_YES_NO admits only NO (0) and YES (1): Part 2, §9.2.
            other => return Err(Reader::unexpected("TPMS_CLOCK_INFO.safe", safe_at, other)),
        };
        let firmware_version = r.u64_be("TPMS_ATTEST.firmwareVersion")?;
        let attested = if tag == TPM_ST_ATTEST_QUOTE {
            let pcr_select = PcrSelection::read(&mut r)?;
            let pcr_digest = r.tpm2b(MAX_DIGEST_SIZE, "TPMS_QUOTE_INFO.pcrDigest")?;
            r.finish("TPMS_ATTEST")?;
            Attested::Quote(QuoteInfo {
                pcr_select,
                pcr_digest,
            })
        } else {
            Attested::Other {
                tag,
                body: r.take_rest(),
            }
        };
        Ok(Self {
            magic,
            qualified_signer,
            extra_data,
            clock_info: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            attested,
            raw: bytes,
        })
    }

    /// Parses a `TPM2B_ATTEST` (u16 size then `TPMS_ATTEST`), as `TPM2_Quote` returns it.
    ///
    /// # Errors
    /// A `ParseError` for the size or the structure inside.
    pub fn parse_tpm2b(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let body = r.tpm2b(MAX_ATTEST_SIZE, "TPM2B_ATTEST.size")?;
        r.finish("TPM2B_ATTEST")?;
        Self::parse(body)
    }

    /// The exact bytes that were parsed (and signed).
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The `TPMI_ST_ATTEST` type value.
    #[must_use]
    pub fn tag(&self) -> u16 {
        match &self.attested {
            Attested::Quote(_) => TPM_ST_ATTEST_QUOTE,
            Attested::Other { tag, .. } => *tag,
        }
    }
}
