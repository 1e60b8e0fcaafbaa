//! Tokens: `X-Auth-Token: T` (as every OpenStack client sends) or `Authorization: Bearer
//! T`. Admin and read tokens are configured as SHA-256 hashes, compared in constant time;
//! admin tokens may write, read tokens read. Each compute node has its own compute token
//! (an administrator creates it with the node; the database keeps its SHA-256): it only
//! reports heartbeats, and only for that node's name.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ApiError;
use crate::service::Service;
use crate::service::hosts::token_sha256;

fn token_hash(parts: &Parts) -> Option<[u8; 32]> {
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
    Some(token_sha256(&token))
}

fn known(hash: &[u8], allowed: &[Vec<u8>]) -> bool {
    allowed.iter().fold(false, |found, h| {
        found | verify_slices_are_equal(hash, h).is_ok()
    })
}

#[derive(Clone, PartialEq, Eq)]
enum Role {
    Admin,
    Reader,
    /// The compute node whose token this is.
    Node(String),
}

fn role(parts: &Parts, s: &Service) -> Result<Role, ApiError> {
    let hash = token_hash(parts).ok_or(ApiError::Unauthenticated)?;
    let c = &s.config;
    if known(&hash, &c.admin_tokens) {
        Ok(Role::Admin)
    } else if known(&hash, &c.read_tokens) {
        Ok(Role::Reader)
    } else if let Some(node) = s.node_of_token(&hash) {
        Ok(Role::Node(node))
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

/// May report the heartbeat of this one compute node (its own token authenticated the
/// request).
#[derive(Debug, Clone)]
pub(super) struct ComputeNode(pub(super) String);

impl FromRequestParts<Arc<Service>> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &Arc<Service>) -> Result<Self, ApiError> {
        match role(parts, s)? {
            Role::Admin => Ok(Self),
            Role::Reader | Role::Node(_) => Err(ApiError::Forbidden(
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
            Role::Node(_) => Err(ApiError::Forbidden(
                "Policy doesn't allow this operation to be performed: a compute token only reports its host's heartbeats.",
            )),
        }
    }
}

impl FromRequestParts<Arc<Service>> for ComputeNode {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &Arc<Service>) -> Result<Self, ApiError> {
        match role(parts, s)? {
            Role::Node(node) => Ok(Self(node)),
            Role::Admin | Role::Reader => Err(ApiError::Forbidden(
                "Policy doesn't allow this operation to be performed: a heartbeat needs the host's own compute token (trustpool hypervisor-create NAME prints it).",
            )),
        }
    }
}
