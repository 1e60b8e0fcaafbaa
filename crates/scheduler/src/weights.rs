//! Weighers (`nova/weights.py`, `nova/scheduler/weights/`): each weigher's raw weights are
//! normalised to [0, 1] over the hosts of *this* request (Nova kept min/max across
//! requests until bug #1870096), multiplied and summed; higher is better.

use core::fmt;

use crate::host_state::HostState;

/// A weigher Nova had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weigher {
    /// Free RAM (`ram_weight_multiplier`: positive spreads, negative stacks).
    Ram,
    /// Free disk (`disk_weight_multiplier`).
    Disk,
}

impl Weigher {
    /// Nova's class name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ram => "RAMWeigher",
            Self::Disk => "DiskWeigher",
        }
    }

    /// `nova.scheduler.weights.all_weighers`, a class name, or a full path.
    ///
    /// # Errors
    /// A message naming the unknown weigher.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "nova.scheduler.weights.all_weighers" => out.extend([Self::Ram, Self::Disk]),
                "RAMWeigher" | "nova.scheduler.weights.ram.RAMWeigher" => out.push(Self::Ram),
                "DiskWeigher" | "nova.scheduler.weights.disk.DiskWeigher" => {
                    out.push(Self::Disk);
                }
                other => return Err(format!("unknown weigher {other:?}")),
            }
        }
        out.dedup();
        Ok(out)
    }

    fn raw(self, host: &HostState) -> f64 {
        match self {
            Self::Ram => host.free_ram_mb as f64,
            Self::Disk => host.free_disk_mb as f64,
        }
    }
}

impl fmt::Display for Weigher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The configured weighers with their multipliers.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighing {
    /// Weigher and multiplier.
    pub weighers: Vec<(Weigher, f64)>,
}

impl Weighing {
    /// Total weight of each host, in input order.
    #[must_use]
    pub fn weigh<H: AsRef<HostState>>(&self, hosts: &[H]) -> Vec<f64> {
        let mut total = vec![0.0; hosts.len()];
        if hosts.len() < 2 {
            return total;
        }
        for &(weigher, multiplier) in &self.weighers {
            if multiplier == 0.0 {
                continue;
            }
            let raw: Vec<f64> = hosts.iter().map(|h| weigher.raw(h.as_ref())).collect();
            let min = raw.iter().copied().fold(f64::INFINITY, f64::min);
            let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let range = max - min;
            if range <= 0.0 {
                continue;
            }
            for (t, r) in total.iter_mut().zip(&raw) {
                *t += multiplier * (r - min) / range;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(free: &[i64]) -> Vec<HostState> {
        free.iter()
            .enumerate()
            .map(|(i, &f)| {
                let mut h = HostState::new(&format!("host{}", i + 1), 8192, 100, 8);
                h.free_ram_mb = f;
                h
            })
            .collect()
    }

    /// Nova's `weights/test_weights_ram.py`.
    #[test]
    fn ram_weigher_like_nova() {
        let h = hosts(&[512, 1024, 3072, 8192]);
        let ram = |m: f64| Weighing {
            weighers: vec![(Weigher::Ram, m)],
        };
        let w = ram(1.0).weigh(&h);
        assert_eq!(w[3], 1.0);
        assert!(w[0] < w[1] && w[1] < w[2] && w[2] < w[3]);
        assert!(ram(0.0).weigh(&h).iter().all(|&x| x == 0.0));
        assert_eq!(ram(2.0).weigh(&h)[3], 2.0);
        // Stacking: the fullest host wins.
        let stack = ram(-1.0).weigh(&h);
        assert_eq!(stack[0], 0.0);
        assert_eq!(stack[3], -1.0);
        // Negative free RAM (overcommitted) still ranks last.
        let h = hosts(&[512, 1024, 3072, 8192, -512]);
        let w = ram(1.0).weigh(&h);
        assert_eq!(w[4], 0.0);
        assert!(w[..4].iter().all(|&x| x > 0.0));
    }

    #[test]
    fn parses_nova_weigher_names() {
        assert_eq!(
            Weigher::parse_list("nova.scheduler.weights.all_weighers").unwrap(),
            vec![Weigher::Ram, Weigher::Disk]
        );
        assert_eq!(
            Weigher::parse_list("nova.scheduler.weights.ram.RAMWeigher").unwrap(),
            vec![Weigher::Ram]
        );
        assert!(
            Weigher::parse_list("MetricsWeigher")
                .unwrap_err()
                .contains("MetricsWeigher")
        );
    }
}
