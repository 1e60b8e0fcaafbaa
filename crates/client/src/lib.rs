//! Typed HTTPS clients for trustpool's APIs (reqwest over rustls, private CAs only). This
//! is the only HTTP client code in the workspace.
//!
//! - [`AgentClient`]: the attestation server calling an agent (info, quote, activate);
//! - [`AttestationClient`]: an agent registering with the attestation server;
//! - [`ComputeClient`]: the scheduler's Nova-shaped compute API (agents' heartbeats, the
//!   CLI's flavors, servers, hypervisors …);
//! - [`OatClient`] and [`TrustStream`]: the scheduler asking the attestation server
//!   (`PollHosts`, and its stream of trust changes);
//! - [`AdminClient`]: an operator on the attestation server's v1 API.
//!
//! With feature `server`, [`serve`] holds the HTTPS listener the three servers share (the
//! TLS side of every connection is built in [`tls`] either way), and [`preflight`] the
//! file checks of their `check-config`.

mod admin;
pub mod compute;
pub mod oat;
#[cfg(feature = "server")]
pub mod preflight;
#[cfg(feature = "server")]
pub mod serve;
pub mod tls;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use trustpool_api::ErrorBody;
use trustpool_api::agent::{
    ACTIVATE_PATH, ActivateRequest, ActivateResponse, AgentInfo, INFO_PATH, QUOTE_PATH,
    QuoteRequest, QuoteResponse,
};
use trustpool_api::enrollment::{
    ActivationProof, EnrollmentStatus, REGISTER_PATH, RegisterRequest, RegisterResponse,
    activation_path,
};

pub use admin::AdminClient;
pub use compute::ComputeClient;
pub use oat::{OatClient, TrustStream};
pub use tls::{Identity, TlsOptions};

/// "outer: inner: innermost": an error with its sources, for logs and verdict reasons
/// (shared by every binary so they all read the same).
#[must_use]
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Largest response body read (an event log with its quote fits in far less).
const MAX_RESPONSE: usize = 32 << 20;

/// A failed call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TLS configuration (certificates, keys).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The request could not be sent or the connection failed.
    #[error("cannot reach {url}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The error body's code, when it had one.
        code: Option<String>,
        /// The error message.
        message: String,
    },
    /// The peer's TLS certificate is not the one pinned for it.
    #[error("{url} presented a TLS certificate other than the one it registered")]
    Pinning {
        /// The URL.
        url: String,
    },
    /// A name that no URL path can carry (empty, `.` or `..`): refused before sending, as
    /// the URL would silently name another resource.
    #[error("{0:?} cannot be a name in a URL path")]
    Unaddressable(String),
    /// The response was not what the API promises.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// A JSON-over-HTTPS client for one base URL.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Http {
    /// A client of its own (not shared), sending `token` as a bearer token when given.
    pub(crate) fn new(
        base: &str,
        tls: &TlsOptions,
        timeout: Duration,
        token: Option<String>,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            token,
            ..Self::with_pool(base, &HttpsPool::new(tls, timeout)?)
        })
    }

    fn with_pool(base: &str, pool: &HttpsPool) -> Self {
        Self {
            client: pool.0.clone(),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// Sends a request (with the bearer token, when this client has one); returns the URL
    /// it went to and the response, not yet read.
    async fn request<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(String, reqwest::Response), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => Ok((url, response)),
            Err(source) => Err(ClientError::Connect { url, source }),
        }
    }

    pub(crate) async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let (url, response) = self.request(method, path, body).await?;
        Self::decode(url, response).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send::<(), T>(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn decode<T: DeserializeOwned>(
        url: String,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = response.status();
        let bytes = read_limited(&url, response, MAX_RESPONSE).await?;
        if status.is_success() && (status == reqwest::StatusCode::NO_CONTENT || bytes.is_empty()) {
            return serde_json::from_slice(b"null").map_err(|e| ClientError::Decode {
                url,
                reason: e.to_string(),
            });
        }
        if !status.is_success() {
            let nova = || {
                serde_json::from_slice::<trustpool_api::compute::NovaError>(&bytes)
                    .ok()
                    .and_then(|e| e.message().map(str::to_owned))
            };
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => (Some(body.code), body.message),
                Err(_) if nova().is_some() => (None, nova().unwrap_or_default()),
                Err(_) => (
                    None,
                    String::from_utf8_lossy(bytes.get(..512).unwrap_or(&bytes)).into_owned(),
                ),
            };
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                code,
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }
}

