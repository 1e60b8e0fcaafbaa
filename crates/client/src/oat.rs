//! The scheduler's side of the attestation server: OAT `PollHosts` exactly as Nova's
//! TrustedFilter sends it (`../shared/reference/oat-nova.md` §1.3), with the timeout Nova
//! never had, and the server's stream of trust changes (`GET /v1/trust/stream`).

use std::time::Duration;

use trustpool_api::v1::TrustChange;

use crate::tls::https_builder;
use crate::{ClientError, MAX_RESPONSE, TlsOptions};
use trustpool_api::sse::{SseEvent, SseParser};

/// `POST https://{server}:{port}{api_url}/PollHosts`.
#[derive(Debug, Clone)]
pub struct OatClient {
    client: reqwest::Client,
    url: String,
    auth_blob: Option<String>,
}

impl OatClient {
    /// A client for `poll_hosts_url`, verifying the server against `ca_pem`.
    ///
    /// # Errors
    /// `Tls` for an unusable CA.
    pub fn new(
        poll_hosts_url: &str,
        ca_pem: String,
        auth_blob: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let client = https_builder(&TlsOptions {
            ca_pem: Some(ca_pem),
            identity: None,
        })?
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Self {
            client,
            url: poll_hosts_url.to_owned(),
            auth_blob,
        })
    }

    /// Polls `hosts` in one request: `{"count": N, "hosts": [...]}`, headers
    /// `content-type`/`Accept: application/json` and `x-auth-blob`. 200, 201, 202 and 204
    /// are success (as in Nova); the body is returned for
    /// [`trustpool_api::oat::read_answer`].
    ///
    /// # Errors
    /// Transport failures, any other status, an empty or oversized body.
    pub async fn poll_hosts(&self, hosts: &[String]) -> Result<Vec<u8>, ClientError> {
        let body = serde_json::json!({"count": hosts.len(), "hosts": hosts});
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("Accept", "application/json")
            .json(&body);
        if let Some(blob) = &self.auth_blob {
            request = request.header("x-auth-blob", blob);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Connect {
                url: self.url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let bytes = crate::read_limited(&self.url, response, MAX_RESPONSE).await?;
        if !matches!(status, 200 | 201 | 202 | 204) {
            return Err(ClientError::Status {
                url: self.url.clone(),
                status,
                code: None,
                message: String::from_utf8_lossy(bytes.get(..256).unwrap_or(&bytes)).into_owned(),
            });
        }
        if bytes.is_empty() {
            return Err(ClientError::Decode {
                url: self.url.clone(),
                reason: "empty PollHosts answer".to_owned(),
            });
        }
        Ok(bytes)
    }
}

/// What the trust stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A host's level (on connect, every host's; then each change).
    Change(TrustChange),
    /// The server dropped events for this subscriber: re-read every level.
    Resync,
}

/// A connected `GET /v1/trust/stream`.
#[derive(Debug)]
pub struct TrustStream {
    response: reqwest::Response,
    parser: SseParser,
    pending: std::collections::VecDeque<SseEvent>,
    url: String,
}

impl TrustStream {
    /// Connects to `{base_url}/v1/trust/stream` with a read `token`. The connection
    /// stays open; a read that stalls longer than `idle` (the server sends keep-alives
    /// every 15 s) fails.
    ///
    /// # Errors
    /// TLS, transport or status failures.
    pub async fn connect(
        base_url: &str,
        ca_pem: String,
        token: &str,
        idle: Duration,
    ) -> Result<Self, ClientError> {
        let client = https_builder(&TlsOptions {
            ca_pem: Some(ca_pem),
            identity: None,
        })?
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(idle)
        .build()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
        let url = format!("{}/v1/trust/stream", base_url.trim_end_matches('/'));
        let response = client
            .get(&url)
            .bearer_auth(token)
            .header("Accept", "text/event-stream")
            .send()
            .await
            .map_err(|source| ClientError::Connect {
                url: url.clone(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(ClientError::Status {
                url,
                status: response.status().as_u16(),
                code: None,
                message: "the trust stream was refused".to_owned(),
            });
        }
        Ok(Self {
            response,
            parser: SseParser::default(),
            pending: std::collections::VecDeque::new(),
            url,
        })
    }

    /// The next event; None when the server closed the stream.
    ///
    /// # Errors
    /// Transport failures or a malformed stream (reconnect).
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, ClientError> {
        loop {
            while let Some(event) = self.pending.pop_front() {
                match event.event.as_str() {
                    "trust" => match serde_json::from_str::<TrustChange>(&event.data) {
                        Ok(change) => return Ok(Some(StreamEvent::Change(change))),
                        Err(e) => {
                            return Err(ClientError::Decode {
                                url: self.url.clone(),
                                reason: format!("trust event: {e}"),
                            });
                        }
                    },
                    "resync" => return Ok(Some(StreamEvent::Resync)),
                    _ => {}
                }
            }
            let chunk = self
                .response
                .chunk()
                .await
                .map_err(|source| ClientError::Connect {
                    url: self.url.clone(),
                    source,
                })?;
            let Some(chunk) = chunk else {
                return Ok(None);
            };
            let events = self.parser.push(&chunk).map_err(|e| ClientError::Decode {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
            self.pending.extend(events);
        }
    }
}
