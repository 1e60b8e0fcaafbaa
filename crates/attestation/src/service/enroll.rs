//! Enrollment: an agent registers (host name, EK public + certificate, AK public, URL, TLS
//! certificate); the server checks the EK certificate chain and that its key is the EK,
//! checks the AK's attributes, and answers with a MakeCredential challenge; the host is
//! accepted only after the activated secret comes back. Every step is audited.

use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use trustpool_api::Base64Bytes;
use trustpool_api::bytes::to_hex;
use trustpool_api::enrollment::{
    ActivationProof, CredentialChallenge, EnrollmentState, EnrollmentStatus, RegisterRequest,
    RegisterResponse,
};
use trustpool_evidence::{AttestationKey, Public, VerifyOptions, make_credential};

use super::{Service, ServiceError};
use crate::ekcert::EkCaKind;
use crate::store::{HostRecord, HostState, new_id, now_ms};

/// How long a credential challenge may be answered.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);

fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

impl Service {
    /// Step 1: checks a registration and issues the credential challenge.
    ///
    /// # Errors
    /// `Rejected` for unusable keys, `EkCertificate`, `Forbidden` (software TPM without
    /// permission), `Conflict` (host name bound to another EK).
    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ServiceError> {
        if !self.enrollment_bucket.try_take() {
            return Err(ServiceError::TooMany(
                "too many registrations right now; retry later".to_owned(),
            ));
        }
        let name = req.host_name.trim();
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_whitespace) {
            return Err(ServiceError::Rejected(
                "host_name must be 1-255 characters without spaces".to_owned(),
            ));
        }
        if trustpool_client::tls::certificates(&req.agent_certificate, "agent certificate").is_err()
        {
            return Err(ServiceError::Rejected(
                "agent_certificate must be the agent's TLS certificate (PEM)".to_owned(),
            ));
        }
        if !req.agent_url.starts_with("https://") {
            return Err(ServiceError::Rejected(
                "agent_url must be https://".to_owned(),
            ));
        }
        let ek = Public::parse_tpm2b(req.ek_public.as_slice())
            .map_err(|e| ServiceError::Rejected(format!("ek_public: {e}")))?;
        let ak = Public::parse_tpm2b(req.ak_public.as_slice())
            .map_err(|e| ServiceError::Rejected(format!("ak_public: {e}")))?;
        let ak_name = ak.name();
        AttestationKey::new(ak, VerifyOptions::default())
            .map_err(|e| ServiceError::Rejected(format!("attestation key: {e}")))?;
        let cert = req
            .ek_certificate
            .as_ref()
            .ok_or_else(|| ServiceError::Rejected("an EK certificate is required".to_owned()))?;
        let kind = self
            .ek_cas
            .validate(cert.as_slice(), &ek, now_ms() / 1000)?;
        if kind == EkCaKind::Software && !self.config.allow_software_tpm {
            self.store
                .audit(
                    "agent",
                    "register_refused",
                    name,
                    "software TPM (swtpm) and allow_software_tpm is off",
                )
                .await?;
            return Err(ServiceError::Forbidden("this is a software TPM; the server accepts them only with enrollment.allow_software_tpm".to_owned()));
        }
        if let Some(existing) = self.store.host_by_name(name).await?
            && existing.ek_public != req.ek_public.as_slice()
            && existing.reenroll_until.is_none_or(|t| t <= now_ms())
        {
            self.store
                .audit(
                    "agent",
                    "register_refused",
                    name,
                    "host name bound to another EK",
                )
                .await?;
            return Err(ServiceError::Conflict(format!(
                "host {name} is enrolled with another TPM (EK); an administrator must allow a re-enrollment (POST /v1/hosts/{name}/re-enroll) or delete it"
            )));
        }
        let agent_id = to_hex(&ak_name);
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| ServiceError::Rejected("no randomness".to_owned()))?;
        let credential = make_credential(&ek, &ak_name, &secret)
            .map_err(|e| ServiceError::Rejected(format!("endorsement key: {e}")))?;
        let challenge_id = new_id();
        let registration = serde_json::to_string(&RegistrationRecord {
            request: req.clone(),
            software_tpm: kind == EkCaKind::Software,
        })
        .map_err(|e| ServiceError::Rejected(e.to_string()))?;
        let expires =
            now_ms().saturating_add(i64::try_from(CHALLENGE_TTL.as_millis()).unwrap_or(i64::MAX));
        self.store
            .put_challenge(
                &challenge_id,
                &agent_id,
                &sha256_hex(&secret),
                &registration,
                expires,
            )
            .await?;
        self.store
            .audit(
                "agent",
                "register",
                name,
                &format!("agent {agent_id}, EK CA kind {kind:?}"),
            )
            .await?;
        Ok(RegisterResponse {
            agent_id,
            challenge: CredentialChallenge {
                challenge_id,
                id_object: Base64Bytes(credential.id_object),
                encrypted_secret: Base64Bytes(credential.encrypted_secret),
            },
        })
    }

    /// Step 2: the activated secret proves the AK lives beside the certified EK.
    ///
    /// # Errors
    /// `NotFound` for an unknown, used or expired challenge; `Forbidden` for a wrong secret.
    pub async fn prove(
        &self,
        agent_id: &str,
        proof: &ActivationProof,
    ) -> Result<EnrollmentStatus, ServiceError> {
        if !self.enrollment_bucket.try_take() {
            return Err(ServiceError::TooMany(
                "too many activation proofs right now; retry later".to_owned(),
            ));
        }
        let challenge = self
            .store
            .take_challenge(&proof.challenge_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("challenge".to_owned()))?;
        if challenge.agent_id != agent_id || challenge.expires_at < now_ms() {
            return Err(ServiceError::NotFound("challenge".to_owned()));
        }
        let got = sha256_hex(proof.secret.as_slice());
        if verify_slices_are_equal(got.as_bytes(), challenge.secret_hash.as_bytes()).is_err() {
            self.store
                .audit(
                    "agent",
                    "activation_failed",
                    agent_id,
                    "wrong credential secret",
                )
                .await?;
            return Err(ServiceError::Forbidden(
                "the activated secret is wrong: the AK is not in the TPM that holds this EK"
                    .to_owned(),
            ));
        }
        let record: RegistrationRecord = serde_json::from_str(&challenge.registration)
            .map_err(|_| ServiceError::Rejected("stored registration".to_owned()))?;
        let req = record.request;
        let now = now_ms();
        let existing = self.store.host_by_name(&req.host_name).await?;
        if let Some(old) = &existing
            && old.ek_public != req.ek_public.as_slice()
            && old.reenroll_until.is_none_or(|t| t <= now_ms())
        {
            return Err(ServiceError::Conflict(format!(
                "host {} is enrolled with another TPM (EK) and its re-enrollment window closed",
                req.host_name
            )));
        }
        if let Some(old) = &existing
            && old.agent_id != agent_id
        {
            // Same EK with a new AK (the agent lost its state), or a re-enrollment an
            // administrator allowed: the new record replaces the old, keeping its policies.
            if old.ek_public != req.ek_public.as_slice() {
                self.store
                    .audit(
                        "agent",
                        "re-enrolled",
                        &req.host_name,
                        &format!("agent {} replaces {} (another TPM)", agent_id, old.agent_id),
                    )
                    .await?;
            }
            self.store.delete_host(&old.agent_id).await?;
        }
        let approved = existing
            .as_ref()
            .is_some_and(|h| h.state == HostState::Enrolled);
        let state = if self.config.require_approval && !approved {
            HostState::PendingApproval
        } else {
            HostState::Enrolled
        };
        let host = HostRecord {
            agent_id: agent_id.to_owned(),
            host_name: req.host_name.clone(),
            aliases: req.aliases.clone(),
            agent_url: req.agent_url.clone(),
            agent_certificate: req.agent_certificate.clone(),
            ek_public: req.ek_public.0.clone(),
            ek_certificate: req.ek_certificate.as_ref().map(|c| c.0.clone()),
            ak_public: req.ak_public.0.clone(),
            state,
            policies: existing.map(|h| h.policies).unwrap_or_default(),
            software_tpm: record.software_tpm,
            created_at: now,
            updated_at: now,
            reenroll_until: None,
        };
        self.store.put_host(&host).await?;
        self.store
            .audit(
                "agent",
                "enrolled",
                &host.host_name,
                &format!("agent {agent_id}, state {}", state.as_str()),
            )
            .await?;
        // The challenger's next sync (within a second) takes the host in and attests it. Not
        // synced here: at 50 registrations a second over 100,000 hosts, a sync per
        // registration would read five million row versions a second.
        Ok(EnrollmentStatus {
            agent_id: agent_id.to_owned(),
            state: if state == HostState::Enrolled {
                EnrollmentState::Enrolled
            } else {
                EnrollmentState::PendingApproval
            },
        })
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RegistrationRecord {
    request: RegisterRequest,
    software_tpm: bool,
}
