//! The host's resources, as the agent reports them to the scheduler: read from the OS,
//! overridable in the config.

use std::path::Path;

use trustpool_api::compute::HostReport;

use crate::config::Config;

/// Total RAM in MiB from `/proc/meminfo` (`MemTotal`, in kB).
fn memory_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// Size of the filesystem holding `path`, in GiB.
fn disk_gb(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_blocks.saturating_mul(stat.f_frsize) >> 30)
}

/// The report for this host.
#[must_use]
pub fn host_report(config: &Config) -> HostReport {
    let r = &config.resources;
    let disk_path = r.disk_path.as_deref().unwrap_or(&config.state_dir);
    HostReport {
        host_name: config.host_name.clone(),
        memory_mb: r.memory_mb.or_else(memory_mb).unwrap_or(0),
        vcpus: r.vcpus.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        }),
        local_gb: r.local_gb.or_else(|| disk_gb(disk_path)).unwrap_or(0),
        availability_zone: r.availability_zone.clone(),
        agent_url: config.url.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_machine() {
        assert!(super::memory_mb().unwrap() > 0);
        assert!(super::disk_gb(std::path::Path::new("/")).is_some());
    }
}
