//! Builds `TPMS_ATTEST` quote bodies field by field (TPM 2.0 Library Part 2, §10.12.12),
//! so a test can change exactly one field.

use trustpool_evidence::tpm::attest::{TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE};
use trustpool_evidence::{HashAlg, PcrSelection, PcrValues, Writer};

/// A quote body under construction. Defaults look like an swtpm quote.
#[derive(Debug, Clone)]
pub struct AttestBuilder {
    /// `magic`.
    pub magic: u32,
    /// `type`.
    pub tag: u16,
    /// `qualifiedSigner`.
    pub qualified_signer: Vec<u8>,
    /// `extraData`.
    pub extra_data: Vec<u8>,
    /// `clockInfo.clock`.
    pub clock: u64,
    /// `clockInfo.resetCount`.
    pub reset_count: u32,
    /// `clockInfo.restartCount`.
    pub restart_count: u32,
    /// `clockInfo.safe`.
    pub safe: u8,
    /// `firmwareVersion`.
    pub firmware_version: u64,
    /// `pcrSelect`.
    pub selection: PcrSelection,
    /// `pcrDigest`.
    pub pcr_digest: Vec<u8>,
}

impl AttestBuilder {
    /// A quote over `values` (all of them, selection as `values.selection()`), with the
    /// digest computed with `hash`.
    #[must_use]
    pub fn quote(nonce: &[u8], values: &PcrValues, hash: HashAlg) -> Self {
        let selection = values.selection();
        Self::quote_selection(nonce, &selection, values, hash)
    }

    /// A quote over `selection`, the digest computed from `values` with `hash`.
    #[must_use]
    pub fn quote_selection(
        nonce: &[u8],
        selection: &PcrSelection,
        values: &PcrValues,
        hash: HashAlg,
    ) -> Self {
        let mut parts: Vec<&[u8]> = Vec::new();
        for (bank, set) in selection.banks() {
            for i in set.iter() {
                parts.push(
                    values
                        .get(*bank, i)
                        .expect("value for every selected PCR")
                        .as_bytes(),
                );
            }
        }
        let mut signer = vec![0x00, 0x0b];
        signer.extend_from_slice(HashAlg::Sha256.hash(b"trustpool test signer").as_bytes());
        Self {
            magic: TPM_GENERATED_VALUE,
            tag: TPM_ST_ATTEST_QUOTE,
            qualified_signer: signer,
            extra_data: nonce.to_vec(),
            clock: 15_358,
            reset_count: 1,
            restart_count: 0,
            safe: 1,
            firmware_version: 0x2019_1023_0016_3636,
            selection: selection.clone(),
            pcr_digest: hash.hash_parts(&parts).as_bytes().to_vec(),
        }
    }

    /// The marshalled `TPMS_ATTEST`.
    #[must_use]
    pub fn build(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32_be(self.magic).u16_be(self.tag);
        w.tpm2b(&self.qualified_signer, "qualifiedSigner")
            .expect("small");
        w.tpm2b(&self.extra_data, "extraData").expect("small");
        w.u64_be(self.clock)
            .u32_be(self.reset_count)
            .u32_be(self.restart_count)
            .u8(self.safe);
        w.u64_be(self.firmware_version);
        self.selection.write(&mut w);
        w.tpm2b(&self.pcr_digest, "pcrDigest").expect("small");
        w.into_bytes()
    }
}
