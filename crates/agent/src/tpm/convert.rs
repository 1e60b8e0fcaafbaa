//! Conversions between trustpool-api/evidence types and tss-esapi types.

use trustpool_api::{HashAlgorithm, PcrSelection};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{PcrSelectSize, PcrSelectionList, PcrSlot};
use tss_esapi::tss2_esys::{TPML_PCR_SELECTION, TPMS_PCR_SELECTION};

use crate::tpm::TpmError;

/// The tss-esapi hashing algorithm of a bank.
pub(crate) fn hashing(bank: HashAlgorithm) -> HashingAlgorithm {
    match bank {
        HashAlgorithm::Sha1 => HashingAlgorithm::Sha1,
        HashAlgorithm::Sha256 => HashingAlgorithm::Sha256,
        HashAlgorithm::Sha384 => HashingAlgorithm::Sha384,
        HashAlgorithm::Sha512 => HashingAlgorithm::Sha512,
    }
}

/// The evidence crate's hash of a bank.
pub(crate) fn evidence_alg(bank: HashAlgorithm) -> trustpool_evidence::HashAlg {
    match bank {
        HashAlgorithm::Sha1 => trustpool_evidence::HashAlg::Sha1,
        HashAlgorithm::Sha256 => trustpool_evidence::HashAlg::Sha256,
        HashAlgorithm::Sha384 => trustpool_evidence::HashAlg::Sha384,
        HashAlgorithm::Sha512 => trustpool_evidence::HashAlg::Sha512,
    }
}

/// The PCR slot of an index (0..=23, validated by the API type).
pub(crate) fn slot(index: u8) -> Result<PcrSlot, TpmError> {
    let bit = 1u32.checked_shl(u32::from(index)).ok_or_else(|| TpmError::BadRequest(format!("PCR {index} does not exist")))?;
    PcrSlot::try_from(bit).map_err(|_| TpmError::BadRequest(format!("PCR {index} does not exist")))
}

/// A tss-esapi selection list, banks in the request's order. (tss-esapi's
/// `PcrSelectionListBuilder` keeps banks in a `HashMap`, so its order is arbitrary; the
/// quote's digest depends on the order, and the verifier compares it with the request.)
pub(crate) fn selection_list(selection: &PcrSelection) -> Result<PcrSelectionList, TpmError> {
    let bad = |e: tss_esapi::Error| TpmError::BadRequest(format!("PCR selection: {e}"));
    let mut tpml = TPML_PCR_SELECTION::default();
    for bank in selection.banks() {
        let slots = bank.pcrs.iter().map(|i| slot(*i)).collect::<Result<Vec<_>, _>>()?;
        let one = tss_esapi::structures::PcrSelection::create(hashing(bank.bank), PcrSelectSize::ThreeOctets, &slots).map_err(bad)?;
        let index = usize::try_from(tpml.count).map_err(|_| TpmError::BadRequest("too many banks".to_owned()))?;
        let entry = tpml.pcrSelections.get_mut(index).ok_or_else(|| TpmError::BadRequest("too many banks".to_owned()))?;
        *entry = TPMS_PCR_SELECTION::from(one);
        tpml.count = tpml.count.saturating_add(1);
    }
    PcrSelectionList::try_from(tpml).map_err(bad)
}
