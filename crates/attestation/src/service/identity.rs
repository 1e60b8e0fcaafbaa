//! An administrator's side of host identity: the enrollment credentials (a new host's, a
//! re-enrollment's) and the aliases of a host. Every one is audited with the token name of
//! the administrator who did it.

use trustpool_api::bytes::to_hex;
use trustpool_api::names::{check_aliases, check_name};
use trustpool_api::v1::{AddHost, EnrollmentGrant, Reenroll};

use super::enroll::sha256_hex;
use super::{Service, ServiceError};
use crate::service::cache::rfc3339;
use crate::store::{Grant, HostRecord, NameHolder, now_ms};

const HOUR_MS: i64 = 60 * 60 * 1000;

/// A new host's credential is usable this long unless the administrator says otherwise.
const DEFAULT_NEW_HOST_HOURS: u32 = 24;

/// A re-enrollment window stays open this long unless the administrator says otherwise.
const DEFAULT_REENROLL_HOURS: u32 = 1;

/// Longest any credential may be usable (30 days).
const MAX_VALID_HOURS: u32 = 30 * 24;

/// A hex SHA-256 as an administrator may paste it (`AB:CD:…` from openssl, or plain hex),
/// lower-case without separators.
fn fingerprint(text: &str) -> Result<String, ServiceError> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(ServiceError::BadRequest(
            "ek_certificate_sha256: must be the SHA-256 of the EK certificate (DER), 64 hex digits (colons allowed)"
                .to_owned(),
        ))
    }
}

fn valid_for(hours: Option<u32>, default: u32) -> Result<i64, ServiceError> {
    let hours = hours.unwrap_or(default);
    if !(1..=MAX_VALID_HOURS).contains(&hours) {
        return Err(ServiceError::BadRequest(format!(
            "valid_hours: must be 1-{MAX_VALID_HOURS}"
        )));
    }
    Ok(now_ms().saturating_add(i64::from(hours).saturating_mul(HOUR_MS)))
}

/// A fresh 256-bit bootstrap token, hex.
fn new_token() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ServiceError::Rejected("no randomness".to_owned()))?;
    Ok(to_hex(&bytes))
}

