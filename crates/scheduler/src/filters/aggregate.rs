//! Extra specs matched against the host: ComputeCapabilitiesFilter (host attributes and
//! stats) and AggregateInstanceExtraSpecsFilter (aggregate metadata). Each reads only its
//! own scope, so `trust:trusted_host` never affects them (commit 851705db).

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

/// Walks `a:b:c`: attribute (else stats key) `a`, then JSON object keys `b`, `c`.
fn capability(host: &HostState, path: &[&str]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let value = attribute(host, first).or_else(|| host.stats.get(*first).cloned())?;
    if rest.is_empty() {
        return Some(value);
    }
    let mut json: serde_json::Value = serde_json::from_str(&value).ok()?;
    for key in rest {
        json = json.get(*key)?.clone();
        if let serde_json::Value::String(inner) = &json
            && let Ok(decoded) = serde_json::from_str::<serde_json::Value>(inner)
            && decoded.is_object()
        {
            json = decoded;
        }
    }
    Some(match json {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// `compute_capabilities_filter.py` (Newton+ treatment of unscoped keys: evaluated only
/// when they name a host attribute or stat, else ignored — bug #1582589).
pub(super) fn compute_capabilities(host: &HostState, spec: &RequestSpec) -> bool {
    for (key, requirement) in &spec.flavor.extra_specs {
        let parts: Vec<&str> = key.split(':').collect();
        let path: &[&str] = match parts.as_slice() {
            [single] => {
                if attribute(host, single).is_none() && !host.stats.contains_key(*single) {
                    continue;
                }
                &parts
            }
            [scope, rest @ ..] if *scope == CAPABILITIES => rest,
            _ => continue,
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
        let values: Vec<&str> = host
            .aggregates
            .iter()
            .filter_map(|a| a.metadata.get(key))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        if values.is_empty() || !values.iter().any(|v| matches(Some(v), requirement)) {
            tracing::debug!(host = %host.host, key, "AggregateInstanceExtraSpecsFilter: no match");
            return false;
        }
    }
    true
}
