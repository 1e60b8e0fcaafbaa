//! Flavors and extra specs: `/v2.1/flavors[/detail|/{id}]`,
//! `/v2.1/flavors/{id}/os-extra_specs[/{key}]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Link, StringOrNumber};

/// The extra spec the TrustedFilter reads (`trusted` / `untrusted`).
pub const TRUSTED_HOST_SPEC: &str = "trust:trusted_host";

/// Longest extra-spec value (Nova's schema).
pub const MAX_SPEC_VALUE: usize = 255;

/// Whether `key` is a valid extra-spec key: `^[a-zA-Z0-9-_:. ]{1,255}$` (Nova's schema).
#[must_use]
pub fn valid_spec_key(key: &str) -> bool {
    (1..=255).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:. ".contains(&b))
}

/// A flavor as `GET /v2.1/flavors/detail` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// Id (a string: `1`, `m1.tiny`, a UUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// RAM in MiB.
    pub ram: u64,
    /// Root disk in GiB.
    pub disk: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Ephemeral disk in GiB.
    #[serde(rename = "OS-FLV-EXT-DATA:ephemeral", default)]
    pub ephemeral: u64,
    /// Swap in MiB.
    #[serde(default)]
    pub swap: u64,
    /// Network bandwidth factor.
    #[serde(default = "one")]
    pub rxtx_factor: f64,
    /// Visible to every project.
    #[serde(rename = "os-flavor-access:is_public", default = "yes")]
    pub is_public: bool,
    /// Disabled flavors cannot boot.
    #[serde(rename = "OS-FLV-DISABLED:disabled", default)]
    pub disabled: bool,
    /// Extra specs (microversion 2.61 embeds them).
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
    /// Links.
    #[serde(default)]
    pub links: Vec<Link>,
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

/// `{"flavor": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlavorBody {
    /// The flavor.
    pub flavor: Flavor,
}

/// `{"flavors": […]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlavorList {
    /// The flavors.
    pub flavors: Vec<Flavor>,
}

/// `POST /v2.1/flavors` body: `{"flavor": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateFlavor {
    /// The new flavor.
    pub flavor: NewFlavor,
}

/// The fields a client sets when creating a flavor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFlavor {
    /// Name (1–255 characters).
    pub name: String,
    /// RAM in MiB (≥ 1).
    pub ram: u64,
    /// vCPUs (≥ 1).
    pub vcpus: u32,
    /// Root disk in GiB.
    pub disk: u64,
    /// Id; absent, null or `auto` → a new UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Ephemeral disk in GiB.
    #[serde(
        rename = "OS-FLV-EXT-DATA:ephemeral",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ephemeral: Option<u64>,
    /// Swap in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<u64>,
    /// Bandwidth factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rxtx_factor: Option<f64>,
    /// Public.
    #[serde(
        rename = "os-flavor-access:is_public",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_public: Option<bool>,
    /// Description (2.55).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `{"extra_specs": {k: v}}` (GET answer, POST body). Values may be sent as numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraSpecs {
    /// Key → value.
    pub extra_specs: BTreeMap<String, String>,
}

/// A POST/PUT extra-specs body as sent: values may be strings or numbers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExtraSpecsInput {
    /// Key → value.
    pub extra_specs: BTreeMap<String, StringOrNumber>,
}
