//! `/v2.1/servers`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use trustpool_api::compute::server::{
    CreateServer, CreatedServer, ServerBody, ServerList, ServerRef,
};
use trustpool_api::time::rfc3339;

use super::auth::{Admin, Reader};
use super::{ApiError, ApiJson, views};
use crate::service::Service;

pub(super) async fn list(State(s): State<Arc<Service>>, _: Reader) -> Json<ServerList> {
    Json(ServerList {
        servers: s.servers().into_iter().map(views::server).collect(),
    })
}

pub(super) async fn show(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<ServerBody>, ApiError> {
    Ok(Json(ServerBody {
        server: views::server(s.server(&id)?),
    }))
}

/// 202 with the first server's id (Nova without `return_reservation_id`).
pub(super) async fn create(
    State(s): State<Arc<Service>>,
    _: Admin,
    ApiJson(body): ApiJson<CreateServer>,
) -> Result<(StatusCode, Json<CreatedServer>), ApiError> {
    let ids = s.boot(body.server).await?;
    let id = ids.into_iter().next().unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        Json(CreatedServer {
            server: ServerRef {
                links: vec![trustpool_api::compute::Link {
                    rel: "self".to_owned(),
                    href: format!("/v2.1/servers/{id}"),
                }],
                id,
            },
        }),
    ))
}

pub(super) async fn delete(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_server(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/os-instance-actions`: create, delete and trust alerts.
pub(super) async fn actions(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let server = s.server(&id)?;
    let actions = s
        .store
        .actions(&server.id)
        .await
        .map_err(crate::service::ServiceError::from)?;
    let list: Vec<Value> = actions
        .into_iter()
        .map(|(at, action, message)| {
            json!({"action": action, "instance_uuid": server.id, "start_time": rfc3339(at), "message": message})
        })
        .collect();
    Ok(Json(json!({ "instanceActions": list })))
}
