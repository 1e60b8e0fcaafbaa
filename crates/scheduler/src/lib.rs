//! `trustpool-scheduler`: the compute half of a trusted compute pool. A Nova-shaped
//! compute API (flavors with extra specs, hypervisors and services fed by the agents'
//! heartbeats, aggregates and availability zones, servers) and Nova's FilterScheduler —
//! its filters, weighers, claims and retries — with the TrustedFilter asking the
//! attestation server exactly as Nova did, and following its stream of trust changes.
//!
//! - [`conf`]: `nova.conf` (the seed's block as written);
//! - [`filters`], [`weights`], [`select`]: the pure scheduling pipeline;
//! - [`host_state`], [`request`]: what it works on;
//! - [`trust`]: the TrustedFilter's cache of attestation results;
//! - [`store`], [`service`], [`http`]: persistence, use cases, the HTTPS API.

pub mod conf;
pub mod fast_hash;
pub mod filters;
pub mod host_state;
pub mod http;
pub mod request;
pub mod select;
pub mod service;
pub mod store;
pub mod trust;
pub mod weights;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use trustpool_client::serve::{HttpsListener, LoopbackHttpListener, ServeLimits, until_stopped};

use crate::conf::Config;
use crate::service::Service;

/// A running scheduler.
#[derive(Debug)]
pub struct RunningScheduler {
    /// Where the compute API listens.
    pub address: SocketAddr,
    /// Its services (tests inspect them).
    pub service: Arc<Service>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    listener: Listener,
}

/// HTTPS with `[ssl]`; plain HTTP on loopback without (behind a TLS-terminating proxy).
#[derive(Debug)]
enum Listener {
    Https(HttpsListener),
    LoopbackHttp(LoopbackHttpListener),
}

impl Listener {
    async fn start(config: &Config, app: axum::Router) -> anyhow::Result<Self> {
        let Some(files) = &config.tls else {
            return Ok(Self::LoopbackHttp(
                LoopbackHttpListener::start(config.listen, app, ServeLimits::default()).await?,
            ));
        };
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let tls = trustpool_client::tls::server_config(&read(&files.cert)?, &read(&files.key)?)?;
        Ok(Self::Https(
            HttpsListener::start(config.listen, tls, app).await?,
        ))
    }

    fn address(&self) -> SocketAddr {
        match self {
            Self::Https(l) => l.address,
            Self::LoopbackHttp(l) => l.address,
        }
    }

    async fn stop(self) {
        match self {
            Self::Https(l) => l.stop().await,
            Self::LoopbackHttp(l) => l.stop().await,
        }
    }
}

impl RunningScheduler {
    /// Stops following the attestation server and the listener (in-flight requests get
    /// 10 s).
    pub async fn stop(self) {
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        self.listener.stop().await;
    }
}

/// Opens the database (running migrations), rebuilds the state, starts the compute API
/// (HTTPS with `[ssl]`, else plain HTTP on loopback) and, with TrustedFilter enabled, the trust watcher.
///
/// # Errors
/// What prevented starting, with context.
pub async fn start(config: Config) -> anyhow::Result<RunningScheduler> {
    for note in &config.notes {
        tracing::info!("{note}");
    }
    let listener_config = config.clone();
    let service = Service::new(config).await?;
    let listener = Listener::start(&listener_config, http::router(service.clone())).await?;
    let address = listener.address();
    let tasks = vec![
        tokio::spawn(service.clone().keep_fresh()),
        tokio::spawn(service.clone().follow_stream()),
    ];
    tracing::info!(%address, filters = ?service.config.filters.iter().map(|f| f.name()).collect::<Vec<_>>(), "scheduler ready");
    Ok(RunningScheduler {
        address,
        service,
        tasks,
        listener,
    })
}

/// Runs until SIGINT/SIGTERM.
///
/// # Errors
/// As [`start`].
pub async fn run(config: Config) -> anyhow::Result<()> {
    let scheduler = start(config).await?;
    until_stopped().await?;
    tracing::info!("stopping");
    scheduler.stop().await;
    Ok(())
}
