//! Heartbeats, `os-hypervisors`, `os-services`, `os-aggregates`, `os-availability-zone`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use trustpool_api::compute::HostReport;
use trustpool_api::compute::host::{
    AggregateAction, AggregateBody, AggregateList, AvailabilityZone, AvailabilityZoneList,
    CreateAggregate, CreateHypervisor, HypervisorBody, HypervisorCredential, HypervisorList,
    ServiceAction, ServiceActionBody, ServiceList, ServiceStatus, ZoneState,
};

use super::auth::{Admin, ComputeNode, Reader};
use super::{ApiError, ApiJson, views};
use crate::service::{Service, ServiceError};

pub(super) async fn report(
    State(s): State<Arc<Service>>,
    ComputeNode(node): ComputeNode,
    ApiJson(body): ApiJson<HostReport>,
) -> Result<Json<Value>, ApiError> {
    let id = s.report(&node, &body).await?;
    Ok(Json(
        json!({"hypervisor": {"id": id, "hypervisor_hostname": body.host_name}}),
    ))
}

pub(super) async fn hypervisors(State(s): State<Arc<Service>>, _: Reader) -> Json<HypervisorList> {
    Json(HypervisorList {
        hypervisors: s
            .nodes()
            .into_iter()
            .map(|n| views::hypervisor(&s, n))
            .collect(),
    })
}

pub(super) async fn hypervisor(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<HypervisorBody>, ApiError> {
    Ok(Json(HypervisorBody {
        hypervisor: views::hypervisor(&s, s.node(&id)?),
    }))
}

/// `POST /v2.1/os-hypervisors`: the node and its compute token (shown this once).
pub(super) async fn create_hypervisor(
    State(s): State<Arc<Service>>,
    _: Admin,
    ApiJson(body): ApiJson<CreateHypervisor>,
) -> Result<Json<HypervisorCredential>, ApiError> {
    let (node, compute_token) = s.create_node(&body.hypervisor.hypervisor_hostname).await?;
    Ok(Json(HypervisorCredential {
        hypervisor: views::hypervisor(&s, node),
        compute_token,
    }))
}

/// `POST /v2.1/os-hypervisors/{id}/compute-token`: a new token; the old one is void.
pub(super) async fn rotate_token(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<HypervisorCredential>, ApiError> {
    let (node, compute_token) = s.rotate_node_token(&id).await?;
    Ok(Json(HypervisorCredential {
        hypervisor: views::hypervisor(&s, node),
        compute_token,
    }))
}

/// `DELETE /v2.1/os-services/{id}` (id or host name): the node goes, with its token.
pub(super) async fn delete_service(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_node(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn services(State(s): State<Arc<Service>>, _: Reader) -> Json<ServiceList> {
    Json(ServiceList {
        services: s
            .nodes()
            .into_iter()
            .map(|n| views::service_view(&s, n))
            .collect(),
    })
}

/// `PUT /v2.1/os-services/{enable,disable,disable-log-reason}`.
pub(super) async fn service_action(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(action): Path<String>,
    ApiJson(body): ApiJson<ServiceAction>,
) -> Result<Json<ServiceActionBody>, ApiError> {
    if body.binary != "nova-compute" {
        return Err(ApiError::BadRequest(format!(
            "Service {} on host {} not found (only nova-compute services exist here).",
            body.binary, body.host
        )));
    }
    let disabled = match action.as_str() {
        "enable" => false,
        "disable" | "disable-log-reason" => true,
        other => {
            return Err(ServiceError::NotFound(format!("Unknown action {other}")).into());
        }
    };
    let node = s
        .set_service(&body.host, disabled, body.disabled_reason.clone())
        .await?;
    Ok(Json(ServiceActionBody {
        service: ServiceStatus {
            host: node.host,
            binary: body.binary,
            status: if disabled { "disabled" } else { "enabled" }.to_owned(),
            disabled_reason: node.disabled_reason,
        },
    }))
}

pub(super) async fn aggregates(State(s): State<Arc<Service>>, _: Reader) -> Json<AggregateList> {
    Json(AggregateList {
        aggregates: s.aggregates().into_iter().map(views::aggregate).collect(),
    })
}

fn aggregate_id(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ServiceError::NotFound(format!("Aggregate {text} could not be found.")).into())
}

pub(super) async fn aggregate(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<AggregateBody>, ApiError> {
    let id = aggregate_id(&id)?;
    let a = s
        .aggregates()
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ServiceError::NotFound(format!("Aggregate {id} could not be found.")))?;
    Ok(Json(AggregateBody {
        aggregate: views::aggregate(a),
    }))
}

pub(super) async fn create_aggregate(
    State(s): State<Arc<Service>>,
    _: Admin,
    ApiJson(body): ApiJson<CreateAggregate>,
) -> Result<Json<AggregateBody>, ApiError> {
    let a = s
        .create_aggregate(&body.aggregate.name, body.aggregate.availability_zone)
        .await?;
    Ok(Json(AggregateBody {
        aggregate: views::aggregate(a),
    }))
}

pub(super) async fn aggregate_action(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(id): Path<String>,
    ApiJson(action): ApiJson<AggregateAction>,
) -> Result<Json<AggregateBody>, ApiError> {
    let a = s.aggregate_action(aggregate_id(&id)?, action).await?;
    Ok(Json(AggregateBody {
        aggregate: views::aggregate(a),
    }))
}

pub(super) async fn delete_aggregate(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_aggregate(aggregate_id(&id)?).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn zones(State(s): State<Arc<Service>>, _: Reader) -> Json<AvailabilityZoneList> {
    let nodes = s.nodes();
    let default = s.config.default_availability_zone.clone();
    let zones = s
        .zones()
        .into_iter()
        .map(|zone| {
            let hosts: Vec<String> = nodes
                .iter()
                .filter(|n| {
                    s.read()
                        .hosts
                        .get(n.host.as_str())
                        .is_some_and(|h| h.availability_zones(&default).contains(&zone))
                })
                .map(|n| n.host.clone())
                .collect();
            AvailabilityZone {
                zone_name: zone,
                zone_state: ZoneState {
                    available: !hosts.is_empty(),
                },
                hosts: Some(hosts),
            }
        })
        .collect();
    Json(AvailabilityZoneList {
        availability_zone_info: zones,
    })
}
