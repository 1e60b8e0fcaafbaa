//! What the scheduler knows about one compute host (Nova's `HostState`,
//! `../shared/reference/scheduler.md` §1.4): resources and their use, service status,
//! aggregates. Kept in memory, updated incrementally from heartbeats and claims; a request
//! works on cheap clones (names and aggregates are shared).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::trust::TrustSlot;

/// A host aggregate as the filters see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AggregateInfo {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Metadata (`availability_zone`, `ssd=true` …).
    pub metadata: BTreeMap<String, String>,
}

/// The limits the resource filters set for a host (Nova's `host_state.limits`); the claim
/// re-checks against them. None: that filter is not enabled (unlimited). Computed from the
/// host's totals and the ratios, so the filters themselves stay pure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// `total × ram_allocation_ratio`, MiB.
    pub memory_mb: Option<f64>,
    /// `total × disk_allocation_ratio`, MiB.
    pub disk_mb: Option<f64>,
    /// `total × cpu_allocation_ratio`.
    pub vcpu: Option<f64>,
}

/// What one instance of a flavor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// MiB.
    pub memory_mb: i64,
    /// MiB: `1024 × (root + ephemeral) + swap`.
    pub disk_mb: i64,
    /// vCPUs.
    pub vcpus: i64,
}

/// One compute host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    /// Service host (`host`).
    pub host: Arc<str>,
    /// `hypervisor_hostname`: the name trust is looked up by (Juno+).
    pub nodename: Arc<str>,
    /// Service id.
    pub id: u64,
    /// RAM MiB.
    pub total_usable_ram_mb: i64,
    /// Free RAM MiB (negative when overcommitted).
    pub free_ram_mb: i64,
    /// Disk GiB.
    pub total_usable_disk_gb: i64,
    /// Free disk MiB.
    pub free_disk_mb: i64,
    /// vCPUs.
    pub vcpus_total: i64,
    /// vCPUs used.
    pub vcpus_used: i64,
    /// Instances on it.
    pub num_instances: u32,
    /// Disabled by an operator.
    pub disabled: bool,
    /// Why.
    pub disabled_reason: Option<Arc<str>>,
    /// Last heartbeat, Unix ms.
    pub last_seen_ms: i64,
    /// The aggregates it is in.
    pub aggregates: Arc<[Arc<AggregateInfo>]>,
    /// Free-form capabilities (`hypervisor_type` …) for ComputeCapabilitiesFilter.
    pub stats: Arc<BTreeMap<String, String>>,
    /// Its level as the attestation server said it: the trust cache's slot for this
    /// host (a new host's is unknown until linked).
    pub trust: Arc<TrustSlot>,
}

impl HostState {
    /// A host with these totals and nothing used.
    #[must_use]
    pub fn new(name: &str, memory_mb: i64, disk_gb: i64, vcpus: i64) -> Self {
        let name: Arc<str> = Arc::from(name);
        Self {
            host: name.clone(),
            nodename: name,
            id: 0,
            total_usable_ram_mb: memory_mb,
            free_ram_mb: memory_mb,
            total_usable_disk_gb: disk_gb,
            free_disk_mb: disk_gb.saturating_mul(1024),
            vcpus_total: vcpus,
            vcpus_used: 0,
            num_instances: 0,
            disabled: false,
            disabled_reason: None,
            last_seen_ms: 0,
            aggregates: Arc::from(Vec::new()),
            stats: Arc::new(BTreeMap::new()),
            trust: Arc::default(),
        }
    }

    /// The identity of the host's aggregates and stats: hosts built from the same interned
    /// sets share it, and filters that read only those give them the same answer.
    #[must_use]
    pub fn class(&self) -> (usize, usize) {
        (
            Arc::as_ptr(&self.aggregates).cast::<()>() as usize,
            Arc::as_ptr(&self.stats).cast::<()>() as usize,
        )
    }

