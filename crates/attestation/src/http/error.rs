//! The server's one error type: a status and stable code per variant; 5xx say only
//! "internal error" and are logged once, here.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use trustpool_api::ErrorBody;
use trustpool_api::error::codes;

use crate::service::ServiceError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad JSON.
    #[error("bad request")]
    BadJson(#[from] JsonRejection),
    /// No or wrong credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A body over its route's limit (or one that broke off).
    #[error("{0}")]
    TooLarge(&'static str),
    /// A use case refused or failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadJson(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE)
            }
            Self::BadJson(r) => (r.status(), codes::BAD_REQUEST),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE),
            Self::Service(e) => match e {
                ServiceError::Rejected(_) | ServiceError::Policy(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, codes::BAD_REQUEST)
                }
                ServiceError::EkCertificate(_) | ServiceError::Forbidden(_) => {
                    (StatusCode::FORBIDDEN, codes::EVIDENCE_REJECTED)
                }
                ServiceError::Conflict(_) => (StatusCode::CONFLICT, codes::CONFLICT),
                ServiceError::BadRequest(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
                ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
                ServiceError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, codes::UNAVAILABLE),
                ServiceError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %crate::error_chain(&self), "request failed");
            "internal error".to_owned()
        } else {
            match &self {
                Self::BadJson(r) => r.body_text(),
                other => crate::error_chain(other),
            }
        };
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
    fn every_service_error_has_a_deliberate_status() {
        let cases = [
            (
                ServiceError::Rejected("x".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                ServiceError::EkCertificate(crate::ekcert::EkCertError::UnknownIssuer),
                StatusCode::FORBIDDEN,
            ),
            (ServiceError::Forbidden("x".into()), StatusCode::FORBIDDEN),
            (ServiceError::Conflict("x".into()), StatusCode::CONFLICT),
            (
                ServiceError::BadRequest("x".into()),
                StatusCode::BAD_REQUEST,
            ),
            (
                ServiceError::from(crate::store::StoreError::Conflict("x".into())),
                StatusCode::CONFLICT,
            ),
            (ServiceError::NotFound("x".into()), StatusCode::NOT_FOUND),
            (
                ServiceError::TooMany("x".into()),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (
                ServiceError::Policy(trustpool_policy::PolicyError::Empty(
                    trustpool_policy::Part::Bios,
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(ApiError::Service(err).status_and_code().0, want);
        }
        assert_eq!(
            ApiError::Unauthorized("x").status_and_code().0,
            StatusCode::UNAUTHORIZED
        );
    }
}
