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

/// Longest bootstrap token accepted (the server makes 32-byte hex tokens).
pub const MAX_TOKEN_LEN: usize = 256;

/// What an agent tells the server about itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The compute host's name (what Nova calls `hypervisor_hostname`): a DNS name
    /// ([`crate::names::check_name`]). Other names (aliases) are an administrator's to set,
    /// never the agent's claim.
    pub host_name: String,
    /// The single-use bootstrap token an administrator made for this host name
    /// (`trustpool host-add NAME`). Not needed when the administrator named this TPM's EK
    /// certificate instead, nor to renew an enrollment that changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<String>,
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

impl std::fmt::Debug for RegisterRequest {
    /// Everything but the token (requests are logged).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("host_name", &self.host_name)
            .field(
                "enrollment_token",
                &self.enrollment_token.as_ref().map(|_| ".."),
            )
            .field("agent_url", &self.agent_url)
            .finish_non_exhaustive()
    }
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
