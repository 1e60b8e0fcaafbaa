//! Extra specs matched against the host: ComputeCapabilitiesFilter (host attributes and
//! stats) and AggregateInstanceExtraSpecsFilter (aggregate metadata). Each reads only its
//! own scope, so `trust:trusted_host` never affects them (commit 851705db).

use std::borrow::Cow;

use super::extra_specs_ops::matches;
use crate::host_state::HostState;
use crate::request::RequestSpec;

const CAPABILITIES: &str = "capabilities";
const AGGREGATE: &str = "aggregate_instance_extra_specs";

/// A host attribute by Nova's `HostState` name.
fn attribute(host: &HostState, name: &str) -> Option<String> {
    Some(match name {
        "host" => host.host.to_string(),
        "nodename" | "hypervisor_hostname" => host.nodename.to_string(),
        "free_ram_mb" => host.free_ram_mb.to_string(),
        "total_usable_ram_mb" => host.total_usable_ram_mb.to_string(),
        "free_disk_mb" => host.free_disk_mb.to_string(),
        "total_usable_disk_gb" => host.total_usable_disk_gb.to_string(),
        "vcpus_total" => host.vcpus_total.to_string(),
        "vcpus_used" => host.vcpus_used.to_string(),
        "num_instances" => host.num_instances.to_string(),
        _ => return None,
    })
}

fn is_attribute(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "nodename"
            | "hypervisor_hostname"
            | "free_ram_mb"
            | "total_usable_ram_mb"
            | "free_disk_mb"
            | "total_usable_disk_gb"
            | "vcpus_total"
            | "vcpus_used"
            | "num_instances"
    )
}

/// Walks `a:b:c`: attribute (else stats key) `a`, then JSON object keys `b`, `c`.
fn capability<'h>(host: &'h HostState, path: &str) -> Option<Cow<'h, str>> {
    let mut parts = path.split(':');
    let first = parts.next()?;
    let value: Cow<'h, str> = match host.stats.get(first) {
        Some(v) if !is_attribute(first) => Cow::Borrowed(v.as_str()),
        _ => Cow::Owned(attribute(host, first)?),
    };
    let mut rest = parts.peekable();
    if rest.peek().is_none() {
        return Some(value);
    }
    let mut json: serde_json::Value = serde_json::from_str(&value).ok()?;
    for key in rest {
        json = json.get(key)?.clone();
        if let serde_json::Value::String(inner) = &json
            && let Ok(decoded) = serde_json::from_str::<serde_json::Value>(inner)
            && decoded.is_object()
        {
            json = decoded;
        }
    }
    Some(Cow::Owned(match json {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }))
}

/// Whether any key of `spec` that ComputeCapabilitiesFilter evaluates names a host
/// attribute (whose value differs per host) rather than a stat.
pub(super) fn reads_attributes(spec: &RequestSpec) -> bool {
    spec.flavor
        .extra_specs
        .keys()
        .any(|key| match key.split_once(':') {
            None => is_attribute(key),
            Some((CAPABILITIES, rest)) => is_attribute(rest.split(':').next().unwrap_or(rest)),
            Some(_) => false,
        })
}

/// `compute_capabilities_filter.py` (Newton+ treatment of unscoped keys: evaluated only
/// when they name a host attribute or stat, else ignored — bug #1582589).
pub(super) fn compute_capabilities(host: &HostState, spec: &RequestSpec) -> bool {
    for (key, requirement) in &spec.flavor.extra_specs {
        let path = match key.split_once(':') {
            None => {
                if !is_attribute(key) && !host.stats.contains_key(key.as_str()) {
                    continue;
                }
                key.as_str()
            }
            Some((CAPABILITIES, rest)) => rest,
            Some(_) => continue,
        };
        if !matches(capability(host, path).as_deref(), requirement) {
            tracing::debug!(host = %host.host, key, "ComputeCapabilitiesFilter: no match");
            return false;
        }
    }
    true
}

/// `aggregate_instance_extra_specs.py`: unscoped or `aggregate_instance_extra_specs:`
/// keys must be present in one of the host's aggregates with a matching value.
pub(super) fn instance_extra_specs(host: &HostState, spec: &RequestSpec) -> bool {
    for (key, requirement) in &spec.flavor.extra_specs {
        let key = match key.split_once(':') {
            Some((scope, rest)) if scope == AGGREGATE => rest,
            Some(_) => continue,
            None => key.as_str(),
        };
        let mut values = host
            .aggregates
            .iter()
            .filter_map(|a| a.metadata.get(key))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .peekable();
        if values.peek().is_none() || !values.any(|v| matches(Some(v), requirement)) {
            tracing::debug!(host = %host.host, key, "AggregateInstanceExtraSpecsFilter: no match");
            return false;
        }
    }
    true
}