impl Service {
    /// Lets a new host enroll under a name: stores the grant and returns its token (shown
    /// only now). Giving out a name again that a deleted host had is allowed (it is an
    /// administrator's explicit act); a name or alias an enrolled host holds is not.
    ///
    /// # Errors
    /// `BadRequest` for a malformed name, alias or fingerprint; `Conflict` for a name or
    /// alias in use.
    pub async fn add_host(
        &self,
        actor: &str,
        req: &AddHost,
    ) -> Result<EnrollmentGrant, ServiceError> {
        check_name(&req.host_name, "host_name")?;
        check_aliases(&req.host_name, &req.aliases)?;
        let ek_sha256 = req
            .ek_certificate_sha256
            .as_deref()
            .map(fingerprint)
            .transpose()?;
        let expires_at = valid_for(req.valid_hours, DEFAULT_NEW_HOST_HOURS)?;
        if self.store.host_by_name(&req.host_name).await?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "host {} is enrolled; to move it to another TPM or change its agent: trustpool host-reenroll {0}",
                req.host_name
            )));
        }
        for name in std::iter::once(&req.host_name).chain(&req.aliases) {
            self.name_is_free(name, None).await?;
        }
        let grant = self
            .put_grant(actor, &req.host_name, &req.aliases, ek_sha256, expires_at)
            .await?;
        self.store
            .audit(actor, "host_added", &req.host_name, &grant_detail(&grant))
            .await?;
        Ok(grant)
    }

    /// Opens a re-enrollment window for an enrolled host: with another TPM (whose EK
    /// certificate the administrator names: the first comer does not win), or with the same
    /// TPM and a new AK, agent URL or certificate. Policies, aliases and approval carry
    /// over. Returns the token (not needed when an EK is named).
    ///
    /// # Errors
    /// `NotFound`; `BadRequest` for a malformed fingerprint.
    pub async fn allow_reenroll(
        &self,
        actor: &str,
        host: &str,
        req: &Reenroll,
    ) -> Result<EnrollmentGrant, ServiceError> {
        let record = self.host_named(host).await?;
        let ek_sha256 = req
            .ek_certificate_sha256
            .as_deref()
            .map(fingerprint)
            .transpose()?;
        let expires_at = valid_for(req.valid_hours, DEFAULT_REENROLL_HOURS)?;
        let grant = self
            .put_grant(actor, &record.host_name, &[], ek_sha256, expires_at)
            .await?;
        self.store
            .audit(
                actor,
                "re-enroll_allowed",
                &record.host_name,
                &grant_detail(&grant),
            )
            .await?;
        Ok(grant)
    }

    async fn put_grant(
        &self,
        actor: &str,
        host_name: &str,
        aliases: &[String],
        ek_sha256: Option<String>,
        expires_at: i64,
    ) -> Result<EnrollmentGrant, ServiceError> {
        let token = new_token()?;
        self.store
            .put_grant(&Grant {
                host_name: host_name.to_owned(),
                token_hash: sha256_hex(token.as_bytes()),
                ek_sha256: ek_sha256.clone(),
                aliases: aliases.to_vec(),
                created_by: actor.to_owned(),
                created_at: now_ms(),
                expires_at,
            })
            .await?;
        Ok(EnrollmentGrant {
            host_name: host_name.to_owned(),
            token,
            ek_certificate_sha256: ek_sha256,
            aliases: aliases.to_vec(),
            expires: rfc3339(expires_at),
        })
    }

    /// Replaces a host's aliases (an administrator's: agents cannot claim names).
    ///
    /// # Errors
    /// `NotFound`; `BadRequest` for a malformed alias or more than 16; `Conflict` for an
    /// alias another host holds.
    pub async fn set_aliases(
        &self,
        actor: &str,
        host: &str,
        aliases: Vec<String>,
    ) -> Result<HostRecord, ServiceError> {
        let mut record = self.host_named(host).await?;
        check_aliases(&record.host_name, &aliases)?;
        for alias in &aliases {
            self.name_is_free(alias, Some(&record.agent_id)).await?;
        }
        self.store
            .set_aliases(&record.agent_id, &aliases, now_ms())
            .await?;
        self.store
            .audit(actor, "aliases_set", &record.host_name, &aliases.join(","))
            .await?;
        record.aliases = aliases;
        self.refresh_cache().await?;
        Ok(record)
    }

    /// A name may be given to a host (`for_host`, or a new one) when no other host holds it
    /// as a name or alias, and none answers to it now by its short name: an administrator
    /// never moves a name from one host to another without seeing it.
    async fn name_is_free(&self, name: &str, for_host: Option<&str>) -> Result<(), ServiceError> {
        let holder = match self.store.name_holder(name).await? {
            Some(NameHolder::Host(id)) => Some(id),
            Some(NameHolder::Retired) | None => self.cache.agent_id(name),
        };
        match holder {
            Some(id) if Some(id.as_str()) != for_host => Err(ServiceError::Conflict(format!(
                "the name {name} designates host {}",
                self.holder_name(&id).await?
            ))),
            _ => Ok(()),
        }
    }

    /// Revokes the enrollment credential for a name (a token handed to the wrong place, a
    /// re-enrollment no longer wanted).
    ///
    /// # Errors
    /// `NotFound` when there is none.
    pub async fn revoke_grant(&self, actor: &str, name: &str) -> Result<(), ServiceError> {
        if !self.store.delete_grant(name).await? {
            return Err(ServiceError::NotFound(format!(
                "an enrollment credential for {name}"
            )));
        }
        self.store.audit(actor, "grant_revoked", name, "").await?;
        Ok(())
    }

    /// Accepts that a host's TPM clock or counters went backwards (a `TPM2_Clear`, a
    /// replaced TPM firmware): its next quote becomes the baseline. Until then every quote
    /// is refused with the reason, on every server and across restarts. Audited.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn reset_clock(&self, actor: &str, host: &str) -> Result<HostRecord, ServiceError> {
        let mut record = self.host_named(host).await?;
        let at = now_ms();
        if !self.store.set_clock_reset(&record.agent_id, at).await? {
            return Err(ServiceError::NotFound(format!("host {host}")));
        }
        self.store
            .audit(
                actor,
                "clock_reset",
                &record.host_name,
                "the next quote is the TPM clock baseline",
            )
            .await?;
        record.clock_reset_at = Some(at);
        self.refresh_cache().await?;
        Ok(record)
    }

    async fn holder_name(&self, agent_id: &str) -> Result<String, ServiceError> {
        Ok(self
            .store
            .host(agent_id)
            .await?
            .map_or_else(|| format!("agent {agent_id}"), |h| h.host_name))
    }

    /// A host by its registered name or one of its aliases (both unique across the fleet;
    /// never by a short name, which could be another host's after a deletion).
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn host_named(&self, name: &str) -> Result<HostRecord, ServiceError> {
        if let Some(h) = self.store.host_by_name(name).await? {
            return Ok(h);
        }
        if let Some(NameHolder::Host(id)) = self.store.name_holder(name).await?
            && let Some(h) = self.store.host(&id).await?
        {
            return Ok(h);
        }
        Err(ServiceError::NotFound(format!("host {name}")))
    }
}

fn grant_detail(g: &EnrollmentGrant) -> String {
    format!(
        "{}aliases [{}], until {}",
        g.ek_certificate_sha256
            .as_ref()
            .map(|fp| format!("EK certificate SHA-256 {fp}, "))
            .unwrap_or_default(),
        g.aliases.join(","),
        g.expires
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_as_openssl_prints_them() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(fingerprint(&hex).unwrap(), hex);
        assert_eq!(fingerprint(&colons).unwrap(), hex);
        assert!(fingerprint("abc").is_err());
        assert!(fingerprint(&"zz".repeat(32)).is_err());
    }
}
