//! Registration with the attestation server: register, activate the credential challenge
//! in the TPM, return the proof. Retries with exponential backoff (1 s doubling up to
//! `retry_max`) while the server is away or refuses.

use std::time::Duration;

use trustpool_api::Base64Bytes;
use trustpool_api::enrollment::{ActivationProof, EnrollmentState, RegisterRequest};
use trustpool_client::{AttestationClient, ClientError, TlsOptions};

use crate::config::{Config, ServerConfig};
use crate::tpm::{Tpm, TpmError};

/// One failed attempt.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The server could not be reached or refused.
    #[error("attestation server")]
    Server(#[from] ClientError),
    /// The TPM could not activate the challenge.
    #[error("credential activation")]
    Tpm(#[from] TpmError),
    /// Local files.
    #[error("{0}")]
    Local(String),
}

/// The registration request for this agent.
#[must_use]
pub fn register_request(
    config: &Config,
    tpm: &Tpm,
    agent_certificate: String,
    enrollment_token: Option<String>,
) -> RegisterRequest {
    let id = tpm.identity();
    RegisterRequest {
        host_name: config.host_name.clone(),
        enrollment_token,
        agent_url: config.url.clone(),
        agent_certificate,
        ek_public: Base64Bytes(id.ek_public.clone()),
        ek_certificate: id.ek_certificate.clone().map(Base64Bytes),
        ak_public: Base64Bytes(id.ak_public.clone()),
    }
}

/// One registration attempt: register → ActivateCredential → proof.
///
/// # Errors
/// An `EnrollError`.
pub async fn enroll_once(
    client: &AttestationClient,
    tpm: &Tpm,
    request: &RegisterRequest,
) -> Result<EnrollmentState, EnrollError> {
    let response = client.register(request).await?;
    let secret = tpm
        .activate(
            response.challenge.id_object.0,
            response.challenge.encrypted_secret.0,
        )
        .await?;
    let proof = ActivationProof {
        challenge_id: response.challenge.challenge_id,
        secret: Base64Bytes(secret),
    };
    Ok(client
        .prove_activation(&response.agent_id, &proof)
        .await?
        .state)
}

/// Registers until it succeeds, backing off between attempts.
///
/// # Errors
/// `Local` when the server's CA or the agent certificate cannot be read (retrying would
/// not help).
pub async fn enroll(
    config: &Config,
    server: &ServerConfig,
    tpm: &Tpm,
) -> Result<EnrollmentState, EnrollError> {
    let ca = std::fs::read_to_string(&server.ca)
        .map_err(|e| EnrollError::Local(format!("{}: {e}", server.ca.display())))?;
    let cert = std::fs::read_to_string(&config.cert)
        .map_err(|e| EnrollError::Local(format!("{}: {e}", config.cert.display())))?;
    let client = AttestationClient::new(
        &server.url,
        &TlsOptions {
            ca_pem: Some(ca),
            identity: None,
        },
        Duration::from_secs(30),
    )?;
    // The token is read once: without it, only a renewal of an unchanged enrollment (or a
    // name whose grant names this TPM's EK certificate) succeeds.
    // A missing file is no token (an operator may remove it once the host is enrolled:
    // it is single use); only an unchanged enrollment, or a grant naming this TPM's EK,
    // succeeds without one.
    let token = match &server.enrollment_token_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "no enrollment token file: registering without a token");
                None
            }
            Err(e) => return Err(EnrollError::Local(format!("{}: {e}", path.display()))),
        },
        None => None,
    };
    let request = register_request(config, tpm, cert, token);
    let mut delay = Duration::from_secs(1);
    loop {
        match enroll_once(&client, tpm, &request).await {
            Ok(state) => {
                tracing::info!(?state, server = %server.url, "enrolled");
                return Ok(state);
            }
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), retry_in = ?delay, "registration failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(server.retry_max);
            }
        }
    }
}
