//! The HTTPS listener every trustpool server runs (the attestation server, the scheduler,
//! the agent), built one way: the rustls configuration from [`crate::tls::server_config`],
//! `TCP_NODELAY` on every connection (the last segment of a large answer must not wait
//! 40 ms for the peer's delayed ACK), the socket bound before serving so a failure names
//! its reason ("Address already in use"), and a graceful stop. Feature `server`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

/// Time in-flight requests get when a listener stops.
const GRACE: Duration = Duration::from_secs(10);

/// A running HTTPS listener.
#[derive(Debug)]
pub struct HttpsListener {
    /// The address it is bound to (the port chosen when asked for port 0).
    pub address: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl HttpsListener {
    /// Binds `listen` and serves `app` over TLS.
    ///
    /// # Errors
    /// The bind failure, as "listening on ADDR: …", or the listener not starting.
    pub async fn start(
        listen: SocketAddr,
        tls: rustls::ServerConfig,
        app: axum::Router,
    ) -> io::Result<Self> {
        let bound = std::net::TcpListener::bind(listen)
            .map_err(|e| io::Error::new(e.kind(), format!("listening on {listen}: {e}")))?;
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp(bound)?
            .acceptor(
                RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls)))
                    .acceptor(NoDelayAcceptor::new()),
            )
            .handle(handle.clone())
            .serve(app.into_make_service());
        let task = tokio::spawn(server);
        let address = handle
            .listening()
            .await
            .ok_or_else(|| io::Error::other("the HTTPS listener did not start"))?;
        Ok(Self {
            address,
            handle,
            task,
        })
    }

    /// Stops accepting; in-flight requests get 10 s.
    pub async fn stop(self) {
        self.handle.graceful_shutdown(Some(GRACE));
        let _ = self.task.await;
    }
}

/// Waits for SIGINT or SIGTERM (how every server binary is asked to stop).
///
/// # Errors
/// The SIGTERM handler cannot be installed.
pub async fn until_stopped() -> io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
