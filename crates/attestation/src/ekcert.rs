//! EK certificate validation: the chain up to a configured manufacturer CA (x509-parser,
//! signatures verified with aws-lc-rs), validity, CA constraints on issuers, the TCG EK
//! certificate EKU when present, and — the point — that the certificate's key is the EK
//! public key the agent sent (TCG EK Credential Profile 2.x, §3).

use std::path::Path;

use trustpool_evidence::spki::parse_spki_der;
use trustpool_evidence::{Public, PublicKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::{FromDer, X509Error};
use x509_parser::revocation_list::CertificateRevocationList;

/// Most certificates in a chain (leaf, intermediates, root).
const MAX_CHAIN: usize = 6;

/// `tcg-kp-EKCertificate` (2.23.133.8.1).
const TCG_KP_EK_CERTIFICATE: &[u64] = &[2, 23, 133, 8, 1];

/// Which CA set a certificate chained to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkCaKind {
    /// A manufacturer CA.
    Manufacturer,
    /// A software-TPM CA (swtpm-localca): development only.
    Software,
}

/// Why an EK certificate is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EkCertError {
    /// Not DER X.509.
    #[error("EK certificate is not a DER X.509 certificate")]
    Malformed,
    /// No configured CA issued it (directly or through configured intermediates).
    #[error("EK certificate does not chain to a configured EK CA")]
    UnknownIssuer,
    /// A signature in the chain does not verify.
    #[error("EK certificate chain signature does not verify ({0})")]
    BadSignature(String),
    /// Outside its validity period.
    #[error("a certificate in the EK chain is expired or not yet valid")]
    Expired,
    /// An issuer is not a CA allowed to sign certificates.
    #[error("an issuer in the EK chain is not a CA")]
    NotCa,
    /// The leaf's EKU does not include the TCG EK certificate purpose.
    #[error("EK certificate's extended key usage lacks tcg-kp-EKCertificate (2.23.133.8.1)")]
    WrongEku,
    /// The certificate is for another key.
    #[error("EK certificate's public key is not the EK public key the agent sent")]
    KeyMismatch,
    /// A configured CRL of its issuer lists it.
    #[error("a certificate in the EK chain is revoked (listed in its issuer's CRL)")]
    Revoked,
    /// The configured CRL of an issuer is past its nextUpdate: revocation status unknown.
    #[error("the CRL of an EK chain issuer is out of date (past nextUpdate); refresh it")]
    CrlExpired,
}

/// Trust anchors and intermediates, DER, tagged by kind; and the issuers' CRLs.
#[derive(Debug, Clone, Default)]
pub struct EkCaStore {
    certs: Vec<(Vec<u8>, EkCaKind)>,
    crls: Vec<Vec<u8>>,
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> CaFileError {
    CaFileError {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The DER blocks of a PEM or DER file holding at least one `what`.
fn read_der_file(path: &Path, what: &str) -> Result<Vec<Vec<u8>>, CaFileError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let ders = der_blocks(&bytes).map_err(|e| file_error(path, e))?;
    if ders.is_empty() {
        return Err(file_error(path, format!("no {what}")));
    }
    Ok(ders)
}

/// DER blocks of a PEM file (any label), or the file itself as DER.
fn der_blocks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.starts_with(b"-----BEGIN") {
        x509_parser::pem::Pem::iter_from_buffer(bytes)
            .map(|p| p.map(|p| p.contents))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())
    } else {
        Ok(vec![bytes.to_vec()])
    }
}

/// A CA file problem at start.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct CaFileError {
    path: String,
    reason: String,
}

impl EkCaStore {
    /// Loads PEM or DER files.
    ///
    /// # Errors
    /// A `CaFileError` naming the file.
    pub fn load(
        manufacturer: &[impl AsRef<Path>],
        software: &[impl AsRef<Path>],
    ) -> Result<Self, CaFileError> {
        let mut store = Self::default();
        for (paths, kind) in [
            (
                manufacturer.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
                EkCaKind::Manufacturer,
            ),
            (
                software.iter().map(AsRef::as_ref).collect(),
                EkCaKind::Software,
            ),
        ] {
            for path in paths {
                for der in read_der_file(path, "certificate")? {
                    X509Certificate::from_der(&der).map_err(|e| file_error(path, e))?;
                    store.certs.push((der, kind));
                }
            }
        }
        Ok(store)
    }

    /// Adds the issuers' certificate revocation lists (PEM `X509 CRL` or DER). A chain
    /// certificate listed by its issuer's CRL is refused; an issuer whose CRL is past its
    /// nextUpdate refuses everything it issued until the file is refreshed (fail closed).
    ///
    /// # Errors
    /// A `CaFileError` naming the file.
    pub fn with_crls(mut self, paths: &[impl AsRef<Path>]) -> Result<Self, CaFileError> {
        for path in paths.iter().map(AsRef::as_ref) {
            for der in read_der_file(path, "CRL")? {
                CertificateRevocationList::from_der(&der).map_err(|e| file_error(path, e))?;
                self.crls.push(der);
            }
        }
        Ok(self)
    }

