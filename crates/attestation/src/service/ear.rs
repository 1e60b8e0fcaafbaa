//! Signed attestation results: each verdict as an EAR (EAT Attestation Result,
//! draft-fv-rats-ear) in a JWT signed with ES256, the AR4SI trustworthiness vector
//! (draft-ietf-rats-ar4si) per host, and the public key as a JWKS at
//! `/.well-known/jwks.json`. Relying parties can check a host's state offline.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};
use trustpool_api::oat::TrustLevel;

use crate::store::VerdictRecord;

/// The key that signs results.
pub struct ResultSigner {
    key: EcdsaKeyPair,
    kid: String,
}

impl std::fmt::Debug for ResultSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A signing key problem.
#[derive(Debug, thiserror::Error)]
#[error("result signing key {path}: {reason}")]
pub struct SignerError {
    path: String,
    reason: String,
}

impl ResultSigner {
    /// Loads the PKCS#8 P-256 key at `path`, creating it (mode 0600) on first start.
    /// Servers sharing a database should share the key file.
    ///
    /// # Errors
    /// A `SignerError`.
    pub fn load_or_create(path: &Path) -> Result<Self, SignerError> {
        let err = |reason: String| SignerError {
            path: path.display().to_string(),
            reason,
        };
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        if !path.exists() {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let doc = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new())
                .map_err(|_| err("cannot generate".to_owned()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            // Written aside, then linked into place: if another server sharing the file
            // created it first, its key wins and both use it.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| err(e.to_string()))?;
            file.write_all(doc.as_ref())
                .and_then(|()| file.sync_all())
                .map_err(|e| err(e.to_string()))?;
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e.to_string())),
            }
        }
        let der = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let key = EcdsaKeyPair::from_pkcs8(alg, &der).map_err(|e| err(e.to_string()))?;
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.public_key().as_ref());
        let kid = B64URL.encode(digest.as_ref().get(..12).unwrap_or_default());
        Ok(Self { key, kid })
    }

    /// The JWKS with the public key.
    #[must_use]
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        let (x, y) = point
            .get(1..)
            .and_then(|xy| xy.split_at_checked(32))
            .unwrap_or_default();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "x": B64URL.encode(x), "y": B64URL.encode(y), "kid": self.kid, "alg": "ES256", "use": "sig"}]})
    }

    /// The EAR JWT for a host's verdict; `ttl_ms` bounds its validity (`exp`).
    #[must_use]
    pub fn ear(
        &self,
        host_name: &str,
        verdict: &VerdictRecord,
        software_tpm: bool,
        ttl_ms: i64,
    ) -> Option<String> {
        let (status, vector) = trust_vector(verdict, software_tpm);
        let claims = json!({
            "eat_profile": "tag:github.com,2023:veraison/ear",
            "iat": verdict.until / 1000,
            "exp": verdict.until.saturating_add(ttl_ms) / 1000,
            "ear.verifier-id": {"developer": "trustpool", "build": concat!("trustpool-attestation ", env!("CARGO_PKG_VERSION"))},
            "submods": {
                host_name: {
                    "ear.status": status,
                    "ear.trustworthiness-vector": vector,
                    "ear.appraisal-policy-id": verdict.policy.as_ref().map(|p| format!("policy:{p}")),
                    "trustpool.reasons": verdict.reasons,
                }
            }
        });
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .ok()?;
        Some(format!("{signing_input}.{}", B64URL.encode(sig.as_ref())))
    }
}

/// AR4SI claims (draft-ietf-rats-ar4si §2.3): 2 = affirming, 32 = warning, 96/97 =
/// contraindicated, 0 = no claim.
fn trust_vector(verdict: &VerdictRecord, software_tpm: bool) -> (&'static str, Value) {
    let hardware = if software_tpm { 32 } else { 2 };
    match verdict.level {
        TrustLevel::Trusted => (
            "affirming",
            json!({"instance-identity": 2, "configuration": 2, "executables": 2, "hardware": hardware}),
        ),
        TrustLevel::Untrusted => {
            let evidence_failed = verdict
                .reasons
                .iter()
                .any(|r| r.starts_with("quote rejected") || r.starts_with("event log rejected"));
            if evidence_failed {
                (
                    "contraindicated",
                    json!({"instance-identity": 96, "hardware": hardware}),
                )
            } else {
                (
                    "contraindicated",
                    json!({"instance-identity": 2, "executables": 96, "hardware": hardware}),
                )
            }
        }
        TrustLevel::Unknown => ("none", json!({})),
    }
}
