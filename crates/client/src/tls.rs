//! rustls client configuration from PEM: which CA to trust, and optionally a client
//! certificate to present (mutual TLS).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ClientError;

/// A certificate chain and its private key, PEM.
#[derive(Clone)]
pub struct Identity {
    /// Leaf first, then intermediates.
    pub cert_chain_pem: String,
    /// PKCS#8, PKCS#1 or SEC1 private key.
    pub key_pem: String,
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Identity(key redacted)")
    }
}

/// How a client authenticates servers and itself.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM CA certificates to trust. None: refuse (no system roots: trustpool's TLS is a
    /// private PKI).
    pub ca_pem: Option<String>,
    /// Client certificate for mutual TLS.
    pub identity: Option<Identity>,
}

/// Parses PEM certificates.
///
/// # Errors
/// `Tls` when the PEM holds no certificate or cannot be parsed.
pub fn certificates(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ClientError::Tls(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(ClientError::Tls(format!("{what}: no certificate in PEM")));
    }
    Ok(certs)
}

/// Parses a PEM private key.
///
/// # Errors
/// `Tls` when the PEM holds no usable key.
pub fn private_key(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>, ClientError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| ClientError::Tls(format!("{what}: {e}")))
}

/// A root store from PEM CA certificates.
///
/// # Errors
/// `Tls` for unparsable certificates.
pub fn root_store(ca_pem: &str) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "CA certificate")? {
        roots
            .add(cert)
            .map_err(|e| ClientError::Tls(format!("CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// A reqwest client builder that speaks HTTPS only, with [`client_config`]'s TLS; callers
/// add their timeouts and pooling.
///
/// # Errors
/// `Tls` when a certificate or key cannot be used.
pub(crate) fn https_builder(options: &TlsOptions) -> Result<reqwest::ClientBuilder, ClientError> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(client_config(options)?)
        .https_only(true))
}

/// A rustls client configuration (aws-lc-rs, TLS 1.2 and 1.3).
///
/// # Errors
/// `Tls` when a certificate or key cannot be used.
pub fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig, ClientError> {
    let ca = options
        .ca_pem
        .as_deref()
        .ok_or_else(|| ClientError::Tls("no CA certificate configured".to_owned()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(root_store(ca)?);
    match &options.identity {
        Some(id) => builder
            .with_client_auth_cert(
                certificates(&id.cert_chain_pem, "client certificate")?,
                private_key(&id.key_pem, "client key")?,
            )
            .map_err(|e| ClientError::Tls(format!("client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The server side of the same PKI: TLS 1.2 and 1.3 (aws-lc-rs) with one certificate,
/// served whatever SNI the client sends, or none (old Nova clients send none); client
/// certificates are not requested. Lives here so every server builds it one way.
///
/// # Errors
/// `Tls` when the chain or key cannot be used.
pub fn server_config(chain_pem: &str, key_pem: &str) -> Result<rustls::ServerConfig, ClientError> {
    let chain = certificates(chain_pem, "server certificate")?;
    let key = private_key(key_pem, "server key")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ClientError::Tls(format!("server certificate: {e}")))
}
