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
use std::time::Duration;

use anyhow::Context as _;

use crate::conf::Config;
use crate::service::Service;

/// A running scheduler.
#[derive(Debug)]
pub struct RunningScheduler {
    /// Where the compute API listens.
    pub address: SocketAddr,
    /// Its services (tests inspect them).
    pub service: Arc<Service>,
    handle: axum_server::Handle<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningScheduler {
    /// Stops following the attestation server and the listener (in-flight requests get
    /// 10 s).
    pub async fn stop(self) {
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        let _ = self.server.await;
    }
}

/// Opens the database (running migrations), rebuilds the state, starts the compute API
/// and, with TrustedFilter enabled, the trust watcher.
///
/// # Errors
/// What prevented starting, with context.
pub async fn start(config: Config) -> anyhow::Result<RunningScheduler> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let tls =
        trustpool_client::tls::server_config(&read(&config.tls_cert)?, &read(&config.tls_key)?)?;
    for note in &config.notes {
        tracing::info!("{note}");
    }
    let listen = config.listen;
    let service = Service::new(config).await?;
    let handle = axum_server::Handle::new();
    // Bound here, so a failure says why ("Address already in use"), not only that the
    // listener did not start.
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("listening on {}", listen))?;
    let server = tokio::spawn(
        // TCP_NODELAY: a large answer's last segment must not wait for a delayed ACK (40 ms).
        axum_server::from_tcp(listener)?
            .acceptor(
                axum_server::tls_rustls::RustlsAcceptor::new(
                    axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
                )
                .acceptor(axum_server::accept::NoDelayAcceptor::new()),
            )
            .handle(handle.clone())
            .serve(http::router(service.clone()).into_make_service()),
    );
    let address = handle
        .listening()
        .await
        .context("the HTTPS listener did not start")?;
    let tasks = vec![
        tokio::spawn(service.clone().keep_fresh()),
        tokio::spawn(service.clone().follow_stream()),
    ];
    tracing::info!(%address, filters = ?service.config.filters.iter().map(|f| f.name()).collect::<Vec<_>>(), "scheduler ready");
    Ok(RunningScheduler {
        address,
        service,
        handle,
        tasks,
        server,
    })
}

/// Runs until SIGINT/SIGTERM.
///
/// # Errors
/// As [`start`].
pub async fn run(config: Config) -> anyhow::Result<()> {
    let scheduler = start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    scheduler.stop().await;
    Ok(())
}
