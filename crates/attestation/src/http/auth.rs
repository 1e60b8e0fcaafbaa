//! Bearer-token extractors: writes need an admin token, reads a read (or admin) token.
//! Tokens are configured as SHA-256 hashes and compared in constant time.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::IntoResponse as _;

use super::ApiError;
use crate::config::NamedToken;
use crate::service::Service;

fn bearer_hash(parts: &Parts) -> Option<Vec<u8>> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(
        digest::digest(&digest::SHA256, token.trim().as_bytes())
            .as_ref()
            .to_vec(),
    )
}

/// The name of the token with this hash, comparing with every configured one in constant
/// time (no early exit).
fn matches(hash: &[u8], allowed: &[NamedToken]) -> Option<String> {
    allowed.iter().fold(None, |found, t| {
        let hit = verify_slices_are_equal(hash, &t.hash).is_ok();
        if hit && found.is_none() {
            Some(t.name.clone())
        } else {
            found
        }
    })
}

/// An administrator (may write), by the name of the token presented: what audit rows
/// record.
#[derive(Debug, Clone)]
pub(super) struct Admin(pub(super) String);

/// A reader (dashboards, schedulers).
#[derive(Debug, Clone, Copy)]
pub(super) struct Reader;

impl FromRequestParts<Arc<Service>> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let hash = bearer_hash(parts)
            .ok_or(ApiError::Unauthorized("an admin bearer token is required"))?;
        matches(&hash, &state.config.admin_tokens)
            .map(Self)
            .ok_or(ApiError::Unauthorized("invalid admin token"))
    }
}

impl FromRequestParts<Arc<Service>> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let hash =
            bearer_hash(parts).ok_or(ApiError::Unauthorized("a bearer token is required"))?;
        if matches(&hash, &state.config.read_tokens).is_some()
            || matches(&hash, &state.config.admin_tokens).is_some()
        {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized("invalid token"))
        }
    }
}

/// A person at a browser: a read or admin token as the password of HTTP Basic auth (the
/// browser asks for it), or a bearer token. Refusals carry `WWW-Authenticate`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Viewer;

fn basic_hash(parts: &Parts) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, token) = text.split_once(':')?;
    Some(
        digest::digest(&digest::SHA256, token.as_bytes())
            .as_ref()
            .to_vec(),
    )
}

impl FromRequestParts<Arc<Service>> for Viewer {
    type Rejection = axum::response::Response;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let allowed = |h: &[u8]| {
            matches(h, &state.config.read_tokens).is_some()
                || matches(h, &state.config.admin_tokens).is_some()
        };
        if basic_hash(parts)
            .or_else(|| bearer_hash(parts))
            .is_some_and(|h| allowed(&h))
        {
            return Ok(Self);
        }
        Err((
            axum::http::StatusCode::UNAUTHORIZED,
            [(
                axum::http::header::WWW_AUTHENTICATE,
                "Basic realm=\"trustpool (password: a read or admin token)\", charset=\"UTF-8\"",
            )],
            "a read or admin token is required (as the Basic auth password)\n",
        )
            .into_response())
    }
}
