//! What an agent reports to the scheduler's compute API on every heartbeat.

use serde::{Deserialize, Serialize};

/// Path the agent posts [`HostReport`] to.
pub const HOST_REPORT_PATH: &str = "/v2.1/os-hypervisors/report";

/// A compute host's resources and placement, read from the OS (overridable in config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostReport {
    /// `hypervisor_hostname`.
    pub host_name: String,
    /// Total memory in MiB.
    pub memory_mb: u64,
    /// Logical CPUs.
    pub vcpus: u32,
    /// Local disk for instances in GiB.
    pub local_gb: u64,
    /// Availability zone (`nova` by default).
    pub availability_zone: String,
    /// The agent's URL (for the instance list).
    pub agent_url: String,
}
