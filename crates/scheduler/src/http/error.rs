//! Errors as Nova writes them: `{"itemNotFound": {"code": 404, "message": "Flavor m1 could
//! not be found."}}`; Keystone's body for a missing token.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use trustpool_api::compute::NovaError;

use crate::service::ServiceError;

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401 (no or unknown token).
    #[error("The request you have made requires authentication.")]
    Unauthenticated,
    /// 403 (a token without the role).
    #[error("{0}")]
    Forbidden(&'static str),
    /// From a use case.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(format!(
            "Invalid input for field/attribute: {}",
            rejection.body_text()
        ))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            Self::Unauthenticated => {
                let body = serde_json::json!({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}});
                return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            }
            Self::BadRequest(m) | Self::Service(ServiceError::BadRequest(m)) => {
                (StatusCode::BAD_REQUEST, "badRequest", m)
            }
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.to_owned()),
            Self::Service(ServiceError::NotFound(m)) => (StatusCode::NOT_FOUND, "itemNotFound", m),
            Self::Service(ServiceError::Conflict(m)) => (StatusCode::CONFLICT, "conflict", m),
            Self::Service(ServiceError::Forbidden(m)) => (StatusCode::FORBIDDEN, "forbidden", m),
            Self::Service(e) => {
                tracing::error!(error = %crate::trust::source::error_chain(&e), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "computeFault",
                    "The server has either erred or is incapable of performing the requested operation.".to_owned(),
                )
            }
        };
        (status, Json(NovaError::new(kind, status.as_u16(), message))).into_response()
    }
}
