//! Servers (instances): `POST/GET /v2.1/servers`, `/servers/detail`, `GET/DELETE
//! /servers/{id}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Link;

/// `POST /v2.1/servers` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateServer {
    /// The request.
    pub server: NewServer,
}

/// What a user asks for. Keys Nova clients send that mean nothing here (`networks`,
/// `key_name`, `security_groups` …) are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewServer {
    /// Name.
    pub name: String,
    /// Image id (recorded; images are not managed here).
    #[serde(rename = "imageRef", default)]
    pub image_ref: String,
    /// Flavor id or name.
    #[serde(rename = "flavorRef")]
    pub flavor_ref: String,
    /// `az`, `az:host` or `az:host:node` (the host forms are for administrators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Fewest instances to create (all or nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    /// Most instances to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    /// User metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// `{"server": {"id", "links"}}`, the 202 answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedServer {
    /// The (first) server.
    pub server: ServerRef,
}

/// An id with its links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRef {
    /// UUID.
    pub id: String,
    /// Links.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// A server's fault (`nova show`): `{"code": 500, "message": "No valid host was found. …"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// HTTP-like code (500 for scheduling failures).
    pub code: u16,
    /// Nova's message.
    pub message: String,
    /// RFC 3339.
    pub created: String,
    /// Detail (the per-filter counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// Raised on a running instance whose host stopped being trusted (trustpool's addition),
/// for an operator to evacuate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAlert {
    /// The host's level now (`untrusted` / `unknown`).
    pub trust_lvl: String,
    /// When it was seen (RFC 3339).
    pub since: String,
    /// Why, as the attestation server said.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// A flavor as embedded in a server (microversion 2.47 shape, plus the id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFlavor {
    /// Flavor id.
    pub id: String,
    /// Flavor name.
    pub original_name: String,
    /// RAM MiB.
    pub ram: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Disk GiB.
    pub disk: u64,
    /// Ephemeral GiB.
    pub ephemeral: u64,
    /// Swap MiB.
    pub swap: u64,
    /// Extra specs at boot time.
    pub extra_specs: BTreeMap<String, String>,
}

/// An id reference (`{"id": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    /// The id.
    pub id: String,
}

/// A server as `GET /v2.1/servers/detail` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// `BUILD`, `ACTIVE`, `ERROR`.
    pub status: String,
    /// Flavor at boot.
    pub flavor: ServerFlavor,
    /// Image.
    pub image: IdRef,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339.
    pub updated: String,
    /// Compute host.
    #[serde(rename = "OS-EXT-SRV-ATTR:host")]
    pub host: Option<String>,
    /// Hypervisor host name.
    #[serde(rename = "OS-EXT-SRV-ATTR:hypervisor_hostname")]
    pub hypervisor_hostname: Option<String>,
    /// Availability zone.
    #[serde(rename = "OS-EXT-AZ:availability_zone")]
    pub availability_zone: String,
    /// `building`, `active`, `error`.
    #[serde(rename = "OS-EXT-STS:vm_state")]
    pub vm_state: String,
    /// `scheduling` while placed, else null.
    #[serde(rename = "OS-EXT-STS:task_state")]
    pub task_state: Option<String>,
    /// Why it is in ERROR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// The host stopped being trusted while this ran.
    #[serde(default)]
    pub trust_alert: Option<TrustAlert>,
    /// User metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Links.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// `{"server": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerBody {
    /// The server.
    pub server: Server,
}

/// `{"servers": […]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerList {
    /// The servers.
    pub servers: Vec<Server>,
}
