//! The scheduler's compute API, Nova-shaped (`/v2.1/…`): what `trustpool` verbs and the
//! agents' heartbeats call.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use trustpool_api::compute::flavor::{CreateFlavor, ExtraSpecs, Flavor, FlavorBody, FlavorList};
use trustpool_api::compute::host::{
    Aggregate, AggregateAction, AggregateBody, AggregateList, AvailabilityZoneList,
    CreateAggregate, CreateHypervisor, Hypervisor, HypervisorBody, HypervisorCredential,
    HypervisorList, NewAggregate, NewHypervisor, Service, ServiceAction, ServiceActionBody,
    ServiceList, ServiceStatus,
};
use trustpool_api::compute::server::{
    CreateServer, CreatedServer, NewServer, Server, ServerBody, ServerList,
};
use trustpool_api::compute::{HOST_REPORT_PATH, HostReport};

use crate::{ClientError, Http, TlsOptions};

/// Percent-encodes one path segment (ids and extra-spec keys may hold spaces; a `/`, `?`,
/// `#` or `%` in a name must not reach another resource).
///
/// A segment that is exactly `.` or `..` cannot be carried by any URL: RFC 3986 §5.2.4 and
/// the WHATWG URL parser (which reqwest uses) remove it, and treat `%2E` the same, so
/// `/v2.1/flavors/..` would reach `/v2.1/`. Check a name with [`addressable`] before
/// building a path from it (the CLI refuses such a name); host names never are one
/// (`trustpool_api::names::check_name`).
#[must_use]
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `text` can name a resource in a URL path: not empty (that names the
/// collection), not `.` or `..` (removed from every URL path, encoded or not).
#[must_use]
pub fn addressable(text: &str) -> bool {
    !matches!(text, "" | "." | "..")
}

/// A client of the compute API.
#[derive(Debug, Clone)]
pub struct ComputeClient(Http);

impl ComputeClient {
    /// A client for the scheduler at `base_url` (`https://host:8774`) sending `token`
    /// (an admin, read or compute token).
    ///
    /// # Errors
    /// `Tls` for unusable certificates.
    pub fn new(
        base_url: &str,
        tls: &TlsOptions,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Http::new(base_url, tls, timeout, token).map(Self)
    }

    async fn call<B: serde::Serialize + ?Sized, T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.0.send(method, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.0
            .send::<(), serde_json::Value>(Method::DELETE, path, None)
            .await
            .map(drop)
    }

    /// The agent's heartbeat.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn report(&self, report: &HostReport) -> Result<serde_json::Value, ClientError> {
        self.call(Method::POST, HOST_REPORT_PATH, report).await
    }

    /// `GET /v2.1/flavors/detail`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn flavors(&self) -> Result<Vec<Flavor>, ClientError> {
        Ok(self
            .0
            .get::<FlavorList>("/v2.1/flavors/detail")
            .await?
            .flavors)
    }

    /// `GET /v2.1/flavors/{id}` (an id or a name).
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn flavor(&self, id: &str) -> Result<Flavor, ClientError> {
        let path = format!("/v2.1/flavors/{}", segment(id));
        Ok(self.0.get::<FlavorBody>(&path).await?.flavor)
    }

    /// `POST /v2.1/flavors`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn create_flavor(&self, body: &CreateFlavor) -> Result<Flavor, ClientError> {
        Ok(self
            .call::<_, FlavorBody>(Method::POST, "/v2.1/flavors", body)
            .await?
            .flavor)
    }

    /// `DELETE /v2.1/flavors/{id}`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn delete_flavor(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v2.1/flavors/{}", segment(id))).await
    }

    /// `POST /v2.1/flavors/{id}/os-extra_specs` (merge).
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn set_extra_specs(
        &self,
        id: &str,
        specs: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let path = format!("/v2.1/flavors/{}/os-extra_specs", segment(id));
        let body = ExtraSpecs { extra_specs: specs };
        Ok(self
            .call::<_, ExtraSpecs>(Method::POST, &path, &body)
            .await?
            .extra_specs)
    }

    /// `DELETE /v2.1/flavors/{id}/os-extra_specs/{key}`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn unset_extra_spec(&self, id: &str, key: &str) -> Result<(), ClientError> {
        self.delete(&format!(
            "/v2.1/flavors/{}/os-extra_specs/{}",
            segment(id),
            segment(key)
        ))
        .await
    }

    /// `POST /v2.1/servers` → the new server's id.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn boot(&self, server: NewServer) -> Result<String, ClientError> {
        let body = CreateServer { server };
        Ok(self
            .call::<_, CreatedServer>(Method::POST, "/v2.1/servers", &body)
            .await?
            .server
            .id)
    }

    /// `GET /v2.1/servers/detail`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn servers(&self) -> Result<Vec<Server>, ClientError> {
        Ok(self
            .0
            .get::<ServerList>("/v2.1/servers/detail")
            .await?
            .servers)
    }

    /// `GET /v2.1/servers/{id}` (an id or a unique name).
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn server(&self, id: &str) -> Result<Server, ClientError> {
        let path = format!("/v2.1/servers/{}", segment(id));
        Ok(self.0.get::<ServerBody>(&path).await?.server)
    }

    /// `DELETE /v2.1/servers/{id}`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn delete_server(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v2.1/servers/{}", segment(id))).await
    }

    /// `GET /v2.1/os-hypervisors/detail`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn hypervisors(&self) -> Result<Vec<Hypervisor>, ClientError> {
        Ok(self
            .0
            .get::<HypervisorList>("/v2.1/os-hypervisors/detail")
            .await?
            .hypervisors)
    }

    /// `GET /v2.1/os-hypervisors/{id}` (an id or a host name).
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn hypervisor(&self, id: &str) -> Result<Hypervisor, ClientError> {
        let path = format!("/v2.1/os-hypervisors/{}", segment(id));
        Ok(self.0.get::<HypervisorBody>(&path).await?.hypervisor)
    }

    /// `POST /v2.1/os-hypervisors` (admin): creates compute node `name`; the answer carries
    /// its compute token, shown this once.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn create_hypervisor(&self, name: &str) -> Result<HypervisorCredential, ClientError> {
        let body = CreateHypervisor {
            hypervisor: NewHypervisor {
                hypervisor_hostname: name.to_owned(),
            },
        };
        self.call(Method::POST, "/v2.1/os-hypervisors", &body).await
    }

    /// `POST /v2.1/os-hypervisors/{id}/compute-token` (admin): a new compute token for a
    /// node (id or host name); its old one stops working.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn rotate_compute_token(
        &self,
        id: &str,
    ) -> Result<HypervisorCredential, ClientError> {
        let path = format!("/v2.1/os-hypervisors/{}/compute-token", segment(id));
        self.0
            .send::<(), HypervisorCredential>(Method::POST, &path, None)
            .await
    }

    /// `DELETE /v2.1/os-services/{id}` (admin): deletes a compute node (id or host name)
    /// and its compute token; refused while servers are on it.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn delete_service(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v2.1/os-services/{}", segment(id)))
            .await
    }

    /// `GET /v2.1/os-services`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn services(&self) -> Result<Vec<Service>, ClientError> {
        Ok(self
            .0
            .get::<ServiceList>("/v2.1/os-services")
            .await?
            .services)
    }

    /// `PUT /v2.1/os-services/disable` (or `disable-log-reason` with a reason) / `enable`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn set_service(
        &self,
        host: &str,
        enable: bool,
        reason: Option<String>,
    ) -> Result<ServiceStatus, ClientError> {
        let action = match (enable, reason.is_some()) {
            (true, _) => "enable",
            (false, false) => "disable",
            (false, true) => "disable-log-reason",
        };
        let body = ServiceAction {
            host: host.to_owned(),
            binary: "nova-compute".to_owned(),
            disabled_reason: reason,
        };
        Ok(self
            .call::<_, ServiceActionBody>(
                Method::PUT,
                &format!("/v2.1/os-services/{action}"),
                &body,
            )
            .await?
            .service)
    }

    /// `GET /v2.1/os-aggregates`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn aggregates(&self) -> Result<Vec<Aggregate>, ClientError> {
        Ok(self
            .0
            .get::<AggregateList>("/v2.1/os-aggregates")
            .await?
            .aggregates)
    }

    /// `POST /v2.1/os-aggregates`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn create_aggregate(
        &self,
        name: &str,
        availability_zone: Option<String>,
    ) -> Result<Aggregate, ClientError> {
        let body = CreateAggregate {
            aggregate: NewAggregate {
                name: name.to_owned(),
                availability_zone,
            },
        };
        Ok(self
            .call::<_, AggregateBody>(Method::POST, "/v2.1/os-aggregates", &body)
            .await?
            .aggregate)
    }

    /// `POST /v2.1/os-aggregates/{id}/action`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn aggregate_action(
        &self,
        id: u64,
        action: &AggregateAction,
    ) -> Result<Aggregate, ClientError> {
        let path = format!("/v2.1/os-aggregates/{}/action", segment(&id.to_string()));
        Ok(self
            .call::<_, AggregateBody>(Method::POST, &path, action)
            .await?
            .aggregate)
    }

    /// `DELETE /v2.1/os-aggregates/{id}`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn delete_aggregate(&self, id: u64) -> Result<(), ClientError> {
        self.delete(&format!("/v2.1/os-aggregates/{}", segment(&id.to_string())))
            .await
    }

    /// `GET /v2.1/os-availability-zone/detail`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn availability_zones(&self) -> Result<AvailabilityZoneList, ClientError> {
        self.0.get("/v2.1/os-availability-zone/detail").await
    }

    /// Any JSON call (for `--output json` of resources without a typed method).
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        self.0.send(method, path, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name reaches exactly one resource: its own segment.
    #[test]
    fn segments_stay_segments() {
        for name in [
            "x/../compute-1",
            "a?b",
            "a#b",
            "50%",
            "a b",
            "..%2F",
            "%2E%2E",
        ] {
            let url = reqwest::Url::parse(&format!(
                "https://h/v2.1/flavors/{}/os-extra_specs",
                segment(name)
            ))
            .unwrap();
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            assert_eq!(segments.len(), 4, "{name:?} -> {}", url.path());
            assert_eq!(segments[0..2], ["v2.1", "flavors"]);
            assert_eq!(segments[3], "os-extra_specs");
            assert_eq!(url.query(), None, "{name:?}");
            assert_eq!(url.fragment(), None, "{name:?}");
        }
        for name in ["", ".", ".."] {
            assert!(!addressable(name), "{name:?}");
        }
        for name in ["...", ".a", "compute-1", "a..b"] {
            assert!(addressable(name), "{name:?}");
            let url =
                reqwest::Url::parse(&format!("https://h/v2.1/flavors/{}", segment(name))).unwrap();
            assert_eq!(url.path_segments().unwrap().count(), 3, "{name:?}");
        }
    }
}