    /// Nova's `consume_from_request`: the instance now uses these resources.
    pub fn consume(&mut self, usage: Usage) {
        self.free_ram_mb = self.free_ram_mb.saturating_sub(usage.memory_mb);
        self.free_disk_mb = self.free_disk_mb.saturating_sub(usage.disk_mb);
        self.vcpus_used = self.vcpus_used.saturating_add(usage.vcpus);
        self.num_instances = self.num_instances.saturating_add(1);
    }

    /// The instance is gone.
    pub fn release(&mut self, usage: Usage) {
        self.free_ram_mb = self.free_ram_mb.saturating_add(usage.memory_mb);
        self.free_disk_mb = self.free_disk_mb.saturating_add(usage.disk_mb);
        self.vcpus_used = self.vcpus_used.saturating_sub(usage.vcpus);
        self.num_instances = self.num_instances.saturating_sub(1);
    }

    /// RAM MiB in use.
    #[must_use]
    pub fn used_ram_mb(&self) -> i64 {
        self.total_usable_ram_mb.saturating_sub(self.free_ram_mb)
    }

    /// Disk MiB in use.
    #[must_use]
    pub fn used_disk_mb(&self) -> i64 {
        self.total_usable_disk_gb
            .saturating_mul(1024)
            .saturating_sub(self.free_disk_mb)
    }

    /// The compute-side claim test (`nova/compute/claims.py`): does `usage` still fit
    /// under the limits the filters computed? A missing limit is unlimited.
    pub fn fits(&self, usage: Usage, limits: Limits) -> Result<(), String> {
        let check = |what: &str, used: i64, requested: i64, limit: Option<f64>| match limit {
            Some(limit) if (used.saturating_add(requested)) as f64 > limit => Err(format!(
                "Insufficient compute resources: Free {what} {:.2} < requested {requested}",
                limit - used as f64
            )),
            _ => Ok(()),
        };
        check(
            "memory",
            self.used_ram_mb(),
            usage.memory_mb,
            limits.memory_mb,
        )?;
        check("disk", self.used_disk_mb(), usage.disk_mb, limits.disk_mb)?;
        check("vcpu", self.vcpus_used, usage.vcpus, limits.vcpu)
    }

    /// The `availability_zone` metadata of its aggregates, comma-split and trimmed.
    fn aggregate_zones(&self) -> impl Iterator<Item = &str> {
        self.aggregates
            .iter()
            .filter_map(|a| a.metadata.get("availability_zone"))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|z| !z.is_empty())
    }

    /// The zone of a host in no zone aggregate: the one its agent reports, else the default.
    fn own_zone<'a>(&'a self, default_zone: &'a str) -> &'a str {
        self.stats
            .get("reported_zone")
            .filter(|z| !z.is_empty())
            .map_or(default_zone, String::as_str)
    }

    /// Whether the host is in `zone` (what [`Self::availability_zones`] lists, without
    /// allocating: the AvailabilityZoneFilter asks this of every host).
    #[must_use]
    pub fn in_zone(&self, zone: &str, default_zone: &str) -> bool {
        let mut zones = self.aggregate_zones().peekable();
        if zones.peek().is_none() {
            return self.own_zone(default_zone) == zone;
        }
        zones.any(|z| z == zone)
    }

    /// The host's availability zones: the `availability_zone` metadata of its aggregates
    /// (comma-split, trimmed), else the zone its agent reports, else `default_zone`.
    #[must_use]
    pub fn availability_zones(&self, default_zone: &str) -> Vec<String> {
        let mut zones: Vec<String> = self.aggregate_zones().map(str::to_owned).collect();
        zones.sort();
        zones.dedup();
        if zones.is_empty() {
            zones.push(self.own_zone(default_zone).to_owned());
        }
        zones
    }
}

impl AsRef<Self> for HostState {
    fn as_ref(&self) -> &Self {
        self
    }
}
