//! A scheduling request (Nova's `RequestSpec`): the flavor, the zone, forced host, hosts
//! already tried.

use std::collections::BTreeMap;

use crate::host_state::Usage;

/// The flavor as the filters read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlavorSpec {
    /// RAM MiB.
    pub memory_mb: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Root disk GiB.
    pub root_gb: u64,
    /// Ephemeral GiB.
    pub ephemeral_gb: u64,
    /// Swap MiB.
    pub swap_mb: u64,
    /// Extra specs.
    pub extra_specs: BTreeMap<String, String>,
}

impl FlavorSpec {
    /// What one instance uses (DiskFilter counts swap: Icehouse e842fff3).
    #[must_use]
    pub fn usage(&self) -> Usage {
        let gb = self.root_gb.saturating_add(self.ephemeral_gb);
        Usage {
            memory_mb: i64::try_from(self.memory_mb).unwrap_or(i64::MAX),
            disk_mb: i64::try_from(gb.saturating_mul(1024).saturating_add(self.swap_mb))
                .unwrap_or(i64::MAX),
            vcpus: i64::from(self.vcpus),
        }
    }
}

/// One request for `num_instances` instances of a flavor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestSpec {
    /// The first instance's id (for the log lines).
    pub instance_uuid: String,
    /// The flavor.
    pub flavor: FlavorSpec,
    /// Requested zone.
    pub availability_zone: Option<String>,
    /// `zone:host` (administrators): only this host is considered — and, unlike Nova, it
    /// still goes through every filter, TrustedFilter included.
    pub force_host: Option<String>,
    /// `zone:host:node`.
    pub force_node: Option<String>,
    /// Hosts tried by earlier attempts (RetryFilter).
    pub tried_hosts: Vec<String>,
    /// How many instances.
    pub num_instances: u32,
}

/// Splits `az[:host[:node]]` as Nova's `parse_availability_zone` does. Empty parts are
/// absent (`:host` = any zone on that host).
#[must_use]
pub fn parse_availability_zone(text: &str) -> (Option<String>, Option<String>, Option<String>) {
    let part = |s: Option<&str>| s.filter(|p| !p.is_empty()).map(str::to_owned);
    let mut parts = text.splitn(3, ':');
    (part(parts.next()), part(parts.next()), part(parts.next()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_host_node() {
        assert_eq!(
            parse_availability_zone("nova"),
            (Some("nova".into()), None, None)
        );
        assert_eq!(
            parse_availability_zone("nova:compute-1"),
            (Some("nova".into()), Some("compute-1".into()), None)
        );
        assert_eq!(
            parse_availability_zone(":compute-1"),
            (None, Some("compute-1".into()), None)
        );
        assert_eq!(
            parse_availability_zone("az:h:n"),
            (Some("az".into()), Some("h".into()), Some("n".into()))
        );
    }

    #[test]
    fn disk_usage_counts_swap() {
        let f = FlavorSpec {
            memory_mb: 512,
            vcpus: 1,
            root_gb: 1,
            ephemeral_gb: 1,
            swap_mb: 512,
            ..FlavorSpec::default()
        };
        assert_eq!(
            f.usage(),
            Usage {
                memory_mb: 512,
                disk_mb: 2048 + 512,
                vcpus: 1
            }
        );
    }
}
