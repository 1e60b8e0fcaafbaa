//! Nova's FilterScheduler `_schedule` (`../shared/reference/scheduler.md` §1.2): for each
//! instance, filter → weigh → random choice among the best `host_subset_size` → consume
//! the instance in this request's view of the host, so the next instance sees it.

use std::sync::Arc;

use crate::filters::{self, Filter, FilterContext, FilterCount, Ratios};
use crate::host_state::{HostState, Limits};
use crate::request::RequestSpec;
use crate::weights::Weighing;

/// A host as one request sees it: the shared state, or its own copy once an earlier
/// instance of the request consumed from it. Two words, so filtering moves little.
#[derive(Debug)]
enum Candidate<'a> {
    Shared(&'a HostState),
    Consumed(Box<HostState>),
}

impl AsRef<HostState> for Candidate<'_> {
    fn as_ref(&self) -> &HostState {
        match self {
            Self::Shared(h) => h,
            Self::Consumed(h) => h,
        }
    }
}

impl Candidate<'_> {
    fn consume(&mut self, usage: crate::host_state::Usage) {
        if let Self::Shared(h) = self {
            *self = Self::Consumed(Box::new((*h).clone()));
        }
        if let Self::Consumed(h) = self {
            h.consume(usage);
        }
    }
}

/// Where one instance goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Service host.
    pub host: Arc<str>,
    /// Hypervisor host name.
    pub nodename: Arc<str>,
    /// What the claim checks against.
    pub limits: Limits,
}

/// Nova's `NoValidHost`, with the per-filter counts of the attempt that ran dry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No valid host was found. {reason}")]
pub struct NoValidHost {
    /// `There are not enough hosts available.` …
    pub reason: String,
    /// Filter results of the instance that found no host.
    pub counts: Vec<FilterCount>,
}

/// The configured scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterScheduler {
    /// Filters, in order.
    pub filters: Vec<Filter>,
    /// Weighers.
    pub weighing: Weighing,
    /// `host_subset_size` (clamped to 1..=hosts).
    pub host_subset_size: usize,
    /// Allocation ratios (for the claim limits).
    pub ratios: Ratios,
}

impl FilterScheduler {
    /// Picks a host for each of `spec.num_instances` instances from `hosts`, or fails
    /// with the counts of the filters that ran out. `pick(n)` returns an index below `n`
    /// (random in production).
    ///
    /// # Errors
    /// [`NoValidHost`] when fewer hosts than instances pass.
    pub fn select<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a HostState>,
        spec: &RequestSpec,
        ctx: &FilterContext<'_>,
        pick: &mut dyn FnMut(usize) -> usize,
    ) -> Result<Vec<Selection>, NoValidHost> {
        let forced = |h: &HostState| {
            spec.force_host
                .as_deref()
                .is_none_or(|f| h.host.eq_ignore_ascii_case(f))
                && spec
                    .force_node
                    .as_deref()
                    .is_none_or(|f| h.nodename.eq_ignore_ascii_case(f))
        };
        let mut candidates: Vec<Candidate<'a>> = hosts
            .into_iter()
            .filter(|h| forced(h))
            .map(Candidate::Shared)
            .collect();
        if candidates.is_empty() && (spec.force_host.is_some() || spec.force_node.is_some()) {
            return Err(NoValidHost {
                reason: format!(
                    "No such host - host: {} node: {}",
                    spec.force_host.as_deref().unwrap_or("None"),
                    spec.force_node.as_deref().unwrap_or("None")
                ),
                counts: Vec::new(),
            });
        }
        let usage = spec.flavor.usage();
        let wanted = spec.num_instances.max(1);
        let mut selected = Vec::with_capacity(usize::try_from(wanted).unwrap_or(1));
        for index in 0..wanted {
            let counts = filters::run(&self.filters, &mut candidates, spec, index, ctx);
            if candidates.is_empty() {
                return Err(NoValidHost {
                    reason: "There are not enough hosts available.".to_owned(),
                    counts,
                });
            }
            let chosen = self.choose(&candidates, pick);
            let Some(host) = candidates.get_mut(chosen) else {
                break;
            };
            let state = host.as_ref();
            selected.push(Selection {
                host: state.host.clone(),
                nodename: state.nodename.clone(),
                limits: filters::limits(&self.filters, state, self.ratios),
            });
            host.consume(usage);
        }
        Ok(selected)
    }

    /// The index of the chosen host: random among the best `host_subset_size`.
    fn choose(&self, hosts: &[Candidate<'_>], pick: &mut dyn FnMut(usize) -> usize) -> usize {
        let weights = self.weighing.weigh(hosts);
        let mut order: Vec<usize> = (0..hosts.len()).collect();
        let subset = self.host_subset_size.clamp(1, hosts.len());
        let by_weight = |a: &usize, b: &usize| {
            let wa = weights.get(*a).copied().unwrap_or(0.0);
            let wb = weights.get(*b).copied().unwrap_or(0.0);
            wb.total_cmp(&wa)
        };
        if subset < order.len() {
            order.select_nth_unstable_by(subset - 1, by_weight);
        }
        order.truncate(subset);
        order.sort_unstable_by(by_weight);
        let i = pick(order.len()).min(order.len().saturating_sub(1));
        order.get(i).copied().unwrap_or(0)
    }
}

