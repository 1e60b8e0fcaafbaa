//! The agent's TLS: its certificate, and client certificates required from the CA that
//! issued the attestation server's.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
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

/// rustls server configuration requiring client certificates chained to `client_ca`.
///
/// # Errors
/// A `TlsError` naming the file.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<rustls::ServerConfig, TlsError> {
    fn wrap(what: &Path) -> impl FnOnce(trustpool_client::ClientError) -> TlsError + '_ {
        move |e| TlsError {
            what: what.display().to_string(),
            reason: e.to_string(),
        }
    }
    let chain = certificates(&read(cert)?, "certificate").map_err(wrap(cert))?;
    let key_der = private_key(&read(key)?, "private key").map_err(wrap(key))?;
    let roots = root_store(&read(client_ca)?).map_err(wrap(client_ca))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError {
            what: client_ca.display().to_string(),
            reason: e.to_string(),
        })?;
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
