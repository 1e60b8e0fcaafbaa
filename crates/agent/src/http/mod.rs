//! The agent's HTTPS API: `GET /v1/info`, `POST /v1/quote`, `POST /v1/activate`, served
//! over TLS that requires the attestation server's client certificate (chained to the
//! configured CA and carrying a pinned key): the server is the only client. Handlers are thin: extractor in, one TPM call, `ApiError`
//! out.

mod error;
mod tls;

pub use error::ApiError;
pub use tls::{ServerIdentity, pins_from_file, server_config, spki_sha256};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;
use trustpool_api::Base64Bytes;
use trustpool_api::agent::{
    ACTIVATE_PATH, ActivateRequest, ActivateResponse, AgentInfo, INFO_PATH, QUOTE_PATH,
    QuoteRequest, QuoteResponse,
};

use crate::tpm::Tpm;

/// Largest request body: a quote request or an activation blob is well under 4 KiB.
const MAX_BODY: usize = 16 * 1024;

/// Longest an event log file may be (as `trustpool-evidence` accepts).
const MAX_EVENT_LOG: u64 = 16 << 20;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The TPM task.
    pub tpm: Tpm,
    /// `/v1/info`'s answer.
    pub info: Arc<AgentInfo>,
    /// The event log file.
    pub event_log: PathBuf,
}

/// JSON body extractor whose rejections become [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// The router (tests call this directly).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(INFO_PATH, get(info))
        .route(QUOTE_PATH, post(quote))
        .route(ACTIVATE_PATH, post(activate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(60),
        ))
        .with_state(state)
}

async fn info(State(state): State<AppState>) -> Json<AgentInfo> {
    Json((*state.info).clone())
}

async fn quote(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<QuoteRequest>,
) -> Result<Json<QuoteResponse>, ApiError> {
    let out = state.tpm.quote(request.nonce, request.selection).await?;
    let event_log = if request.include_event_log {
        read_event_log(&state.event_log).await
    } else {
        None
    };
    Ok(Json(QuoteResponse {
        attest: Base64Bytes(out.attest),
        signature: Base64Bytes(out.signature),
        pcrs: out.pcrs,
        event_log: event_log.map(Base64Bytes),
    }))
}

async fn activate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ActivateRequest>,
) -> Result<Json<ActivateResponse>, ApiError> {
    let secret = state
        .tpm
        .activate(request.id_object.0, request.encrypted_secret.0)
        .await?;
    Ok(Json(ActivateResponse {
        secret: Base64Bytes(secret),
    }))
}

/// The event log, or None (logged) when it cannot be read: the verifier then refuses a
/// quote that needs it, which is the right outcome for a host without a log.
async fn read_event_log(path: &std::path::Path) -> Option<Vec<u8>> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.len() > MAX_EVENT_LOG => {
            tracing::warn!(path = %path.display(), len = meta.len(), "event log too large; not sent");
            None
        }
        Ok(_) => match tokio::fs::read(path).await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the event log");
                None
            }
        },
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the event log");
            None
        }
    }
}
