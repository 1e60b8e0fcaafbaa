//! Tokens: `X-Auth-Token: T` (as every OpenStack client sends) or `Authorization: Bearer
//! T`. Configured as SHA-256 hashes, compared in constant time. Admin tokens may write;
//! read tokens read; compute tokens only report heartbeats.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ApiError;
use crate::service::Service;

fn token_hash(parts: &Parts) -> Option<Vec<u8>> {
    let headers = &parts.headers;
    let token = match headers.get("x-auth-token") {
        Some(v) => v.to_str().ok()?.trim().to_owned(),
        None => {
            let v = headers
                .get(axum::http::header::AUTHORIZATION)?
                .to_str()
                .ok()?;
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))?
                .trim()
                .to_owned()
        }
    };
    Some(
        digest::digest(&digest::SHA256, token.as_bytes())
            .as_ref()
            .to_vec(),
    )
}

fn known(hash: &[u8], allowed: &[Vec<u8>]) -> bool {
    allowed.iter().fold(false, |found, h| {
        found | verify_slices_are_equal(hash, h).is_ok()
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    Reader,
    Compute,
}

fn role(parts: &Parts, s: &Service) -> Result<Role, ApiError> {
    let hash = token_hash(parts).ok_or(ApiError::Unauthenticated)?;
    let c = &s.config;
    if known(&hash, &c.admin_tokens) {
        Ok(Role::Admin)
    } else if known(&hash, &c.read_tokens) {
        Ok(Role::Reader)
    } else if known(&hash, &c.compute_tokens) {
        Ok(Role::Compute)
    } else {
        Err(ApiError::Unauthenticated)
    }
}

/// May write.
#[derive(Debug, Clone, Copy)]
pub(super) struct Admin;

/// May read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reader;

/// May report a host's heartbeat.
#[derive(Debug, Clone, Copy)]
pub(super) struct Compute;

impl FromRequestParts<Arc<Service>> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &Arc<Service>) -> Result<Self, ApiError> {
        match role(parts, s)? {
            Role::Admin => Ok(Self),
            _ => Err(ApiError::Forbidden(
                "Policy doesn't allow this operation to be performed: it needs an admin token.",
            )),
        }
    }
}

impl FromRequestParts<Arc<Service>> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &Arc<Service>) -> Result<Self, ApiError> {
        match role(parts, s)? {
            Role::Admin | Role::Reader => Ok(Self),
            Role::Compute => Err(ApiError::Forbidden(
                "Policy doesn't allow this operation to be performed: a compute token only reports heartbeats.",
            )),
        }
    }
}

impl FromRequestParts<Arc<Service>> for Compute {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &Arc<Service>) -> Result<Self, ApiError> {
        match role(parts, s)? {
            Role::Admin | Role::Compute => Ok(Self),
            Role::Reader => Err(ApiError::Forbidden(
                "Policy doesn't allow this operation to be performed: it needs a compute token.",
            )),
        }
    }
}
