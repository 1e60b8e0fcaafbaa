//! The error body every trustpool HTTP API returns, and its stable codes.

use serde::{Deserialize, Serialize};

/// `{"code": "...", "message": "..."}`: `code` is stable for scripts, `message` for
/// humans (4xx explain the problem; 5xx say only "internal error").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One of [`codes`].
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// Stable error codes.
pub mod codes {
    /// The request body or parameters are invalid.
    pub const BAD_REQUEST: &str = "bad_request";
    /// No or wrong credentials.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The resource does not exist.
    pub const NOT_FOUND: &str = "not_found";
    /// The request conflicts with current state (host bound to another EK …).
    pub const CONFLICT: &str = "conflict";
    /// The body is too large.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The TPM refused or failed.
    pub const TPM_ERROR: &str = "tpm_error";
    /// Evidence failed verification.
    pub const EVIDENCE_REJECTED: &str = "evidence_rejected";
    /// Anything else (details in the server log only).
    pub const INTERNAL: &str = "internal";
    /// Temporarily unable (TPM busy, shutting down).
    pub const UNAVAILABLE: &str = "unavailable";
}