/// Reads a response body, counting bytes as they arrive and stopping at `max`: a peer that
/// streams without end (chunked, no `Content-Length`) costs at most `max` bytes of memory,
/// never the whole stream. A declared length over `max` is refused before anything is read.
///
/// # Errors
/// `Decode` ("response too large") past `max`; `Connect` for transport failures.
pub(crate) async fn read_limited(
    url: &str,
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::Decode {
        url: url.to_owned(),
        reason: format!("response too large (over {max} bytes)"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| ClientError::Connect {
            url: url.to_owned(),
            source,
        })?
    {
        if body.len().saturating_add(chunk.len()) > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One connection pool (and TLS configuration) shared by many clients: the attestation
/// server keeps one for all agents, so connections are reused between challenges instead
/// of a TLS handshake per challenge.
#[derive(Debug, Clone)]
pub struct HttpsPool(reqwest::Client);

impl HttpsPool {
    /// A pool with this TLS configuration and per-request timeout.
    ///
    /// # Errors
    /// `Tls` for unusable certificates.
    pub fn new(tls: &TlsOptions, timeout: Duration) -> Result<Self, ClientError> {
        let client = tls::https_builder(tls)?
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .http1_only()
            .pool_max_idle_per_host(4096)
            .pool_idle_timeout(Duration::from_secs(300))
            .tcp_keepalive(Duration::from_secs(60))
            // The peer's certificate travels with each response (agent pinning).
            .tls_info(true)
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Self(client))
    }
}

/// The attestation server's client for one agent.
#[derive(Debug, Clone)]
pub struct AgentClient(Http);

impl AgentClient {
    /// A client for the agent at `base_url` (`https://host:port`).
    ///
    /// # Errors
    /// `Tls` for unusable certificates.
    pub fn new(base_url: &str, tls: &TlsOptions, timeout: Duration) -> Result<Self, ClientError> {
        Http::new(base_url, tls, timeout, None).map(Self)
    }

    /// A client for the agent at `base_url` sharing `pool`'s connections.
    #[must_use]
    pub fn with_pool(base_url: &str, pool: &HttpsPool) -> Self {
        Self(Http::with_pool(base_url, pool))
    }

    /// `GET /v1/info`.
    ///
    /// # Errors
    /// A `ClientError` for transport, status or decoding failures.
    pub async fn info(&self) -> Result<AgentInfo, ClientError> {
        self.0.get(INFO_PATH).await
    }

    /// `POST /v1/quote`.
    ///
    /// # Errors
    /// A `ClientError` for transport, status or decoding failures.
    pub async fn quote(&self, request: &QuoteRequest) -> Result<QuoteResponse, ClientError> {
        self.0.post(QUOTE_PATH, request).await
    }

    /// `POST /v1/quote`, accepting the answer only from a TLS peer whose leaf certificate
    /// is exactly `pinned` (DER): the one the agent registered. Needs a client built by
    /// [`HttpsPool`].
    ///
    /// # Errors
    /// `Pinning` when another certificate answered; else as [`AgentClient::quote`].
    pub async fn quote_pinned(
        &self,
        request: &QuoteRequest,
        pinned: &[u8],
    ) -> Result<QuoteResponse, ClientError> {
        let (url, response) = self
            .0
            .request(reqwest::Method::POST, QUOTE_PATH, Some(request))
            .await?;
        let presented = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(reqwest::tls::TlsInfo::peer_certificate);
        if presented != Some(pinned) {
            return Err(ClientError::Pinning { url });
        }
        Http::decode(url, response).await
    }

    /// `POST /v1/activate`.
    ///
    /// # Errors
    /// A `ClientError` for transport, status or decoding failures.
    pub async fn activate(
        &self,
        request: &ActivateRequest,
    ) -> Result<ActivateResponse, ClientError> {
        self.0.post(ACTIVATE_PATH, request).await
    }
}

/// An agent's client for the attestation server's enrollment API.
#[derive(Debug, Clone)]
pub struct AttestationClient(Http);

impl AttestationClient {
    /// A client for the server at `base_url`.
    ///
    /// # Errors
    /// `Tls` for unusable certificates.
    pub fn new(base_url: &str, tls: &TlsOptions, timeout: Duration) -> Result<Self, ClientError> {
        Http::new(base_url, tls, timeout, None).map(Self)
    }

    /// `POST /v1/agents/register`.
    ///
    /// # Errors
    /// A `ClientError` for transport, status or decoding failures.
    pub async fn register(
        &self,
        request: &RegisterRequest,
    ) -> Result<RegisterResponse, ClientError> {
        self.0.post(REGISTER_PATH, request).await
    }

    /// `POST /v1/agents/{id}/activation`.
    ///
    /// # Errors
    /// A `ClientError` for transport, status or decoding failures.
    pub async fn prove_activation(
        &self,
        agent_id: &str,
        proof: &ActivationProof,
    ) -> Result<EnrollmentStatus, ClientError> {
        self.0.post(&activation_path(agent_id), proof).await
    }
}
