//! `/v2.1/flavors` and `os-extra_specs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use trustpool_api::compute::flavor::{
    CreateFlavor, ExtraSpecs, ExtraSpecsInput, FlavorBody, FlavorList,
};

use super::auth::{Admin, Reader};
use super::{ApiError, ApiJson, views};
use crate::service::Service;

pub(super) async fn list(State(s): State<Arc<Service>>, _: Reader) -> Json<FlavorList> {
    Json(FlavorList {
        flavors: s.flavors().into_iter().map(views::flavor).collect(),
    })
}

pub(super) async fn show(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<FlavorBody>, ApiError> {
    Ok(Json(FlavorBody {
        flavor: views::flavor(s.flavor(&id)?),
    }))
}

pub(super) async fn create(
    State(s): State<Arc<Service>>,
    _: Admin,
    ApiJson(body): ApiJson<CreateFlavor>,
) -> Result<Json<FlavorBody>, ApiError> {
    Ok(Json(FlavorBody {
        flavor: views::flavor(s.create_flavor(body.flavor).await?),
    }))
}

pub(super) async fn delete(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_flavor(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn specs(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<ExtraSpecs>, ApiError> {
    Ok(Json(ExtraSpecs {
        extra_specs: s.flavor(&id)?.extra_specs,
    }))
}

fn strings(input: ExtraSpecsInput) -> BTreeMap<String, String> {
    input
        .extra_specs
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect()
}

pub(super) async fn set_specs(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExtraSpecsInput>,
) -> Result<Json<ExtraSpecs>, ApiError> {
    Ok(Json(ExtraSpecs {
        extra_specs: s.set_extra_specs(&id, strings(body)).await?,
    }))
}

pub(super) async fn spec(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let flavor = s.flavor(&id)?;
    let value = flavor.extra_specs.get(&key).ok_or_else(|| {
        crate::service::ServiceError::NotFound(format!(
            "Flavor {} has no extra specs with key {key}.",
            flavor.id
        ))
    })?;
    Ok(Json(json!({ key: value })))
}

/// `PUT …/os-extra_specs/{key}` with `{key: value}`: exactly one item, matching the URI.
pub(super) async fn put_spec(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path((id, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<BTreeMap<String, trustpool_api::compute::StringOrNumber>>,
) -> Result<Json<Value>, ApiError> {
    let mut items = body.into_iter();
    let (Some((k, v)), None) = (items.next(), items.next()) else {
        return Err(ApiError::BadRequest(
            "Request body and URI mismatch: the body must hold exactly one item.".to_owned(),
        ));
    };
    if k != key {
        return Err(ApiError::BadRequest(
            "Request body and URI mismatch".to_owned(),
        ));
    }
    let v = v.into_string();
    s.set_extra_specs(&id, BTreeMap::from([(k.clone(), v.clone())]))
        .await?;
    Ok(Json(json!({ k: v })))
}

pub(super) async fn delete_spec(
    State(s): State<Arc<Service>>,
    _: Admin,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.unset_extra_spec(&id, &key).await?;
    Ok(StatusCode::OK)
}
