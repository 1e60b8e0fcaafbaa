//! Enrollment: the agent registers with the attestation server, which answers with a
//! MakeCredential challenge; the agent proves its AK lives beside its EK by returning the
//! activated secret.
//!
//! ```text
//! agent                                    attestation server
//!   POST /v1/agents/register  RegisterRequest ──►  check EK cert chain, EK = cert key,
//!                                                  AK attributes; make_credential
//!   ◄── 201 RegisterResponse { agent_id, challenge }
//!   TPM2_ActivateCredential
//!   POST /v1/agents/{agent_id}/activation  ActivationProof ──►  compare secret
//!   ◄── 200 EnrollmentStatus { state: enrolled | pending_approval }
//! ```

use serde::{Deserialize, Serialize};

use crate::bytes::Base64Bytes;

/// Path of [`RegisterRequest`].
pub const REGISTER_PATH: &str = "/v1/agents/register";

/// Path of [`ActivationProof`] for an agent id.
#[must_use]
pub fn activation_path(agent_id: &str) -> String {
    format!("/v1/agents/{agent_id}/activation")
}

/// What an agent tells the server about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The compute host's name (what Nova calls `hypervisor_hostname`).
    pub host_name: String,
    /// Other names of the host (short name, FQDN) that PollHosts may use.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `https://host:port` where the server reaches the agent.
    pub agent_url: String,
    /// The agent's TLS server certificate (PEM), pinned by the server.
    pub agent_certificate: String,
    /// The EK's `TPM2B_PUBLIC`.
    pub ek_public: Base64Bytes,
    /// The EK certificate (DER) from the TPM's NV, or provided out of band.
    pub ek_certificate: Option<Base64Bytes>,
    /// The AK's `TPM2B_PUBLIC`.
    pub ak_public: Base64Bytes,
}

/// A MakeCredential challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialChallenge {
    /// Identifies this challenge (single use).
    pub challenge_id: String,
    /// Body of `TPM2B_ID_OBJECT`.
    pub id_object: Base64Bytes,
    /// Body of `TPM2B_ENCRYPTED_SECRET`.
    pub encrypted_secret: Base64Bytes,
}

/// The server's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The agent's id (hex of the AK Name).
    pub agent_id: String,
    /// The challenge to activate.
    pub challenge: CredentialChallenge,
}

/// The agent's proof: the activated secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationProof {
    /// The challenge answered.
    pub challenge_id: String,
    /// The secret `TPM2_ActivateCredential` returned.
    pub secret: Base64Bytes,
}

/// Where an enrollment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    /// Accepted: the server will challenge this agent.
    Enrolled,
    /// Proven, but an administrator must approve the host first.
    PendingApproval,
}

/// The answer to an [`ActivationProof`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentStatus {
    /// The agent id.
    pub agent_id: String,
    /// The state.
    pub state: EnrollmentState,
}