    /// Whether `cert`, issued by `ca`, is revoked by a configured CRL that `ca` signed.
    fn check_revocation(
        &self,
        cert: &X509Certificate<'_>,
        ca: &X509Certificate<'_>,
        now_unix: i64,
    ) -> Result<(), EkCertError> {
        for der in &self.crls {
            let Ok((_, crl)) = CertificateRevocationList::from_der(der) else {
                continue;
            };
            if crl.issuer().as_raw() != ca.subject().as_raw()
                || crl.verify_signature(ca.public_key()).is_err()
            {
                continue;
            }
            if crl.next_update().is_some_and(|t| t.timestamp() < now_unix) {
                return Err(EkCertError::CrlExpired);
            }
            if crl
                .iter_revoked_certificates()
                .any(|r| r.raw_serial() == cert.raw_serial())
            {
                return Err(EkCertError::Revoked);
            }
        }
        Ok(())
    }

    /// Validates an EK certificate against the store and the EK public key.
    ///
    /// # Errors
    /// The `EkCertError` of the first failed check.
    pub fn validate(
        &self,
        ek_cert_der: &[u8],
        ek_public: &Public,
        now_unix: i64,
    ) -> Result<EkCaKind, EkCertError> {
        let (rest, leaf) =
            X509Certificate::from_der(ek_cert_der).map_err(|_| EkCertError::Malformed)?;
        if !rest.is_empty() {
            return Err(EkCertError::Malformed);
        }
        let cert_key =
            parse_spki_der(leaf.public_key().raw).map_err(|_| EkCertError::KeyMismatch)?;
        if !same_key(&cert_key, &ek_public.key) {
            return Err(EkCertError::KeyMismatch);
        }
        if let Ok(Some(eku)) = leaf.extended_key_usage() {
            let wanted = Oid::from(TCG_KP_EK_CERTIFICATE).map_err(|_| EkCertError::WrongEku)?;
            if !eku.value.any && !eku.value.other.contains(&wanted) {
                return Err(EkCertError::WrongEku);
            }
        }
        let parsed: Vec<(X509Certificate<'_>, EkCaKind)> = self
            .certs
            .iter()
            .filter_map(|(der, kind)| X509Certificate::from_der(der).ok().map(|(_, c)| (c, *kind)))
            .collect();
        let valid_at = |c: &X509Certificate<'_>| {
            let v = c.validity();
            v.not_before.timestamp() <= now_unix && now_unix <= v.not_after.timestamp()
        };
        if !valid_at(&leaf) {
            return Err(EkCertError::Expired);
        }
        let mut current = leaf;
        for _ in 0..MAX_CHAIN {
            let issuer = parsed.iter().find(|(ca, _)| {
                ca.subject().as_raw() == current.issuer().as_raw()
                    && current.verify_signature(Some(ca.public_key())).is_ok()
            });
            let Some((ca, kind)) = issuer else {
                let same_name = parsed
                    .iter()
                    .any(|(ca, _)| ca.subject().as_raw() == current.issuer().as_raw());
                return Err(if same_name {
                    EkCertError::BadSignature(signature_error(&current, &parsed))
                } else {
                    EkCertError::UnknownIssuer
                });
            };
            if !ca.is_ca()
                || ca
                    .key_usage()
                    .ok()
                    .flatten()
                    .is_some_and(|ku| !ku.value.key_cert_sign())
            {
                return Err(EkCertError::NotCa);
            }
            if !valid_at(ca) {
                return Err(EkCertError::Expired);
            }
            self.check_revocation(&current, ca, now_unix)?;
            // A self-signed configured certificate is a trust anchor: the chain is complete.
            if ca.subject().as_raw() == ca.issuer().as_raw() {
                return Ok(*kind);
            }
            current = ca.clone();
        }
        Err(EkCertError::UnknownIssuer)
    }
}

fn signature_error(cert: &X509Certificate<'_>, cas: &[(X509Certificate<'_>, EkCaKind)]) -> String {
    cas.iter()
        .filter(|(ca, _)| ca.subject().as_raw() == cert.issuer().as_raw())
        .filter_map(|(ca, _)| cert.verify_signature(Some(ca.public_key())).err())
        .map(|e: X509Error| e.to_string())
        .next()
        .unwrap_or_default()
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    match (a, b) {
        (
            PublicKey::Rsa {
                modulus: m1,
                exponent: e1,
            },
            PublicKey::Rsa {
                modulus: m2,
                exponent: e2,
            },
        ) => {
            let strip = |m: &[u8]| {
                m.iter()
                    .position(|b| *b != 0)
                    .map_or(Vec::new(), |i| m.get(i..).unwrap_or(&[]).to_vec())
            };
            strip(m1) == strip(m2) && e1 == e2
        }
        (
            PublicKey::Ecc {
                curve: c1,
                x: x1,
                y: y1,
            },
            PublicKey::Ecc {
                curve: c2,
                x: x2,
                y: y2,
            },
        ) => c1 == c2 && x1 == x2 && y1 == y2,
        _ => false,
    }
}
