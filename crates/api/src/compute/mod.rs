//! The scheduler's compute API, Nova-shaped: the same paths and JSON shapes as Nova's v2.1
//! so curl snippets, SDKs and muscle memory carry over (`../shared/reference/scheduler.md`
//! §5.1), plus the agent's heartbeat.
//!
//! - [`flavor`]: flavors and their extra specs;
//! - [`server`]: instances (boot, show, delete) and their faults;
//! - [`host`]: hypervisors, services, aggregates and availability zones;
//! - [`NovaError`]: Nova's error body (`{"itemNotFound": {"code": 404, "message": …}}`).

pub mod flavor;
pub mod host;
pub mod server;

use std::collections::BTreeMap;

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

/// Nova's error body: one key naming the kind (`badRequest`, `itemNotFound`, `conflict`,
/// `forbidden`, `computeFault` …) holding `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NovaError(pub BTreeMap<String, NovaFault>);

impl NovaError {
    /// One error of `kind`.
    #[must_use]
    pub fn new(kind: &str, code: u16, message: impl Into<String>) -> Self {
        Self(BTreeMap::from([(
            kind.to_owned(),
            NovaFault {
                code,
                message: message.into(),
            },
        )]))
    }

    /// The message (of the first kind).
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.0.values().next().map(|f| f.message.as_str())
    }
}

/// The inside of a [`NovaError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NovaFault {
    /// The HTTP status.
    pub code: u16,
    /// What went wrong, in Nova's words where Nova had some.
    pub message: String,
}

/// A link (`rel` = `self` / `bookmark`), as every Nova resource carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// `self` or `bookmark`.
    pub rel: String,
    /// URL.
    pub href: String,
}

/// A JSON value Nova accepts where a string is meant: a string or a number (converted).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StringOrNumber {
    /// As sent.
    String(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl StringOrNumber {
    /// The string form (`1.5` → `"1.5"`).
    #[must_use]
    pub fn into_string(self) -> String {
        match self {
            Self::String(s) => s,
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
        }
    }
}
