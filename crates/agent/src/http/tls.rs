//! The agent's TLS: its certificate, and the one client it serves — the attestation server.
//!
//! A client certificate must chain to `client_ca` *and* carry one of the public keys the
//! agent is configured to trust as the server's (SHA-256 of the DER SubjectPublicKeyInfo,
//! RFC 5280 §4.1.2.7). Chaining alone is not enough: a CA that also issued other agents'
//! certificates would make every agent a client of every other, and `/v1/activate` an
//! oracle for enrolling someone else's TPM under another name.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use trustpool_client::tls::{certificates, private_key, root_store};

/// A TLS problem at start.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct TlsError {
    what: String,
    reason: String,
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (DER, with its SEQUENCE header): what
/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum` prints.
///
/// # Errors
/// When the certificate does not parse.
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Result<[u8; 32], String> {
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|e| e.to_string())?;
    let spki = parsed.subject_public_key_info();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, spki.as_ref()).as_ref());
    Ok(out)
}

/// The SPKI pins of every certificate in a PEM file (the server's client certificate; two
/// while it is being replaced).
///
/// # Errors
/// A `TlsError` naming the file.
pub fn pins_from_file(path: &Path) -> Result<Vec<[u8; 32]>, TlsError> {
    let fail = |reason: String| TlsError {
        what: path.display().to_string(),
        reason,
    };
    let chain = certificates(&read(path)?, "certificate").map_err(|e| fail(e.to_string()))?;
    chain
        .iter()
        .map(|c| spki_sha256(c).map_err(&fail))
        .collect()
}

/// Who may call the agent.
#[derive(Debug, Clone)]
pub struct ServerIdentity<'a> {
    /// The CA its client certificate chains to.
    pub client_ca: &'a Path,
    /// SHA-256 of the public keys (SPKI) of the server's client certificates.
    pub spki_sha256: Vec<[u8; 32]>,
}

/// Accepts a client certificate only when webpki accepts it (chain, validity, client
/// EKU) and its key is one of the pinned ones.
#[derive(Debug)]
struct PinnedClient {
    chain: Arc<dyn ClientCertVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        let key = spki_sha256(end_entity).map_err(rustls::Error::General)?;
        if self.pins.contains(&key) {
            Ok(verified)
        } else {
            tracing::warn!(
                spki_sha256 = %trustpool_api::bytes::to_hex(&key),
                "refused a client: its certificate is not the attestation server's"
            );
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// rustls server configuration that serves only the attestation server.
///
/// # Errors
/// A `TlsError` naming the file.
pub fn server_config(
    cert: &Path,
    key: &Path,
    server: &ServerIdentity<'_>,
) -> Result<rustls::ServerConfig, TlsError> {
    fn wrap(what: &Path) -> impl FnOnce(trustpool_client::ClientError) -> TlsError + '_ {
        move |e| TlsError {
            what: what.display().to_string(),
            reason: e.to_string(),
        }
    }
    if server.spki_sha256.is_empty() {
        return Err(TlsError {
            what: "listen.server_certificate".to_owned(),
            reason: "no attestation server key is pinned: the agent would serve nobody".to_owned(),
        });
    }
    let chain = certificates(&read(cert)?, "certificate").map_err(wrap(cert))?;
    let key_der = private_key(&read(key)?, "private key").map_err(wrap(key))?;
    let roots = root_store(&read(server.client_ca)?).map_err(wrap(server.client_ca))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError {
            what: server.client_ca.display().to_string(),
            reason: e.to_string(),
        })?;
    let verifier = Arc::new(PinnedClient {
        chain: verifier,
        pins: server.spki_sha256.clone(),
    });
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            what: "TLS".to_owned(),
            reason: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError {
            what: cert.display().to_string(),
            reason: e.to_string(),
        })
}
