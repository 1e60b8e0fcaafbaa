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
    let bit = 1u32
        .checked_shl(u32::from(index))
        .ok_or_else(|| TpmError::BadRequest(format!("PCR {index} does not exist")))?;
    PcrSlot::try_from(bit).map_err(|_| TpmError::BadRequest(format!("PCR {index} does not exist")))
}

/// A tss-esapi selection list, banks in the request's order. (tss-esapi's
/// `PcrSelectionListBuilder` keeps banks in a `HashMap`, so its order is arbitrary; the
/// quote's digest depends on the order, and the verifier compares it with the request.)
pub(crate) fn selection_list(selection: &PcrSelection) -> Result<PcrSelectionList, TpmError> {
    let bad = |e: tss_esapi::Error| TpmError::BadRequest(format!("PCR selection: {e}"));
    let mut tpml = TPML_PCR_SELECTION::default();
    for bank in selection.banks() {
        let slots = bank
            .pcrs
            .iter()
            .map(|i| slot(*i))
            .collect::<Result<Vec<_>, _>>()?;
        let one = tss_esapi::structures::PcrSelection::create(
            hashing(bank.bank),
            PcrSelectSize::ThreeOctets,
            &slots,
        )
        .map_err(bad)?;
        let index = usize::try_from(tpml.count)
            .map_err(|_| TpmError::BadRequest("too many banks".to_owned()))?;
        let entry = tpml
            .pcrSelections
            .get_mut(index)
            .ok_or_else(|| TpmError::BadRequest("too many banks".to_owned()))?;
        *entry = TPMS_PCR_SELECTION::from(one);
        tpml.count = tpml.count.saturating_add(1);
    }
    PcrSelectionList::try_from(tpml).map_err(bad)
}

/// The PCR banks the TPM has active (`TPM2_GetCapability(TPM_CAP_PCRS)`), in its order.
pub(crate) fn active_banks(
    ctx: &mut tss_esapi::Context,
) -> Result<Vec<HashingAlgorithm>, tss_esapi::Error> {
    use tss_esapi::constants::CapabilityType;
    use tss_esapi::structures::CapabilityData;
    let (data, _) = ctx.get_capability(CapabilityType::AssignedPcr, 0, 16)?;
    let CapabilityData::AssignedPcr(list) = data else {
        return Ok(Vec::new());
    };
    Ok(list
        .get_selections()
        .iter()
        .filter(|s| !s.is_empty())
        .map(tss_esapi::structures::PcrSelection::hashing_algorithm)
        .collect())
}

/// `TPM2_PCR_Read` until the whole selection is read (a TPM returns at most 8 digests per
/// call). Bounded, and an error when the TPM returns nothing for what is left (an inactive
/// bank): tss-esapi's `pcr::read_all` loops forever in that case.
pub(crate) fn read_pcrs(
    ctx: &mut tss_esapi::Context,
    mut list: PcrSelectionList,
) -> Result<tss_esapi::abstraction::pcr::PcrData, TpmError> {
    let mut data = tss_esapi::abstraction::pcr::PcrData::new();
    // 4 banks × 24 PCRs / 8 per read = 12 reads at most.
    for _ in 0..16 {
        if list.is_empty() {
            return Ok(data);
        }
        let (_, read, digests) = ctx
            .execute_without_session(|ctx| ctx.pcr_read(list.clone()))
            .map_err(crate::tpm::error::cmd("PCR_Read"))?;
        if read.is_empty() {
            return Err(TpmError::BadRequest(
                "the TPM returned no values for part of the selection (is that bank active?)"
                    .to_owned(),
            ));
        }
        data.add(&read, &digests)
            .map_err(crate::tpm::error::cmd("PCR_Read"))?;
        list.subtract(&read)
            .map_err(crate::tpm::error::cmd("PCR_Read"))?;
    }
    Err(TpmError::Unexpected("PCR_Read did not finish".to_owned()))
}
