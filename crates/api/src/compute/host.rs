//! Hypervisors, services, aggregates and availability zones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A hypervisor's service, as embedded in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypervisorService {
    /// Service id.
    pub id: u64,
    /// Host.
    pub host: String,
    /// Why disabled.
    pub disabled_reason: Option<String>,
}

/// `GET /v2.1/os-hypervisors/detail` entry (pre-2.88 fields), with the host's trust level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypervisor {
    /// Id.
    pub id: u64,
    /// Host name.
    pub hypervisor_hostname: String,
    /// `up` / `down` (heartbeat within `service_down_time`).
    pub state: String,
    /// `enabled` / `disabled`.
    pub status: String,
    /// vCPUs.
    pub vcpus: u32,
    /// vCPUs in use.
    pub vcpus_used: u32,
    /// RAM MiB.
    pub memory_mb: u64,
    /// RAM MiB in use.
    pub memory_mb_used: u64,
    /// Free RAM MiB (may be negative when overcommitted).
    pub free_ram_mb: i64,
    /// Disk GiB.
    pub local_gb: u64,
    /// Disk GiB in use.
    pub local_gb_used: u64,
    /// Free disk GiB.
    pub free_disk_gb: i64,
    /// Same as free disk here.
    pub disk_available_least: i64,
    /// Instances placed on it.
    pub running_vms: u32,
    /// Always 0.
    pub current_workload: u32,
    /// Agent address.
    pub host_ip: String,
    /// `QEMU`.
    pub hypervisor_type: String,
    /// 1.
    pub hypervisor_version: u64,
    /// The service.
    pub service: HypervisorService,
    /// Availability zones (from aggregates, else the default zone).
    pub availability_zones: Vec<String>,
    /// `trusted` / `untrusted` / `unknown`, as the scheduler last learned it.
    pub trust_level: String,
    /// When the attestation server vouched for that level (RFC 3339), if it did.
    pub trust_vtime: Option<String>,
}

/// `{"hypervisor": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypervisorBody {
    /// The hypervisor.
    pub hypervisor: Hypervisor,
}

/// `{"hypervisors": […]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypervisorList {
    /// The hypervisors.
    pub hypervisors: Vec<Hypervisor>,
}

/// `POST /v2.1/os-hypervisors` (administrators only): a compute node exists once an
/// administrator creates it (Nova registers whatever `nova-compute` reports; trustpool does
/// not let a heartbeat create a name). The answer is a [`HypervisorCredential`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateHypervisor {
    /// The node to create.
    pub hypervisor: NewHypervisor,
}

/// The node [`CreateHypervisor`] creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHypervisor {
    /// Its host name (a DNS name, [`crate::names::check_name`]): the name its heartbeats
    /// and the attestation server use.
    pub hypervisor_hostname: String,
}

/// A node and its new compute token: the answer to `POST /v2.1/os-hypervisors` and to
/// `POST /v2.1/os-hypervisors/{id}/compute-token` (rotation; the old token stops working).
/// The scheduler keeps only the token's SHA-256: this answer is the one time it is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypervisorCredential {
    /// The node.
    pub hypervisor: Hypervisor,
    /// The token its agent sends with each heartbeat (`[scheduler] token_file`); it
    /// authenticates heartbeats for this node's name only.
    pub compute_token: String,
}

/// `GET /v2.1/os-services` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Id.
    pub id: u64,
    /// `nova-compute`.
    pub binary: String,
    /// Host.
    pub host: String,
    /// First availability zone.
    pub zone: String,
    /// `enabled` / `disabled`.
    pub status: String,
    /// `up` / `down`.
    pub state: String,
    /// Last heartbeat (RFC 3339).
    pub updated_at: Option<String>,
    /// Why disabled.
    pub disabled_reason: Option<String>,
    /// Always false.
    pub forced_down: bool,
}

/// `{"services": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// The services.
    pub services: Vec<Service>,
}

/// `PUT /v2.1/os-services/{disable,enable,disable-log-reason}` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAction {
    /// Host.
    pub host: String,
    /// `nova-compute`.
    pub binary: String,
    /// Why (disable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

/// The answer: `{"service": {"host", "binary", "status", "disabled_reason"?}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceActionBody {
    /// The new state.
    pub service: ServiceStatus,
}

/// A service's new status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Host.
    pub host: String,
    /// Binary.
    pub binary: String,
    /// `enabled` / `disabled`.
    pub status: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

/// A host aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Its `availability_zone` metadata.
    pub availability_zone: Option<String>,
    /// Member hosts.
    pub hosts: Vec<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: Option<String>,
    /// Always false.
    pub deleted: bool,
}

/// `{"aggregate": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateBody {
    /// The aggregate.
    pub aggregate: Aggregate,
}

/// `{"aggregates": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateList {
    /// The aggregates.
    pub aggregates: Vec<Aggregate>,
}

/// `POST /v2.1/os-aggregates` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAggregate {
    /// The new aggregate.
    pub aggregate: NewAggregate,
}

/// Name and optional zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAggregate {
    /// Name.
    pub name: String,
    /// Zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

/// `POST /v2.1/os-aggregates/{id}/action` body: exactly one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AggregateAction {
    /// `{"add_host": {"host": "h"}}`.
    AddHost {
        /// Host.
        host: String,
    },
    /// `{"remove_host": {"host": "h"}}`.
    RemoveHost {
        /// Host.
        host: String,
    },
    /// `{"set_metadata": {"metadata": {k: v | null}}}` (null deletes the key).
    SetMetadata {
        /// Changes.
        metadata: BTreeMap<String, Option<String>>,
    },
}

/// `GET /v2.1/os-availability-zone` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityZone {
    /// Name.
    #[serde(rename = "zoneName")]
    pub zone_name: String,
    /// `{"available": true}`.
    #[serde(rename = "zoneState")]
    pub zone_state: ZoneState,
    /// Member hosts (null in Nova's non-detail form; listed here).
    pub hosts: Option<Vec<String>>,
}

/// Whether a zone has an enabled, up host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneState {
    /// Available.
    pub available: bool,
}

/// `{"availabilityZoneInfo": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityZoneList {
    /// Zones.
    #[serde(rename = "availabilityZoneInfo")]
    pub availability_zone_info: Vec<AvailabilityZone>,
}
