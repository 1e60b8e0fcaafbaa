//! RamFilter, CoreFilter, DiskFilter: capacity × allocation ratio, never overcommitting
//! a host against itself (Liberty 95940ccb, Newton 3cafa7f5).

use crate::host_state::HostState;
use crate::request::RequestSpec;

/// `nova/scheduler/filters/ram_filter.py`.
pub(super) fn ram(host: &HostState, spec: &RequestSpec, ratio: f64) -> bool {
    let requested = spec.flavor.usage().memory_mb;
    let total = host.total_usable_ram_mb;
    if total < requested {
        return false;
    }
    let limit = total as f64 * ratio;
    let usable = limit - host.used_ram_mb() as f64;
    usable >= requested as f64
}

/// `nova/scheduler/filters/core_filter.py`.
pub(super) fn core(host: &HostState, spec: &RequestSpec, ratio: f64) -> bool {
    if host.vcpus_total == 0 {
        // "Fail safe": vCPU collection is assumed broken.
        return true;
    }
    let requested = i64::from(spec.flavor.vcpus);
    if requested > host.vcpus_total {
        return false;
    }
    let limit = host.vcpus_total as f64 * ratio;
    limit - host.vcpus_used as f64 >= requested as f64
}

/// `nova/scheduler/filters/disk_filter.py`: root + ephemeral + swap, in MiB.
pub(super) fn disk(host: &HostState, spec: &RequestSpec, ratio: f64) -> bool {
    let requested = spec.flavor.usage().disk_mb;
    let total_mb = host.total_usable_disk_gb.saturating_mul(1024);
    if total_mb < requested {
        return false;
    }
    let limit = total_mb as f64 * ratio;
    limit - host.used_disk_mb() as f64 >= requested as f64
}
