//! `trustpool-attestation`: the remote attestation server of a trusted compute pool.
//!
//! It enrolls hosts (EK certificate chain + AK credential activation), challenges every
//! enrolled agent each interval with a fresh nonce, verifies quotes and event logs with
//! `trustpool-evidence`, appraises them against the known-good database with
//! `trustpool-policy`, keeps verdicts with reasons and history in SQLite or PostgreSQL, and
//! answers the scheduler: OAT `PollHosts` (what Nova's `TrustedFilter` sends) and its v1 API.
//!
//! - [`config`]: the TOML configuration; [`check_config`]: the files and database it names;
//! - [`store`]: the database (the only SQL);
//! - [`service`]: use cases (enroll, attest, the challenge scheduler, policies, the trust
//!   cache);
//! - [`http`]: the HTTPS API;
//! - [`ekcert`]: EK certificate validation.

pub mod check_config;
pub mod config;
pub mod ekcert;
pub mod http;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use trustpool_client::serve::{HttpsListener, until_stopped};
use trustpool_client::tls::certificates;

use crate::config::Config;
use crate::service::Service;

pub(crate) use trustpool_client::error_chain;

/// TLS 1.2 and 1.3 with one certificate, served whatever SNI the client sends (or none:
/// old Nova clients send none). Client certificates are not requested: Nova cannot
/// present one.
fn tls_config(config: &Config) -> anyhow::Result<rustls::ServerConfig> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    Ok(trustpool_client::tls::server_config(
        &read(&config.tls_cert)?,
        &read(&config.tls_key)?,
    )?)
}

/// The CA certificate for Nova's `server_ca_file`: the last certificate of the `tls.cert`
/// chain file, which must hold the issuing CA after the leaf.
///
/// # Errors
/// When the file cannot be read, or holds only a leaf (then give Nova the CA that issued it).
pub fn ca_certificate(config: &Config) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&config.tls_cert)
        .with_context(|| format!("reading {}", config.tls_cert.display()))?;
    let certs = certificates(&text, "tls.cert")?;
    let last = certs.last().filter(|_| certs.len() > 1).ok_or_else(|| {
        anyhow::anyhow!("{} holds only the server certificate; append the issuing CA to it, or give Nova that CA file directly", config.tls_cert.display())
    })?;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(last.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    Ok(pem)
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its services (tests inspect the store).
    pub service: Arc<Service>,
    listener: HttpsListener,
    challenger: tokio::task::JoinHandle<()>,
    maintenance: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops the challenger and the listener (in-flight requests get 10 s).
    pub async fn stop(self) {
        self.challenger.abort();
        self.maintenance.abort();
        let _ = self.challenger.await;
        let _ = self.maintenance.await;
        self.listener.stop().await;
    }
}

/// Opens the database (running migrations), starts the HTTPS API and the challenger.
///
/// # Errors
/// What prevented starting, with context.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let tls = tls_config(&config)?;
    let listen = config.listen;
    let service = Service::new(config).await?;
    let listener = HttpsListener::start(listen, tls, http::router(service.clone())).await?;
    let address = listener.address;
    let challenger = tokio::spawn(service::challenger::run(service.clone()));
    let maintenance = tokio::spawn(service::maintenance::run(service.clone()));
    tracing::info!(%address, server_id = %service.config.server_id, "attestation server ready");
    Ok(RunningServer {
        address,
        service,
        listener,
        challenger,
        maintenance,
    })
}

/// Runs until SIGINT/SIGTERM.
///
/// # Errors
/// As [`start`].
pub async fn run(config: Config) -> anyhow::Result<()> {
    let server = start(config).await?;
    until_stopped().await?;
    tracing::info!("stopping");
    server.stop().await;
    Ok(())
}
