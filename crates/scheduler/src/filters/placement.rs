//! Where a host may be used at all: RetryFilter, AvailabilityZoneFilter, ComputeFilter.

use super::FilterContext;
use crate::host_state::HostState;
use crate::request::RequestSpec;

/// `retry_filter.py`: a host an earlier attempt of this request tried fails.
pub(super) fn retry(host: &HostState, spec: &RequestSpec) -> bool {
    !spec.tried_hosts.iter().any(|h| **h == *host.host)
}

/// `availability_zone_filter.py`: no zone requested passes; else the zone must be one of
/// the host's (aggregate `availability_zone` metadata, or the default zone).
pub(super) fn availability_zone(
    host: &HostState,
    spec: &RequestSpec,
    ctx: &FilterContext<'_>,
) -> bool {
    match &spec.availability_zone {
        None => true,
        Some(zone) => host.in_zone(zone, ctx.default_zone),
    }
}

/// `compute_filter.py`: disabled fails (without looking at liveness); else the last
/// heartbeat must be within `service_down_time`.
pub(super) fn compute(host: &HostState, ctx: &FilterContext<'_>) -> bool {
    if host.disabled {
        tracing::debug!(
            host = %host.host,
            reason = host.disabled_reason.as_deref().unwrap_or(""),
            "ComputeFilter: host is disabled"
        );
        return false;
    }
    let up = ctx.now_ms.saturating_sub(host.last_seen_ms) <= ctx.service_down_time_ms;
    if !up {
        tracing::debug!(host = %host.host, "ComputeFilter: host has not been heard from recently");
    }
    up
}
