//! `trustpool-agent`: runs on every compute host, owns the TPM, and never decides trust.
//!
//! - [`tpm`]: the TPM task (tss-esapi over libtss2): EK from the TCG default template and
//!   its NV certificate, an AK created once and kept across restarts, quotes checked
//!   against their PCR digest, credential activation; every transient handle flushed.
//! - [`http`]: the HTTPS API the attestation server calls (mutual TLS).
//! - [`measure`]: measured-boot emulation for development hosts on swtpm.
//! - [`enroll`] and [`resources`]: registration with the attestation server, resource
//!   heartbeats to the scheduler.
//!
//! It does not verify its own evidence: that is `trustpool-evidence`, on the server.

pub mod check_config;
pub mod cli;
pub mod config;
pub mod enroll;
pub mod http;
pub mod measure;
pub mod resources;
pub mod tpm;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use trustpool_api::agent::{AgentInfo, TpmInfo};
use trustpool_api::{Base64Bytes, HexBytes};
use trustpool_client::serve::{HttpsListener, until_stopped};
use trustpool_client::{ComputeClient, TlsOptions};

use crate::config::Config;
use crate::tpm::{Tpm, TpmSettings};

pub(crate) use trustpool_client::error_chain;

/// The `/v1/info` answer for this agent.
#[must_use]
pub fn agent_info(config: &Config, tpm: &Tpm) -> AgentInfo {
    let id = tpm.identity();
    AgentInfo {
        host_name: config.host_name.clone(),
        agent_id: HexBytes(id.ak_name.clone()).to_string(),
        ak_public: Base64Bytes(id.ak_public.clone()),
        ak_name: HexBytes(id.ak_name.clone()),
        ek_public: Base64Bytes(id.ek_public.clone()),
        ek_certificate: id.ek_certificate.clone().map(Base64Bytes),
        tpm: TpmInfo {
            manufacturer: id.manufacturer.clone(),
            vendor_string: id.vendor_string.clone(),
            firmware_version: id.firmware_version,
            software: id.is_software(),
        },
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// Settings for the TPM task from the config.
#[must_use]
pub fn tpm_settings(config: &Config) -> TpmSettings {
    TpmSettings {
        tcti: config.tcti.clone(),
        state_dir: config.state_dir.clone(),
        ek_algorithm: config.ek_algorithm,
        ak_algorithm: config.ak_algorithm,
    }
}

/// A running agent (for tests and `run`): the bound address and a way to stop it.
#[derive(Debug)]
pub struct RunningAgent {
    /// The HTTPS listener's address.
    pub address: SocketAddr,
    /// The TPM handle (tests use it to count handles).
    pub tpm: Tpm,
    listener: HttpsListener,
    background: Vec<tokio::task::JoinHandle<()>>,
    task: tpm::TpmTask,
}

impl RunningAgent {
    /// Stops serving (in-flight requests get 10 s), stops background tasks, and waits for
    /// the TPM task to flush its handles.
    pub async fn stop(self) {
        self.listener.stop().await;
        for task in self.background {
            task.abort();
            let _ = task.await;
        }
        drop(self.tpm);
        let task = self.task;
        let _ = tokio::task::spawn_blocking(move || task.join()).await;
    }
}

/// Starts the agent: the emulated boot (development hosts with `tpm.boot_manifest`), the
/// TPM task, the HTTPS API, registration and heartbeats.
///
/// # Errors
/// Anything that prevents serving, with context.
pub async fn start(config: Config) -> anyhow::Result<RunningAgent> {
    if let Some(manifest_path) = &config.boot_manifest {
        let manifest = measure::Manifest::load(manifest_path)?;
        let (tcti, log) = (config.tcti.clone(), config.event_log.clone());
        let outcome =
            tokio::task::spawn_blocking(move || measure::measure_boot(&tcti, &manifest, &log))
                .await??;
        tracing::info!(events = outcome.events, log = %outcome.event_log.display(), "emulated measured boot done");
    }
    let settings = tpm_settings(&config);
    let (tpm, task) = tokio::task::spawn_blocking(move || Tpm::start(settings))
        .await?
        .context("opening the TPM")?;
    let info = Arc::new(agent_info(&config, &tpm));
    tracing::info!(agent_id = %info.agent_id, tpm = %info.tpm.vendor_string, "TPM ready");
    let mut pins = config.server_spki_sha256.clone();
    if let Some(file) = &config.server_certificate {
        pins.extend(http::pins_from_file(file)?);
    }
    let tls = http::server_config(
        &config.cert,
        &config.key,
        &http::ServerIdentity {
            client_ca: &config.client_ca,
            spki_sha256: pins,
        },
    )?;
    let state = http::AppState {
        tpm: tpm.clone(),
        info,
        event_log: config.event_log.clone(),
    };
    let app = http::router(state);
    let listener = HttpsListener::start(config.listen, tls, app).await?;
    let address = listener.address;
    tracing::info!(%address, url = %config.url, "serving");
    let mut background = Vec::new();
    if let Some(server_config) = config.server.clone() {
        let (config, tpm) = (config.clone(), tpm.clone());
        background.push(tokio::spawn(async move {
            if let Err(e) = enroll::enroll(&config, &server_config, &tpm).await {
                tracing::error!(error = %error_chain(&e), "registration stopped");
            }
        }));
    }
    if let Some(scheduler) = config.scheduler.clone() {
        let config = config.clone();
        background.push(tokio::spawn(
            async move { heartbeat(&config, &scheduler).await },
        ));
    }
    Ok(RunningAgent {
        address,
        tpm,
        listener,
        background,
        task,
    })
}

async fn heartbeat(config: &Config, scheduler: &config::SchedulerConfig) {
    let setup = || -> Result<ComputeClient, String> {
        let ca = std::fs::read_to_string(&scheduler.ca)
            .map_err(|e| format!("{}: {e}", scheduler.ca.display()))?;
        let token = std::fs::read_to_string(&scheduler.token_file)
            .map_err(|e| format!("{}: {e}", scheduler.token_file.display()))?;
        ComputeClient::new(
            &scheduler.url,
            &TlsOptions {
                ca_pem: Some(ca),
                identity: None,
            },
            Some(token.trim().to_owned()),
            Duration::from_secs(10),
        )
        .map_err(|e| e.to_string())
    };
    let mut client = match setup() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "heartbeats disabled: scheduler client");
            return;
        }
    };
    let mut failing = false;
    let mut ticker = tokio::time::interval(scheduler.interval);
    loop {
        ticker.tick().await;
        let sent = client.report(&resources::host_report(config)).await;
        // A refused token may have been rotated on disk: read it again for the next beat.
        if let Err(trustpool_client::ClientError::Status { status: 401, .. }) = &sent
            && let Ok(fresh) = setup()
        {
            client = fresh;
        }
        match sent {
            Ok(_) if failing => {
                tracing::info!("heartbeats reach the scheduler again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %error_chain(&e), "heartbeat failed");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Runs until SIGINT/SIGTERM, then stops cleanly.
///
/// # Errors
/// As [`start`].
pub async fn run(config: Config) -> anyhow::Result<()> {
    let agent = start(config).await?;
    until_stopped().await?;
    tracing::info!("stopping");
    agent.stop().await;
    Ok(())
}
