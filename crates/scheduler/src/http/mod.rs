//! The compute API over HTTPS, Nova-shaped (`/v2.1/…`). Handlers are thin: extractors in,
//! one service call, a view out, Nova's error bodies on the way back.

mod auth;
mod error;
mod flavors;
mod hosts;
mod servers;
mod views;

pub use error::ApiError;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;
use trustpool_api::compute::HOST_REPORT_PATH;

use crate::service::Service;

/// Largest request body (a flavor's extra specs, a boot request).
const MAX_BODY: usize = 256 << 10;

/// JSON extractor whose rejections become Nova's `badRequest`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// The router (tests call this).
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v2.1/flavors", get(flavors::list).post(flavors::create))
        .route("/v2.1/flavors/detail", get(flavors::list))
        .route(
            "/v2.1/flavors/{id}",
            get(flavors::show).delete(flavors::delete),
        )
        .route(
            "/v2.1/flavors/{id}/os-extra_specs",
            get(flavors::specs).post(flavors::set_specs),
        )
        .route(
            "/v2.1/flavors/{id}/os-extra_specs/{key}",
            get(flavors::spec)
                .put(flavors::put_spec)
                .delete(flavors::delete_spec),
        )
        .route("/v2.1/servers", get(servers::list).post(servers::create))
        .route("/v2.1/servers/detail", get(servers::list))
        .route(
            "/v2.1/servers/{id}",
            get(servers::show).delete(servers::delete),
        )
        .route(
            "/v2.1/servers/{id}/os-instance-actions",
            get(servers::actions),
        )
        .route(HOST_REPORT_PATH, post(hosts::report))
        .route(
            "/v2.1/os-hypervisors",
            get(hosts::hypervisors).post(hosts::create_hypervisor),
        )
        .route("/v2.1/os-hypervisors/detail", get(hosts::hypervisors))
        .route("/v2.1/os-hypervisors/{id}", get(hosts::hypervisor))
        .route(
            "/v2.1/os-hypervisors/{id}/compute-token",
            post(hosts::rotate_token),
        )
        .route("/v2.1/os-services", get(hosts::services))
        // `{action}` is also the service id DELETE takes (one parameter name per segment).
        .route(
            "/v2.1/os-services/{action}",
            put(hosts::service_action).delete(hosts::delete_service),
        )
        .route(
            "/v2.1/os-aggregates",
            get(hosts::aggregates).post(hosts::create_aggregate),
        )
        .route(
            "/v2.1/os-aggregates/{id}",
            get(hosts::aggregate).delete(hosts::delete_aggregate),
        )
        .route(
            "/v2.1/os-aggregates/{id}/action",
            post(hosts::aggregate_action),
        )
        .route("/v2.1/os-availability-zone", get(hosts::zones))
        .route("/v2.1/os-availability-zone/detail", get(hosts::zones))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(service)
}
