//! The TPM device: opened once by the TPM task, holding the loaded AK. Every other object
//! and session it creates is flushed before the call returns, also on errors; stale
//! transient objects and sessions (left on an swtpm, which has no resource manager, by a
//! crashed agent) are flushed when it opens.

use std::path::PathBuf;
use std::str::FromStr as _;

use trustpool_api::{HexBytes, Nonce, PcrBankValues, PcrSelection};
use trustpool_evidence::{Attest, Attested, Digest as EvDigest, PcrIndex, PcrValues};
use tss_esapi::Context;
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::{CapabilityType, PropertyTag, SessionType};
use tss_esapi::handles::{AuthHandle, KeyHandle, ObjectHandle, SessionHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Data, EncryptedSecret, IdObject, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::Marshall;

use crate::config::KeyAlgorithm;
use crate::tpm::convert;
use crate::tpm::error::{TpmError, cmd};
use crate::tpm::keys;

/// What the TPM task needs to open the device.
#[derive(Debug, Clone)]
pub struct TpmSettings {
    /// The TCTI (`device:/dev/tpmrm0`, `swtpm:path=…`).
    pub tcti: String,
    /// Where the AK blobs live.
    pub state_dir: PathBuf,
    /// EK template.
    pub ek_algorithm: KeyAlgorithm,
    /// AK algorithm.
    pub ak_algorithm: KeyAlgorithm,
}

/// The TPM's identity and keys, as `/v1/info` reports them.
#[derive(Debug, Clone)]
pub struct Identity {
    /// AK `TPM2B_PUBLIC`.
    pub ak_public: Vec<u8>,
    /// AK TPM Name.
    pub ak_name: Vec<u8>,
    /// EK `TPM2B_PUBLIC`.
    pub ek_public: Vec<u8>,
    /// EK certificate (DER) from NV.
    pub ek_certificate: Option<Vec<u8>>,
    /// Manufacturer id (4 ASCII characters, trailing spaces/NULs trimmed).
    pub manufacturer: String,
    /// Vendor string.
    pub vendor_string: String,
    /// Firmware version.
    pub firmware_version: u64,
}

impl Identity {
    /// swtpm identifies itself as manufacturer "IBM" with vendor string "SW TPM".
    #[must_use]
    pub fn is_software(&self) -> bool {
        self.vendor_string
            .replace(' ', "")
            .eq_ignore_ascii_case("SWTPM")
    }
}

/// A quote and the PCR values it covers, checked against its digest.
#[derive(Debug, Clone)]
pub struct QuoteOutput {
    /// The marshalled `TPMS_ATTEST`.
    pub attest: Vec<u8>,
    /// The marshalled `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
    /// The values, per bank in request order.
    pub pcrs: Vec<PcrBankValues>,
}

pub(crate) struct Device {
    ctx: Context,
    settings: TpmSettings,
    ak: KeyHandle,
    identity: Identity,
    active_banks: Vec<HashingAlgorithm>,
}

impl Device {
    pub(crate) fn open(settings: TpmSettings) -> Result<Self, TpmError> {
        let tcti = TctiNameConf::from_str(&settings.tcti).map_err(|_| TpmError::Tcti {
            tcti: settings.tcti.clone(),
        })?;
        let mut ctx = Context::new(tcti).map_err(cmd("open TCTI"))?;
        flush_stale(&mut ctx)?;
        let ek = keys::create_ek(&mut ctx, settings.ek_algorithm)?;
        let loaded = (|| {
            let (ek_public, _, _) = ctx.read_public(ek).map_err(cmd("ReadPublic(EK)"))?;
            let ek_public = keys::tpm2b_public(&ek_public)?;
            let (ak, ak_public) =
                keys::load_or_create_ak(&mut ctx, ek, &settings.state_dir, settings.ak_algorithm)?;
            Ok::<_, TpmError>((ek_public, ak, ak_public))
        })();
        let flushed = ctx
            .flush_context(ek.into())
            .map_err(cmd("FlushContext(EK)"));
        let (ek_public, ak, ak_public) = loaded?;
        flushed?;
        let ak_public = keys::tpm2b_public(&ak_public)?;
        let ak_name = trustpool_evidence::Public::parse_tpm2b(&ak_public)
            .map_err(|e| TpmError::Unexpected(format!("AK public: {e}")))?
            .name();
        let ek_certificate = keys::ek_certificate(&mut ctx, settings.ek_algorithm);
        let manufacturer = ascii(property(&mut ctx, PropertyTag::Manufacturer)?);
        let mut vendor_string = String::new();
        for tag in [
            PropertyTag::VendorString1,
            PropertyTag::VendorString2,
            PropertyTag::VendorString3,
            PropertyTag::VendorString4,
        ] {
            vendor_string.push_str(&ascii(property(&mut ctx, tag)?));
        }
        let fw1 = u64::from(property(&mut ctx, PropertyTag::FirmwareVersion1)?);
        let fw2 = u64::from(property(&mut ctx, PropertyTag::FirmwareVersion2)?);
        let identity = Identity {
            ak_public,
            ak_name,
            ek_public,
            ek_certificate,
            manufacturer,
            vendor_string: vendor_string.trim().to_owned(),
            firmware_version: (fw1 << 32) | fw2,
        };
        let active_banks = convert::active_banks(&mut ctx).map_err(cmd("GetCapability(PCRS)"))?;
        Ok(Self {
            ctx,
            settings,
            ak,
            identity,
            active_banks,
        })
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Quotes, reads the PCRs, and checks the values against the quote's digest; retries
    /// once if a PCR was extended between the two (they are separate TPM commands).
    pub(crate) fn quote(
        &mut self,
        nonce: &Nonce,
        selection: &PcrSelection,
    ) -> Result<QuoteOutput, TpmError> {
        if let Some(bank) = selection
            .banks()
            .iter()
            .find(|b| !self.active_banks.contains(&convert::hashing(b.bank)))
        {
            return Err(TpmError::BadRequest(format!(
                "the TPM has no active {} PCR bank",
                bank.bank.name()
            )));
        }
        let list = convert::selection_list(selection)?;
        for _attempt in 0..2 {
            let data = Data::try_from(nonce.as_bytes().to_vec()).map_err(cmd("nonce"))?;
            let ak = self.ak;
            let (attest, signature) = self
                .ctx
                .execute_with_nullauth_session(|ctx| {
                    ctx.quote(ak, data, SignatureScheme::Null, list.clone())
                })
                .map_err(cmd("Quote"))?;
            let attest = attest.marshall().map_err(cmd("marshal TPMS_ATTEST"))?;
            let signature = signature
                .marshall()
                .map_err(cmd("marshal TPMT_SIGNATURE"))?;
            let data = convert::read_pcrs(&mut self.ctx, list.clone())?;
            let mut pcrs = Vec::new();
            let mut values = PcrValues::new();
            for bank in selection.banks() {
                let tss_bank = data.pcr_bank(convert::hashing(bank.bank)).ok_or_else(|| {
                    TpmError::BadRequest(format!("the TPM has no active {} bank", bank.bank.name()))
                })?;
                let mut bank_values = std::collections::BTreeMap::new();
                for index in &bank.pcrs {
                    let digest = tss_bank
                        .get_digest(convert::slot(*index)?)
                        .ok_or_else(|| TpmError::Unexpected(format!("no value for PCR {index}")))?;
                    let bytes = digest.value().to_vec();
                    let ev = EvDigest::new(convert::evidence_alg(bank.bank), &bytes)
                        .ok_or_else(|| TpmError::Unexpected("PCR value size".to_owned()))?;
                    if let Some(i) = PcrIndex::new(*index) {
                        values.insert(i, ev);
                    }
                    bank_values.insert(*index, HexBytes(bytes));
                }
                pcrs.push(PcrBankValues {
                    bank: bank.bank,
                    values: bank_values,
                });
            }
            if digest_matches(&attest, &signature, &values)? {
                return Ok(QuoteOutput {
                    attest,
                    signature,
                    pcrs,
                });
            }
            tracing::warn!("PCRs changed between quote and read; retrying once");
        }
        Err(TpmError::PcrsChanged)
    }

    /// `TPM2_ActivateCredential` with the AK (password) and the EK (PolicySecret on the
    /// endorsement hierarchy, as the default EK templates require).
    pub(crate) fn activate(
        &mut self,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        let id_object = IdObject::try_from(id_object.to_vec())
            .map_err(|e| TpmError::BadRequest(format!("id_object: {e}")))?;
        let secret = EncryptedSecret::try_from(encrypted_secret.to_vec())
            .map_err(|e| TpmError::BadRequest(format!("encrypted_secret: {e}")))?;
        let ek = keys::create_ek(&mut self.ctx, self.settings.ek_algorithm)?;
        let ak = self.ak;
        let result = (|| {
            let session = self
                .ctx
                .start_auth_session(
                    None,
                    None,
                    None,
                    SessionType::Policy,
                    SymmetricDefinition::AES_128_CFB,
                    HashingAlgorithm::Sha256,
                )
                .map_err(cmd("StartAuthSession"))?
                .ok_or_else(|| TpmError::Unexpected("no session handle".to_owned()))?;
            let (attrs, mask) = SessionAttributesBuilder::new()
                .with_decrypt(true)
                .with_encrypt(true)
                .build();
            self.ctx
                .tr_sess_set_attributes(session, attrs, mask)
                .map_err(cmd("TRSess_SetAttributes"))?;
            let session_object: ObjectHandle = SessionHandle::from(session).into();
            self.ctx
                .execute_with_temporary_object(session_object, |ctx, _| {
                    let policy = PolicySession::try_from(session)?;
                    ctx.execute_with_nullauth_session(|ctx| {
                        ctx.policy_secret(
                            policy,
                            AuthHandle::Endorsement,
                            Default::default(),
                            Default::default(),
                            Default::default(),
                            None,
                        )
                    })?;
                    ctx.execute_with_sessions(
                        (Some(AuthSession::Password), Some(session), None),
                        |ctx| ctx.activate_credential(ak, ek, id_object, secret),
                    )
                })
                .map_err(cmd("ActivateCredential"))
        })();
        let flushed = self
            .ctx
            .flush_context(ek.into())
            .map_err(cmd("FlushContext(EK)"));
        let digest = result?;
        flushed?;
        Ok(digest.value().to_vec())
    }

    /// Transient objects currently loaded (the AK alone, when nothing leaks).
    pub(crate) fn transient_objects(&mut self) -> Result<usize, TpmError> {
        Ok(handles(
            &mut self.ctx,
            tss_esapi::constants::tss::TPM2_TRANSIENT_FIRST,
        )?
        .len())
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Err(e) = self.ctx.flush_context(self.ak.into()) {
            tracing::warn!(error = %e, "could not flush the AK on shutdown");
        }
    }
}

fn property(ctx: &mut Context, tag: PropertyTag) -> Result<u32, TpmError> {
    Ok(ctx
        .get_tpm_property(tag)
        .map_err(cmd("GetCapability(TPM_PROPERTIES)"))?
        .unwrap_or(0))
}

fn ascii(value: u32) -> String {
    value
        .to_be_bytes()
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .map(|b| char::from(*b))
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn handles(ctx: &mut Context, first: u32) -> Result<Vec<TpmHandle>, TpmError> {
    let (data, _) = ctx
        .get_capability(CapabilityType::Handles, first, 64)
        .map_err(cmd("GetCapability(HANDLES)"))?;
    match data {
        CapabilityData::Handles(list) => Ok(list
            .iter()
            .copied()
            .filter(|h| (u32::from(*h) & 0xff00_0000) == (first & 0xff00_0000))
            .collect()),
        _ => Err(TpmError::Unexpected(
            "GetCapability(HANDLES) returned another capability".to_owned(),
        )),
    }
}

/// Flushes transient objects and loaded sessions left by an earlier process. On
/// `/dev/tpmrm0` the kernel's resource manager already did, and there are none.
fn flush_stale(ctx: &mut Context) -> Result<(), TpmError> {
    use tss_esapi::constants::tss::{TPM2_LOADED_SESSION_FIRST, TPM2_TRANSIENT_FIRST};
    for first in [TPM2_TRANSIENT_FIRST, TPM2_LOADED_SESSION_FIRST] {
        for handle in handles(ctx, first)? {
            let object = ctx
                .execute_without_session(|ctx| ctx.tr_from_tpm_public(handle))
                .map_err(cmd("TR_FromTPMPublic"))?;
            ctx.flush_context(object)
                .map_err(cmd("FlushContext(stale)"))?;
            tracing::info!(
                handle = format_args!("{:#010x}", u32::from(handle)),
                "flushed a stale TPM handle"
            );
        }
    }
    Ok(())
}

/// Whether `values` hash to the quote's `pcrDigest` (with the signature's hash).
fn digest_matches(attest: &[u8], signature: &[u8], values: &PcrValues) -> Result<bool, TpmError> {
    let parsed =
        Attest::parse(attest).map_err(|e| TpmError::Unexpected(format!("TPMS_ATTEST: {e}")))?;
    let sig = trustpool_evidence::Signature::parse(signature)
        .map_err(|e| TpmError::Unexpected(format!("TPMT_SIGNATURE: {e}")))?;
    let Attested::Quote(info) = parsed.attested else {
        return Err(TpmError::Unexpected(
            "TPM2_Quote returned a non-quote".to_owned(),
        ));
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for (alg, set) in info.pcr_select.banks() {
        for index in set.iter() {
            match values.get(*alg, index) {
                Some(v) => parts.push(v.as_bytes()),
                None => return Ok(false),
            }
        }
    }
    Ok(sig.hash.hash_parts(&parts).as_bytes() == info.pcr_digest)
}
