//! The agent API's one error type, mapped to statuses and stable codes.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use trustpool_api::ErrorBody;
use trustpool_api::error::codes;

use crate::tpm::TpmError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The JSON body was refused (syntax, a value out of range, too large).
    #[error("bad request")]
    BadJson(#[from] JsonRejection),
    /// The TPM said no, or failed.
    #[error("TPM operation failed")]
    Tpm(#[from] TpmError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadJson(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE)
            }
            Self::BadJson(rejection) => (rejection.status(), codes::BAD_REQUEST),
            Self::Tpm(TpmError::BadRequest(_)) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            // The TPM refused a command (e.g. a credential made for another key).
            Self::Tpm(TpmError::Command { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, codes::TPM_ERROR)
            }
            Self::Tpm(TpmError::PcrsChanged | TpmError::Stopped) => {
                (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE)
            }
            Self::Tpm(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %crate::error_chain(&self), "request failed");
            "internal error".to_owned()
        } else {
            match &self {
                Self::BadJson(rejection) => rejection.body_text(),
                Self::Tpm(e) => crate::error_chain(e),
            }
        };
        if status.is_client_error() {
            tracing::warn!(%status, %message, "request refused");
        }
        (
            status,
            Json(ErrorBody {
                code: code.to_owned(),
                message,
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tpm_error_has_a_deliberate_status() {
        let cases = [
            (TpmError::BadRequest("x".into()), StatusCode::BAD_REQUEST),
            (TpmError::PcrsChanged, StatusCode::SERVICE_UNAVAILABLE),
            (TpmError::Stopped, StatusCode::SERVICE_UNAVAILABLE),
            (
                TpmError::Unexpected("x".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                TpmError::Tcti { tcti: "x".into() },
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(ApiError::Tpm(err).status_and_code().0, want);
        }
    }
}
