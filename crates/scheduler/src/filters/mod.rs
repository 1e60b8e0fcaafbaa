//! Nova's host filters, with Nova's names and semantics (`../shared/reference/scheduler.md`
//! §1.5–1.6). Each filter is a pure function of a host, the request and a context; the
//! pipeline runs them in the configured order and stops at the first empty result.

mod aggregate;
pub mod extra_specs_ops;
mod placement;
mod resources;
mod trusted;

use core::fmt;

use crate::fast_hash::FxHashMap;
use crate::host_state::{HostState, Limits};
use crate::request::RequestSpec;

pub use trusted::TRUSTED_TRAIT;
pub(crate) use trusted::{Requirement, requirement as trusted_requirement};

/// The allocation ratios (`ram_allocation_ratio` 1.5, `cpu_allocation_ratio` 16.0,
/// `disk_allocation_ratio` 1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    /// RAM.
    pub ram: f64,
    /// vCPU.
    pub cpu: f64,
    /// Disk.
    pub disk: f64,
}

impl Default for Ratios {
    fn default() -> Self {
        Self {
            ram: 1.5,
            cpu: 16.0,
            disk: 1.0,
        }
    }
}

/// What filters read besides the host and the request.
pub struct FilterContext<'a> {
    /// Allocation ratios.
    pub ratios: Ratios,
    /// Now, Unix ms.
    pub now_ms: i64,
    /// `service_down_time`, ms.
    pub service_down_time_ms: i64,
    /// `default_availability_zone`.
    pub default_zone: &'a str,
    /// How long a trust level is valid after its `vtime`
    /// (`attestation_auth_timeout`), ms.
    pub trust_timeout_ms: i64,
}

/// A filter Nova had (and trustpool implements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Hosts already tried by this request fail.
    Retry,
    /// The requested zone.
    AvailabilityZone,
    /// RAM with `ram_allocation_ratio`.
    Ram,
    /// vCPUs with `cpu_allocation_ratio`.
    Core,
    /// Disk (root + ephemeral + swap) with `disk_allocation_ratio`.
    Disk,
    /// Enabled and up.
    Compute,
    /// `capabilities:` extra specs against host attributes.
    ComputeCapabilities,
    /// Extra specs against aggregate metadata.
    AggregateInstanceExtraSpecs,
    /// `trust:trusted_host` against the attestation server's verdict.
    Trusted,
}

/// Every filter, in a sensible default order.
pub const ALL_FILTERS: [Filter; 9] = [
    Filter::Retry,
    Filter::AvailabilityZone,
    Filter::Compute,
    Filter::Ram,
    Filter::Core,
    Filter::Disk,
    Filter::ComputeCapabilities,
    Filter::AggregateInstanceExtraSpecs,
    Filter::Trusted,
];

/// Nova filters trustpool does not implement: named in the error so an operator knows it
/// is a real Nova filter, not a typo.
const NOVA_ONLY: [&str; 12] = [
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
    "NUMATopologyFilter",
    "PciPassthroughFilter",
    "SameHostFilter",
    "DifferentHostFilter",
    "IsolatedHostsFilter",
    "JsonFilter",
    "AggregateRamFilter",
    "AggregateCoreFilter",
    "IoOpsFilter",
];

