//! The HTTPS listener every trustpool server runs (the attestation server, the scheduler,
//! the agent), built one way: the rustls configuration from [`crate::tls::server_config`],
//! `TCP_NODELAY` on every connection (the last segment of a large answer must not wait
//! 40 ms for the peer's delayed ACK), the socket bound before serving so a failure names
//! its reason ("Address already in use"), and a graceful stop. Feature `server`.
//! [`LoopbackHttpListener`] is the same without TLS, for loopback addresses only (the
//! scheduler behind a TLS-terminating proxy).
//!
//! Every listener is bounded ([`ServeLimits`]): a connection that does not finish its TLS
//! handshake, or its request headers, in time is closed, and connections beyond a cap are
//! refused at accept (closed at once, never queued), so a peer that opens sockets and sends
//! nothing cannot hold the server's memory or file descriptors.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections open at once; beyond, new ones are closed at accept.
    pub max_connections: usize,
    /// Time to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to send a request's headers (HTTP/1).
    pub header_read_timeout: Duration,
}

impl Default for ServeLimits {
    /// 10,000 connections (a pool's agents registering at once, Nova, operators), 10 s
    /// for the handshake and 10 s for the headers.
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Sets `TCP_NODELAY` and holds one of the listener's connection permits for the
/// connection's life; without a free permit the connection is refused.
#[derive(Debug, Clone)]
struct CappedAcceptor {
    permits: Arc<Semaphore>,
}

impl<S: Send + 'static> Accept<TcpStream, S> for CappedAcceptor {
    type Stream = Capped;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Capped, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let accepted = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => stream.set_nodelay(true).map(|()| {
                (
                    Capped {
                        stream,
                        _permit: permit,
                    },
                    service,
                )
            }),
            Err(_) => Err(io::Error::other(
                "connection refused: the listener's max_connections are open",
            )),
        };
        std::future::ready(accepted)
    }
}

/// A connection holding its permit.
#[derive(Debug)]
pub struct Capped {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

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
        Self::start_with(listen, tls, app, ServeLimits::default()).await
    }

    /// Binds `listen` and serves `app` over TLS within `limits`.
    ///
    /// # Errors
    /// As [`HttpsListener::start`].
    pub async fn start_with(
        listen: SocketAddr,
        tls: rustls::ServerConfig,
        app: axum::Router,
        limits: ServeLimits,
    ) -> io::Result<Self> {
        let bound = std::net::TcpListener::bind(listen)
            .map_err(|e| io::Error::new(e.kind(), format!("listening on {listen}: {e}")))?;
        let handle = axum_server::Handle::new();
        let mut server = axum_server::from_tcp(bound)?.acceptor(
            RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls)))
                .handshake_timeout(limits.handshake_timeout)
                .acceptor(CappedAcceptor {
                    permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
                }),
        );
        server
            .http_builder()
            .http1()
            .header_read_timeout(limits.header_read_timeout);
        let server = server
            // Covers HTTP/2 and protocol detection too, which hyper does not time.
            .first_request_timeout(limits.handshake_timeout + limits.header_read_timeout)
            .handle(handle.clone())
            // Handlers may read the peer's address (`ConnectInfo<SocketAddr>`): per-client
            // rate limits.
            .serve(app.into_make_service_with_connect_info::<SocketAddr>());
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

/// A running plain-HTTP listener on a loopback address: for a server whose TLS is
/// terminated by a proxy on the same host (the scheduler without `[ssl]`). The same bounds
/// as [`HttpsListener`] (connection cap, header-read and first-request timeouts,
/// `TCP_NODELAY`, graceful stop); it refuses any address that is not loopback.
#[derive(Debug)]
pub struct LoopbackHttpListener {
    /// The address it is bound to (the port chosen when asked for port 0).
    pub address: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl LoopbackHttpListener {
    /// Binds `listen` (a loopback address) and serves `app` over plain HTTP within `limits`.
    ///
    /// # Errors
    /// `listen` is not loopback, the bind failure as "listening on ADDR: …", or the
    /// listener not starting.
    pub async fn start(
        listen: SocketAddr,
        app: axum::Router,
        limits: ServeLimits,
    ) -> io::Result<Self> {
        if !listen.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("listening on {listen}: plain HTTP is served on loopback addresses only"),
            ));
        }
        let bound = std::net::TcpListener::bind(listen)
            .map_err(|e| io::Error::new(e.kind(), format!("listening on {listen}: {e}")))?;
        let handle = axum_server::Handle::new();
        let mut server = axum_server::from_tcp(bound)?.acceptor(CappedAcceptor {
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        });
        server
            .http_builder()
            .http1()
            .header_read_timeout(limits.header_read_timeout);
        let server = server
            .first_request_timeout(limits.header_read_timeout)
            .handle(handle.clone())
            .serve(app.into_make_service_with_connect_info::<SocketAddr>());
        let task = tokio::spawn(server);
        let address = handle
            .listening()
            .await
            .ok_or_else(|| io::Error::other("the HTTP listener did not start"))?;
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
