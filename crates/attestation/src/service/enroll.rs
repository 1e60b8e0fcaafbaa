//! Enrollment: an agent registers (host name, EK public + certificate, AK public, URL, TLS
//! certificate); the server checks the EK certificate chain and that its key is the EK,
//! checks the AK's attributes, and answers with a MakeCredential challenge; the host is
//! accepted only after the activated secret comes back. Every step is audited.
//!
//! Which name a TPM may take is an administrator's decision: a registration must carry the
//! name's grant (a single-use bootstrap token, or an EK certificate the administrator
//! named), except an agent restarting with exactly its enrolled record. One TPM (EK) and
//! one AK have one name. See docs/decisions/0007-enrollment-credentials.md.

use std::net::IpAddr;
use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use trustpool_api::Base64Bytes;
use trustpool_api::bytes::to_hex;
use trustpool_api::enrollment::{
    ActivationProof, CredentialChallenge, EnrollmentState, EnrollmentStatus, MAX_TOKEN_LEN,
    RegisterRequest, RegisterResponse,
};
use trustpool_api::names::check_name;
use trustpool_evidence::{AttestationKey, Public, VerifyOptions, make_credential};

use super::{Service, ServiceError};
use crate::ekcert::EkCaKind;
use crate::store::{HostRecord, HostState, new_id, now_ms};

/// How long a credential challenge may be answered.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

impl Service {
    /// Step 1: checks a registration and issues the credential challenge. Nothing is
    /// reserved by it: a name is taken only when the challenge is answered.
    ///
    /// # Errors
    /// `BadRequest` for a malformed name, certificate or URL (checked before a rate token
    /// is taken); `Rejected` for unusable keys; `EkCertificate`; `Forbidden` (no valid
    /// enrollment credential, a software TPM without permission, an EK other than the one
    /// the administrator named); `Conflict` (this TPM or AK is another host's).
    pub async fn register(
        &self,
        req: &RegisterRequest,
        source: Option<IpAddr>,
    ) -> Result<RegisterResponse, ServiceError> {
        check_request(req)?;
        self.take_enrollment_token(source, "registrations")?;
        let name = req.host_name.as_str();
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
            .ek_cas()
            .validate(cert.as_slice(), &ek, now_ms() / 1000)?;
        if kind == EkCaKind::Software && !self.config.allow_software_tpm {
            self.refuse(name, "software TPM (swtpm) and allow_software_tpm is off")
                .await?;
            return Err(ServiceError::Forbidden("this is a software TPM; the server accepts them only with enrollment.allow_software_tpm".to_owned()));
        }
        let agent_id = to_hex(&ak_name);
        let record = RegistrationRecord {
            request: RegisterRequest {
                enrollment_token: None,
                ..req.clone()
            },
            software_tpm: kind == EkCaKind::Software,
            token_sha256: req
                .enrollment_token
                .as_deref()
                .map(|t| sha256_hex(t.as_bytes())),
        };
        if let Err(e) = self.admission(&agent_id, &record).await {
            self.refuse(name, &e.to_string()).await?;
            return Err(e);
        }
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| ServiceError::Rejected("no randomness".to_owned()))?;
        let credential = make_credential(&ek, &ak_name, &secret)
            .map_err(|e| ServiceError::Rejected(format!("endorsement key: {e}")))?;
        let challenge_id = new_id();
        let registration =
            serde_json::to_string(&record).map_err(|e| ServiceError::Rejected(e.to_string()))?;
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

    /// One token from the client's own bucket, then one from the server-wide one: a client
    /// that floods spends only its own.
    fn take_enrollment_token(
        &self,
        source: Option<IpAddr>,
        what: &str,
    ) -> Result<(), ServiceError> {
        if let Some(ip) = source
            && !self.enrollment_sources.try_take(ip)
        {
            return Err(ServiceError::TooMany(format!(
                "too many {what} from {ip} right now; retry later"
            )));
        }
        if !self.enrollment_bucket.try_take() {
            return Err(ServiceError::TooMany(format!(
                "too many {what} right now; retry later"
            )));
        }
        Ok(())
    }