/// A uniformly random index below `n` (0 for n ≤ 1).
#[must_use]
pub fn random_index(n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let r = u64::from_le_bytes(bytes);
    usize::try_from(r % u64::try_from(n).unwrap_or(u64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use trustpool_api::oat::TrustLevel;

    use super::*;
    use crate::request::FlavorSpec;
    use crate::weights::Weigher;

    fn scheduler(subset: usize) -> FilterScheduler {
        FilterScheduler {
            filters: vec![
                Filter::Retry,
                Filter::AvailabilityZone,
                Filter::Compute,
                Filter::Ram,
                Filter::Core,
                Filter::Disk,
                Filter::Trusted,
            ],
            weighing: Weighing {
                weighers: vec![(Weigher::Ram, 1.0)],
            },
            host_subset_size: subset,
            ratios: Ratios {
                ram: 1.0,
                cpu: 1.0,
                disk: 1.0,
            },
        }
    }

    fn hosts(free: &[i64]) -> Vec<HostState> {
        free.iter()
            .enumerate()
            .map(|(i, &f)| {
                let mut h = HostState::new(&format!("host{}", i + 1), f, 100, 8);
                h.last_seen_ms = 1000;
                h
            })
            .collect()
    }

    fn spec(n: u32, ram: u64) -> RequestSpec {
        RequestSpec {
            instance_uuid: "uuid".into(),
            flavor: FlavorSpec {
                memory_mb: ram,
                vcpus: 1,
                root_gb: 1,
                ..FlavorSpec::default()
            },
            num_instances: n,
            ..RequestSpec::default()
        }
    }

    fn ctx() -> FilterContext<'static> {
        FilterContext {
            ratios: Ratios::default(),
            now_ms: 1000,
            service_down_time_ms: 60_000,
            default_zone: "nova",
            trust_timeout_ms: 60_000,
        }
    }

    fn select(
        s: &FilterScheduler,
        h: &[HostState],
        r: &RequestSpec,
        pick: &mut dyn FnMut(usize) -> usize,
    ) -> Result<Vec<String>, NoValidHost> {
        let ctx = FilterContext {
            ratios: s.ratios,
            ..ctx()
        };
        Ok(s.select(h, r, &ctx, pick)?
            .into_iter()
            .map(|sel| sel.host.to_string())
            .collect())
    }

    /// `test_filter_scheduler.py`: subset 1 returns the best weight; 2 and 20 (larger
    /// than the pool) still return one host each.
    #[test]
    fn subset_size() {
        let h = hosts(&[512, 1024, 3072, 8192]);
        assert_eq!(
            select(&scheduler(1), &h, &spec(1, 256), &mut random_index).unwrap(),
            vec!["host4"]
        );
        for subset in [2, 20] {
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..8 {
                let mut pick = |n: usize| i % n;
                let got = select(&scheduler(subset), &h, &spec(1, 256), &mut pick).unwrap();
                assert_eq!(got.len(), 1);
                seen.insert(got[0].clone());
            }
            assert_eq!(seen.len(), subset.min(4), "random among the top {subset}");
        }
    }

    /// Happy day with several instances: each consumes in this request's view, so a
    /// host that fits one instance is not chosen twice.
    #[test]
    fn instances_consume_across_a_request() {
        let h = hosts(&[1024, 1024, 1024, 1024]);
        let mut got = select(&scheduler(1), &h, &spec(4, 1024), &mut random_index).unwrap();
        got.sort();
        assert_eq!(got, vec!["host1", "host2", "host3", "host4"]);
        let err = select(&scheduler(1), &h, &spec(5, 1024), &mut random_index).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No valid host was found. There are not enough hosts available."
        );
        assert_eq!(
            err.counts.last().map(|c| (c.filter, c.end)),
            Some((Filter::Ram, 0))
        );
        // Spreading: 10 small instances over 2 big hosts alternate as RAM frees up.
        let h = hosts(&[4096, 4096]);
        let got = select(&scheduler(1), &h, &spec(4, 512), &mut random_index).unwrap();
        assert_eq!(got.iter().filter(|g| *g == "host1").count(), 2);
    }

    #[test]
    fn trusted_flavor_lands_only_on_trusted_hosts_and_forcing_does_not_bypass() {
        let h = hosts(&[8192, 4096, 2048]);
        h[0].trust.set(TrustLevel::Untrusted, 900);
        h[1].trust.set(TrustLevel::Trusted, 900);
        let mut trusted = spec(1, 256);
        trusted
            .flavor
            .extra_specs
            .insert("trust:trusted_host".into(), "trusted".into());
        for _ in 0..5 {
            assert_eq!(
                select(&scheduler(3), &h, &trusted, &mut random_index).unwrap(),
                vec!["host2"]
            );
        }
        trusted.force_host = Some("HOST1".into());
        let err = select(&scheduler(1), &h, &trusted, &mut random_index).unwrap_err();
        assert_eq!(err.counts.last().map(|c| c.filter), Some(Filter::Trusted));
        trusted.force_host = Some("host9".into());
        let err = select(&scheduler(1), &h, &trusted, &mut random_index).unwrap_err();
        assert!(err.reason.contains("No such host - host: host9"), "{err}");
        trusted.force_host = Some("host2".into());
        assert_eq!(
            select(&scheduler(1), &h, &trusted, &mut random_index).unwrap(),
            vec!["host2"]
        );
    }

    #[test]
    fn claims_carry_the_limits_of_the_enabled_filters() {
        let h = hosts(&[1024]);
        let ctx = ctx();
        let s = scheduler(1);
        let sel = s
            .select(&h, &spec(1, 512), &ctx, &mut random_index)
            .unwrap();
        assert_eq!(sel[0].limits.memory_mb, Some(1024.0));
        assert_eq!(sel[0].limits.vcpu, Some(8.0));
        assert_eq!(sel[0].limits.disk_mb, Some(100.0 * 1024.0));
        let mut used = h[0].clone();
        used.consume(spec(1, 512).flavor.usage());
        assert!(
            used.fits(spec(1, 512).flavor.usage(), sel[0].limits)
                .is_ok()
        );
        used.consume(spec(1, 512).flavor.usage());
        let err = used
            .fits(spec(1, 512).flavor.usage(), sel[0].limits)
            .unwrap_err();
        assert!(
            err.starts_with("Insufficient compute resources: Free memory"),
            "{err}"
        );
    }
}
