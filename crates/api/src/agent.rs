//! The agent's HTTPS API (served by `trustpool-agent`, called by the attestation server
//! over mutual TLS): `GET /v1/info`, `POST /v1/quote`, `POST /v1/activate`.

use serde::{Deserialize, Serialize};

use crate::bytes::{Base64Bytes, HexBytes};
use crate::nonce::Nonce;
use crate::pcr::{PcrBankValues, PcrSelection};

/// Path of [`AgentInfo`].
pub const INFO_PATH: &str = "/v1/info";
/// Path of [`QuoteRequest`] → [`QuoteResponse`].
pub const QUOTE_PATH: &str = "/v1/quote";
/// Path of [`ActivateRequest`] → [`ActivateResponse`].
pub const ACTIVATE_PATH: &str = "/v1/activate";

/// What the TPM says about itself (`TPM2_GetCapability(TPM_PROPERTIES)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TpmInfo {
    /// `TPM_PT_MANUFACTURER` as its 4-character vendor id (`IBM `, `IFX`, `STM `).
    pub manufacturer: String,
    /// `TPM_PT_VENDOR_STRING_1..4`, concatenated.
    pub vendor_string: String,
    /// `TPM_PT_FIRMWARE_VERSION_1` and `_2` as one u64 (as in `TPMS_ATTEST.firmwareVersion`).
    pub firmware_version: u64,
    /// True for a software TPM (swtpm): dev/test only; the server's default policy refuses it.
    pub software: bool,
}

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The compute host's name, as the scheduler knows it (`hypervisor_hostname`).
    pub host_name: String,
    /// Stable agent id: hex of the AK's TPM Name.
    pub agent_id: String,
    /// The AK's `TPM2B_PUBLIC`.
    pub ak_public: Base64Bytes,
    /// The AK's TPM Name.
    pub ak_name: HexBytes,
    /// The EK's `TPM2B_PUBLIC`.
    pub ek_public: Base64Bytes,
    /// The EK certificate (DER), when the TPM has one in NV.
    pub ek_certificate: Option<Base64Bytes>,
    /// The TPM.
    pub tpm: TpmInfo,
    /// The agent's version.
    pub agent_version: String,
}

/// `POST /v1/quote`: a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// The nonce to put in `extraData`.
    pub nonce: Nonce,
    /// The PCRs to quote, per bank.
    pub selection: PcrSelection,
    /// Whether to include the firmware event log (default true).
    #[serde(default = "yes")]
    pub include_event_log: bool,
}

fn yes() -> bool {
    true
}

/// The answer to a [`QuoteRequest`]: the TPM's bytes, unmodified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteResponse {
    /// `TPMS_ATTEST` exactly as signed (the body of the `TPM2B_ATTEST` TPM2_Quote returned).
    pub attest: Base64Bytes,
    /// `TPMT_SIGNATURE`.
    pub signature: Base64Bytes,
    /// The PCR values of the selection, read around the quote and checked against its digest.
    pub pcrs: Vec<PcrBankValues>,
    /// The TCG event log (`binary_bios_measurements`, or the emulated boot's log).
    pub event_log: Option<Base64Bytes>,
}

/// `POST /v1/activate`: a MakeCredential blob for the agent's AK and EK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// Body of `TPM2B_ID_OBJECT`.
    pub id_object: Base64Bytes,
    /// Body of `TPM2B_ENCRYPTED_SECRET`.
    pub encrypted_secret: Base64Bytes,
}

/// The secret `TPM2_ActivateCredential` recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    /// The secret.
    pub secret: Base64Bytes,
}