    async fn refuse(&self, name: &str, why: &str) -> Result<(), ServiceError> {
        self.store
            .audit("agent", "register_refused", name, why)
            .await?;
        Ok(())
    }

    /// Whether this registration may enroll, and how: the rules of one TPM, one name. Run
    /// at registration and again, against the database as it is then, at activation.
    ///
    /// - the AK and the EK must not be enrolled under another name;
    /// - a registration identical to the enrolled record (same name, EK, AK, URL and
    ///   certificate: an agent restarting) renews it and needs no credential;
    /// - anything else needs the name's grant, unexpired: if the administrator named an
    ///   EK certificate, this TPM's must be it (and then no token is needed); otherwise the
    ///   token must be the grant's, and an enrolled name keeps its TPM (EK).
    async fn admission(
        &self,
        agent_id: &str,
        record: &RegistrationRecord,
    ) -> Result<Admission, ServiceError> {
        let req = &record.request;
        let name = req.host_name.as_str();
        let ek_key = ek_key_sha256(req.ek_public.as_slice())?;
        if let Some(other) = self.store.host(agent_id).await?
            && other.host_name != name
        {
            return Err(ServiceError::Conflict(format!(
                "this AK is enrolled as host {}: one TPM, one name (an administrator deletes that host first)",
                other.host_name
            )));
        }
        if let Some(other) = self.store.host_by_ek_key(&ek_key).await?
            && other.host_name != name
        {
            return Err(ServiceError::Conflict(format!(
                "this TPM (EK) is enrolled as host {}: one TPM, one name (an administrator deletes that host first)",
                other.host_name
            )));
        }
        let existing = self.store.host_by_name(name).await?;
        if let Some(h) = &existing
            && h.ek_public == req.ek_public.as_slice()
            && h.agent_id == agent_id
            && h.agent_url == req.agent_url
            && h.agent_certificate == req.agent_certificate
        {
            return Ok(Admission::Renewal);
        }
        let now = now_ms();
        let grant = self
            .store
            .grant(name)
            .await?
            .filter(|g| g.expires_at > now)
            .ok_or_else(|| {
                ServiceError::Forbidden(match &existing {
                    Some(_) => format!(
                        "host {name} is enrolled with other keys, URL or certificate; changing them needs an administrator: trustpool host-reenroll {name}"
                    ),
                    None => format!(
                        "no enrollment credential for host {name}: an administrator runs `trustpool host-add {name}` and gives the agent its token"
                    ),
                })
            })?;
        let ek_sha256 = req
            .ek_certificate
            .as_ref()
            .map(|c| sha256_hex(c.as_slice()))
            .unwrap_or_default();
        match &grant.ek_sha256 {
            Some(expected) => {
                if verify_slices_are_equal(expected.as_bytes(), ek_sha256.as_bytes()).is_err() {
                    return Err(ServiceError::Forbidden(format!(
                        "host {name} may enroll only with the TPM whose EK certificate has SHA-256 {expected}; this one has {ek_sha256}"
                    )));
                }
            }
            None => {
                let sent = record.token_sha256.as_deref().unwrap_or_default();
                if verify_slices_are_equal(sent.as_bytes(), grant.token_hash.as_bytes()).is_err() {
                    return Err(ServiceError::Forbidden(format!(
                        "the enrollment token for host {name} is {}",
                        if sent.is_empty() {
                            "missing"
                        } else {
                            "wrong (or was used or replaced)"
                        }
                    )));
                }
                if let Some(h) = &existing
                    && ek_key_sha256(&h.ek_public).ok().as_deref() != Some(ek_key.as_str())
                {
                    return Err(ServiceError::Forbidden(format!(
                        "host {name} is enrolled with another TPM; enrolling a new TPM needs a re-enrollment naming its EK: trustpool host-reenroll {name} --ek-sha256 <SHA-256 of its EK certificate>"
                    )));
                }
            }
        }
        Ok(Admission::Granted {
            replaces: existing.map(Box::new),
            grant,
            ek_key,
        })
    }