impl Filter {
    /// Nova's class name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Retry => "RetryFilter",
            Self::AvailabilityZone => "AvailabilityZoneFilter",
            Self::Ram => "RamFilter",
            Self::Core => "CoreFilter",
            Self::Disk => "DiskFilter",
            Self::Compute => "ComputeFilter",
            Self::ComputeCapabilities => "ComputeCapabilitiesFilter",
            Self::AggregateInstanceExtraSpecs => "AggregateInstanceExtraSpecsFilter",
            Self::Trusted => "TrustedFilter",
        }
    }

    /// Nova's module path (for `available_filters` entries).
    #[must_use]
    pub fn module(self) -> &'static str {
        match self {
            Self::Retry => "retry_filter",
            Self::AvailabilityZone => "availability_zone_filter",
            Self::Ram => "ram_filter",
            Self::Core => "core_filter",
            Self::Disk => "disk_filter",
            Self::Compute => "compute_filter",
            Self::ComputeCapabilities => "compute_capabilities_filter",
            Self::AggregateInstanceExtraSpecs => "aggregate_instance_extra_specs",
            Self::Trusted => "trusted_filter",
        }
    }

    /// A class name or a full `nova.scheduler.filters.<module>.<Class>` path.
    ///
    /// # Errors
    /// A message naming the unknown filter.
    pub fn parse(text: &str) -> Result<Self, String> {
        let class = text.rsplit('.').next().unwrap_or(text).trim();
        if let Some(f) = ALL_FILTERS.iter().find(|f| f.name() == class) {
            if text.contains('.')
                && text != format!("nova.scheduler.filters.{}.{}", f.module(), f.name())
            {
                return Err(format!("no filter at {text}"));
            }
            return Ok(*f);
        }
        if NOVA_ONLY.contains(&class) {
            return Err(format!(
                "{class} is a Nova filter that trustpool does not implement"
            ));
        }
        Err(format!("unknown filter {class:?}"))
    }

    /// Nova's `run_filter_once_per_request`: these do not depend on what earlier
    /// instances of the same request consumed.
    #[must_use]
    pub fn once_per_request(self) -> bool {
        matches!(
            self,
            Self::AvailabilityZone
                | Self::Compute
                | Self::ComputeCapabilities
                | Self::AggregateInstanceExtraSpecs
                | Self::Trusted
        )
    }

    /// Whether this filter's answer for `spec` depends only on a host's aggregates and
    /// stats (its class), not on its name, resources or liveness.
    #[must_use]
    pub fn depends_only_on_class(self, spec: &RequestSpec) -> bool {
        match self {
            Self::AvailabilityZone | Self::AggregateInstanceExtraSpecs => true,
            Self::ComputeCapabilities => !aggregate::reads_attributes(spec),
            _ => false,
        }
    }

    /// Does `host` pass for `spec`?
    #[must_use]
    pub fn host_passes(
        self,
        host: &HostState,
        spec: &RequestSpec,
        ctx: &FilterContext<'_>,
    ) -> bool {
        match self {
            Self::Retry => placement::retry(host, spec),
            Self::AvailabilityZone => placement::availability_zone(host, spec, ctx),
            Self::Ram => resources::ram(host, spec, ctx.ratios.ram),
            Self::Core => resources::core(host, spec, ctx.ratios.cpu),
            Self::Disk => resources::disk(host, spec, ctx.ratios.disk),
            Self::Compute => placement::compute(host, ctx),
            Self::ComputeCapabilities => aggregate::compute_capabilities(host, spec),
            Self::AggregateInstanceExtraSpecs => aggregate::instance_extra_specs(host, spec),
            Self::Trusted => trusted::host_passes(host, spec, ctx.now_ms, ctx.trust_timeout_ms),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The limits a claim is checked against, for the resource filters that are enabled.
#[must_use]
pub fn limits(filters: &[Filter], host: &HostState, ratios: Ratios) -> Limits {
    Limits {
        memory_mb: filters
            .contains(&Filter::Ram)
            .then_some(host.total_usable_ram_mb as f64 * ratios.ram),
        disk_mb: filters
            .contains(&Filter::Disk)
            .then_some((host.total_usable_disk_gb as f64) * 1024.0 * ratios.disk),
        vcpu: (filters.contains(&Filter::Core) && host.vcpus_total > 0)
            .then_some(host.vcpus_total as f64 * ratios.cpu),
    }
}

/// How many hosts one filter kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterCount {
    /// The filter.
    pub filter: Filter,
    /// Hosts in.
    pub start: usize,
    /// Hosts out.
    pub end: usize,
}

/// Nova's INFO line: `['RetryFilter: (start: 3, end: 3)', 'RamFilter: (start: 3, end: 0)']`.
#[must_use]
pub fn format_counts(counts: &[FilterCount]) -> String {
    let items: Vec<String> = counts
        .iter()
        .map(|c| format!("'{}: (start: {}, end: {})'", c.filter, c.start, c.end))
        .collect();
    format!("[{}]", items.join(", "))
}

/// Runs `filters` over `hosts` for instance `index` of the request, in order, stopping at
/// the first empty result (Nova's `get_filtered_objects`). Filters that run once per
/// request are skipped for `index > 0` (their effect carries forward: `hosts` is the list
/// the previous instance left).
pub fn run<H: AsRef<HostState>>(
    filters: &[Filter],
    hosts: &mut Vec<H>,
    spec: &RequestSpec,
    index: u32,
    ctx: &FilterContext<'_>,
) -> Vec<FilterCount> {
    let mut counts = Vec::with_capacity(filters.len());
    for &filter in filters {
        if index > 0 && filter.once_per_request() {
            continue;
        }
        let start = hosts.len();
        if filter.depends_only_on_class(spec) {
            // Hosts sharing their aggregates and stats (interned by the state) get the
            // same answer: ask once per class, not once per host.
            let mut memo: FxHashMap<(usize, usize), bool> = FxHashMap::default();
            hosts.retain(|h| {
                let h = h.as_ref();
                *memo
                    .entry(h.class())
                    .or_insert_with(|| filter.host_passes(h, spec, ctx))
            });
        } else {
            hosts.retain(|h| filter.host_passes(h.as_ref(), spec, ctx));
        }
        counts.push(FilterCount {
            filter,
            start,
            end: hosts.len(),
        });
        if hosts.is_empty() {
            tracing::info!(
                "Filtering removed all hosts for the request with instance ID '{}'. Filter results: {}",
                spec.instance_uuid,
                format_counts(&counts)
            );
            break;
        }
    }
    counts
}

#[cfg(test)]
mod tests;
