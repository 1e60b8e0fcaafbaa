//! Quote verification. [`verify_quote`] is the only constructor of [`VerifiedQuote`].
//!
//! The checks, in order (each has its own [`VerifyError`] variant and a test in which
//! only it fails):
//! 1. the AK's attributes and scheme — when the [`AttestationKey`] is built;
//! 2. the structures parse strictly (`Malformed`);
//! 3. the signature's scheme and hash are the AK's and allowed (`SchemeMismatch`,
//!    `HashNotAllowed`), and it verifies over the exact `TPMS_ATTEST` bytes
//!    (`SignatureInvalid`);
//! 4. `magic` is `TPM_GENERATED_VALUE` (`WrongMagic`) and the type is a quote (`NotAQuote`);
//! 5. `extraData` equals the issued nonce (`NonceMismatch`);
//! 6. the quoted selection is exactly the one asked for (`SelectionMismatch`);
//! 7. a value is reported for every quoted PCR and for no other (`PcrValueMissing`,
//!    `PcrValueNotQuoted`), and they hash to `pcrDigest` (`PcrDigestMismatch`).

mod error;
mod key;

pub use error::VerifyError;
pub use key::{AttestationKey, KeyProvenance, VerifyOptions};

use crate::alg::{HashAlg, hex_string};
use crate::tpm::attest::{Attest, Attested, ClockInfo, TPM_GENERATED_VALUE};
use crate::tpm::pcr::{PcrSelection, PcrValues};
use crate::tpm::signature::Signature;

/// What the verifier expects of this quote.
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    /// The nonce issued for this challenge (fresh, single use: the caller's job).
    pub nonce: &'a [u8],
    /// The PCR selection the challenge asked for.
    pub selection: &'a PcrSelection,
}

/// Evidence as the agent sent it.
#[derive(Debug, Clone, Copy)]
pub struct QuoteEvidence<'a> {
    /// The bare `TPMS_ATTEST` (the signed message).
    pub attest: &'a [u8],
    /// The `TPMT_SIGNATURE`.
    pub signature: &'a [u8],
    /// The PCR values the agent read.
    pub pcrs: &'a PcrValues,
}

/// Proof that the signature verified. Only this module creates it.
#[derive(Debug, Clone, Copy)]
struct SignatureVerified(HashAlg);
/// Proof that `extraData` matched the nonce.
#[derive(Debug, Clone, Copy)]
struct NonceMatched(());
/// Proof that the PCR values hash to the signed digest.
#[derive(Debug, Clone, Copy)]
struct PcrDigestMatched(());

/// A quote every check has passed. Fields are private and there is no other constructor
/// than [`verify_quote`], so holding one means the checks ran.
#[derive(Debug, Clone)]
pub struct VerifiedQuote {
    signature: SignatureVerified,
    _nonce: NonceMatched,
    _pcrs: PcrDigestMatched,
    provenance: KeyProvenance,
    clock_info: ClockInfo,
    firmware_version: u64,
    qualified_signer: Vec<u8>,
    selection: PcrSelection,
    pcrs: PcrValues,
}

impl VerifiedQuote {
    /// The PCR values, now proven to be the ones the TPM signed.
    #[must_use]
    pub fn pcrs(&self) -> &PcrValues {
        &self.pcrs
    }

    /// The quoted selection (equal to the one asked for).
    #[must_use]
    pub fn selection(&self) -> &PcrSelection {
        &self.selection
    }

    /// The TPM's clock, reset and restart counts at quote time.
    #[must_use]
    pub fn clock_info(&self) -> ClockInfo {
        self.clock_info
    }

    /// The TPM's firmware version.
    #[must_use]
    pub fn firmware_version(&self) -> u64 {
        self.firmware_version
    }

    /// `qualifiedSigner`: the AK's qualified name.
    #[must_use]
    pub fn qualified_signer(&self) -> &[u8] {
        &self.qualified_signer
    }

    /// The hash of the signature and the PCR digest.
    #[must_use]
    pub fn hash(&self) -> HashAlg {
        self.signature.0
    }

    /// What was known about the key: a [`KeyProvenance::BareKey`] means the AK's
    /// attributes could not be checked.
    #[must_use]
    pub fn key_provenance(&self) -> KeyProvenance {
        self.provenance
    }
}

/// Verifies a quote against the enrolled AK and the challenge that was issued.
///
/// # Errors
/// The first failed check, as a [`VerifyError`] naming it.
pub fn verify_quote(
    ak: &AttestationKey,
    challenge: &Challenge<'_>,
    evidence: &QuoteEvidence<'_>,
) -> Result<VerifiedQuote, VerifyError> {
    let attest = Attest::parse(evidence.attest)?;
    let signature = Signature::parse(evidence.signature)?;

    let hash = ak.check_signature(attest.raw(), &signature)?;
    let signature = SignatureVerified(hash);

    if attest.magic != TPM_GENERATED_VALUE {
        return Err(VerifyError::WrongMagic { got: attest.magic });
    }
    let Attested::Quote(info) = &attest.attested else {
        return Err(VerifyError::NotAQuote { got: attest.tag() });
    };

    // The nonce is public; a constant-time comparison would protect nothing.
    if attest.extra_data != challenge.nonce {
        return Err(VerifyError::NonceMismatch);
    }
    let nonce = NonceMatched(());

    if info.pcr_select != *challenge.selection {
        return Err(VerifyError::SelectionMismatch {
            asked: challenge.selection.clone(),
            quoted: info.pcr_select.clone(),
        });
    }

    let pcrs = check_pcr_digest(hash, &info.pcr_select, evidence.pcrs, info.pcr_digest)?;

    Ok(VerifiedQuote {
        signature,
        _nonce: nonce,
        _pcrs: pcrs,
        provenance: ak.provenance(),
        clock_info: attest.clock_info,
        firmware_version: attest.firmware_version,
        qualified_signer: attest.qualified_signer.to_vec(),
        selection: info.pcr_select.clone(),
        pcrs: evidence.pcrs.clone(),
    })
}

/// `pcrDigest = H_sign(PCR values of the selection, banks in selection order, indices
/// ascending)` — TPM 2.0 Library Part 3, §18.4 (TPM2_Quote) and Part 1, §17.6.
fn check_pcr_digest(
    hash: HashAlg,
    selection: &PcrSelection,
    values: &PcrValues,
    quoted: &[u8],
) -> Result<PcrDigestMatched, VerifyError> {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(selection.value_count());
    for (bank, set) in selection.banks() {
        for index in set.iter() {
            let value = values
                .get(*bank, index)
                .ok_or(VerifyError::PcrValueMissing { bank: *bank, index })?;
            parts.push(value.as_bytes());
        }
    }
    for bank in values.algs() {
        let quoted_set = selection.bank(bank).unwrap_or_default();
        if let Some((index, _)) = values.bank(bank).find(|(i, _)| !quoted_set.contains(*i)) {
            return Err(VerifyError::PcrValueNotQuoted { bank, index });
        }
    }
    let computed = hash.hash_parts(&parts);
    if computed.as_bytes() != quoted {
        return Err(VerifyError::PcrDigestMismatch {
            computed,
            quoted: hex_string(quoted),
        });
    }
    Ok(PcrDigestMatched(()))
}