    /// Step 2: the activated secret proves the AK lives beside the certified EK. The host
    /// is stored, its grant consumed and any record it replaces removed in one
    /// transaction.
    ///
    /// # Errors
    /// `NotFound` for an unknown, used or expired challenge; `Forbidden` for a wrong secret
    /// or a credential no longer valid; `Conflict` when another host took the name or TPM
    /// meanwhile.
    pub async fn prove(
        &self,
        agent_id: &str,
        proof: &ActivationProof,
        source: Option<IpAddr>,
    ) -> Result<EnrollmentStatus, ServiceError> {
        // Cheap checks first: an agent id is the hex of an AK Name, a challenge id 32 hex
        // digits, a secret 32 bytes (what register issued).
        let hex = |t: &str, max: usize| {
            !t.is_empty() && t.len() <= max && t.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !hex(agent_id, 2 * 66)
            || !hex(&proof.challenge_id, 64)
            || proof.secret.as_slice().len() > 64
        {
            return Err(ServiceError::NotFound("challenge".to_owned()));
        }
        self.take_enrollment_token(source, "activation proofs")?;
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
        let admission = match self.admission(agent_id, &record).await {
            Ok(a) => a,
            Err(e) => {
                self.refuse(&record.request.host_name, &e.to_string())
                    .await?;
                return Err(e);
            }
        };
        let (replaces, grant, ek_key) = match admission {
            Admission::Renewal => {
                let current = self
                    .store
                    .host(agent_id)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound("host".to_owned()))?;
                self.store
                    .audit(
                        "agent",
                        "renewed",
                        &current.host_name,
                        &format!("agent {agent_id}"),
                    )
                    .await?;
                return Ok(status(agent_id, current.state));
            }
            Admission::Granted {
                replaces,
                grant,
                ek_key,
            } => (replaces, grant, ek_key),
        };
        let req = record.request;
        let now = now_ms();
        let approved = replaces
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
            aliases: replaces
                .as_ref()
                .map_or_else(|| grant.aliases.clone(), |h| h.aliases.clone()),
            agent_url: req.agent_url.clone(),
            agent_certificate: req.agent_certificate.clone(),
            ek_public: req.ek_public.0.clone(),
            ek_certificate: req.ek_certificate.as_ref().map(|c| c.0.clone()),
            ak_public: req.ak_public.0.clone(),
            state,
            policies: replaces
                .as_ref()
                .map(|h| h.policies.clone())
                .unwrap_or_default(),
            software_tpm: record.software_tpm,
            created_at: now,
            updated_at: now,
            clock_reset_at: None,
        };
        self.store
            .enroll_host(
                &host,
                Some(&ek_key),
                replaces.as_ref().map(|h| h.agent_id.as_str()),
                Some(&grant.token_hash),
            )
            .await?;
        let detail = match &replaces {
            Some(old) => format!(
                "agent {agent_id} replaces {} ({}), state {}, credential from {}",
                old.agent_id,
                if ek_key_sha256(&old.ek_public).ok().as_deref() == Some(ek_key.as_str()) {
                    "same TPM"
                } else {
                    "another TPM"
                },
                state.as_str(),
                grant.created_by
            ),
            None => format!(
                "agent {agent_id}, state {}, credential from {}",
                state.as_str(),
                grant.created_by
            ),
        };
        self.store
            .audit("agent", "enrolled", &host.host_name, &detail)
            .await?;
        // The challenger's next sync (within a second) takes the host in and attests it. Not
        // synced here: at 50 registrations a second over 100,000 hosts, a sync per
        // registration would read five million row versions a second.
        Ok(status(agent_id, state))
    }
}

fn status(agent_id: &str, state: HostState) -> EnrollmentStatus {
    EnrollmentStatus {
        agent_id: agent_id.to_owned(),
        state: if state == HostState::Enrolled {
            EnrollmentState::Enrolled
        } else {
            EnrollmentState::PendingApproval
        },
    }
}

/// How a registration may enroll.
#[derive(Debug)]
enum Admission {
    /// It changes nothing: an agent restarting.
    Renewal,
    /// An administrator's grant lets it take the name (replacing the record it names).
    Granted {
        replaces: Option<Box<HostRecord>>,
        grant: crate::store::Grant,
        /// SHA-256 of the EK's SubjectPublicKeyInfo (one TPM, one name).
        ek_key: String,
    },
}

/// The SHA-256 (hex) of an EK's key as a DER SubjectPublicKeyInfo: the same key however its
/// `TPM2B_PUBLIC` is encoded or attributed, so one TPM cannot pass for two.
///
/// # Errors
/// `Rejected` for an EK that does not parse.
pub(crate) fn ek_key_sha256(ek_public: &[u8]) -> Result<String, ServiceError> {
    let ek = Public::parse_tpm2b(ek_public)
        .map_err(|e| ServiceError::Rejected(format!("ek_public: {e}")))?;
    Ok(sha256_hex(&trustpool_evidence::spki::to_spki_der(&ek.key)))
}

/// Largest agent certificate (PEM) accepted: one certificate, with room for long names.
const MAX_AGENT_CERTIFICATE: usize = 16 * 1024;

/// Largest EK certificate (DER) accepted: manufacturers' are 1-2 KiB.
const MAX_EK_CERTIFICATE: usize = 16 * 1024;

/// The cheap checks, before a rate token is taken or any key is parsed.
fn check_request(req: &RegisterRequest) -> Result<(), ServiceError> {
    check_name(&req.host_name, "host_name")?;
    if req.agent_certificate.len() > MAX_AGENT_CERTIFICATE {
        return Err(ServiceError::BadRequest(format!(
            "agent_certificate: {} bytes; at most {MAX_AGENT_CERTIFICATE}",
            req.agent_certificate.len()
        )));
    }
    match trustpool_client::tls::certificates(&req.agent_certificate, "agent certificate") {
        Ok(chain) if chain.len() == 1 => {}
        _ => {
            return Err(ServiceError::BadRequest(
                "agent_certificate: must be exactly one certificate, the agent's TLS certificate (PEM)"
                    .to_owned(),
            ));
        }
    }
    if req
        .ek_certificate
        .as_ref()
        .is_some_and(|c| c.as_slice().len() > MAX_EK_CERTIFICATE)
    {
        return Err(ServiceError::BadRequest(format!(
            "ek_certificate: at most {MAX_EK_CERTIFICATE} bytes"
        )));
    }
    // TPM2B_PUBLIC: a 2-byte size, then at most MAX_PUBLIC_SIZE bytes.
    let max_public = trustpool_evidence::tpm::public::MAX_PUBLIC_SIZE.saturating_add(2);
    if req.ek_public.as_slice().len() > max_public || req.ak_public.as_slice().len() > max_public {
        return Err(ServiceError::BadRequest(format!(
            "ek_public, ak_public: a TPM2B_PUBLIC is at most {max_public} bytes"
        )));
    }
    if !req.agent_url.starts_with("https://") || req.agent_url.len() > 512 {
        return Err(ServiceError::BadRequest(
            "agent_url: must be https://… (at most 512 bytes)".to_owned(),
        ));
    }
    if req
        .enrollment_token
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > MAX_TOKEN_LEN)
    {
        return Err(ServiceError::BadRequest(format!(
            "enrollment_token: 1-{MAX_TOKEN_LEN} bytes"
        )));
    }
    Ok(())
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RegistrationRecord {
    /// The request, without its token.
    request: RegisterRequest,
    software_tpm: bool,
    /// SHA-256 (hex) of the token it presented: checked again at activation.
    token_sha256: Option<String>,
}
