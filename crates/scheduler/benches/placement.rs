//! Placements per second (results in BENCHMARKS.md): one instance of a trusted flavor
//! through all nine filters (TrustedFilter's cache fresh) and both weighers, over 1,000
//! and 10,000 hosts, then the claim — the work `POST /servers` does per instance, without
//! the HTTP and database round trips.
//!
//! `cargo bench -p trustpool-scheduler --bench placement`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use trustpool_scheduler::filters::{ALL_FILTERS, FilterContext, Ratios};
use trustpool_scheduler::host_state::{AggregateInfo, HostState};
use trustpool_scheduler::request::{FlavorSpec, RequestSpec};
use trustpool_scheduler::select::{FilterScheduler, random_index};
use trustpool_scheduler::trust::TrustCache;
use trustpool_scheduler::weights::{Weigher, Weighing};

const NOW: i64 = 1_800_000_000_000;

fn pool(n: usize) -> (Vec<HostState>, TrustCache) {
    let zones: Vec<Arc<AggregateInfo>> = (0..4)
        .map(|i| {
            Arc::new(AggregateInfo {
                id: i,
                name: format!("rack{i}"),
                metadata: BTreeMap::from([
                    ("availability_zone".to_owned(), format!("az{}", i % 2)),
                    ("pool".to_owned(), "general".to_owned()),
                ]),
            })
        })
        .collect();
    // One shared set per rack, as the scheduler's state interns them.
    let sets: Vec<Arc<[Arc<AggregateInfo>]>> =
        zones.iter().map(|z| Arc::from(vec![z.clone()])).collect();
    let stats = Arc::new(BTreeMap::from([(
        "hypervisor_type".to_owned(),
        "QEMU".to_owned(),
    )]));
    let cache = TrustCache::new(60_000);
    let hosts: Vec<HostState> = (0..n)
        .map(|i| {
            let mut h = HostState::new(&format!("compute-{i:05}"), 262_144, 2_000, 64);
            h.free_ram_mb -= i64::try_from(i % 97).unwrap() * 1024;
            h.vcpus_used = i64::try_from(i % 50).unwrap();
            h.last_seen_ms = NOW;
            h.aggregates = sets[i % 4].clone();
            h.stats = stats.clone();
            h.trust = cache.slot(&h.nodename);
            h
        })
        .collect();
    let entries: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let level = if i % 10 == 0 { "untrusted" } else { "trusted" };
            json!({"host_name": &*h.nodename, "trust_lvl": level, "vtime": "2027-01-15T08:00:00Z"})
        })
        .collect();
    cache
        .apply_poll(json!({ "hosts": entries }).to_string().as_bytes(), NOW)
        .unwrap();
    (hosts, cache)
}

fn placement(c: &mut Criterion) {
    let scheduler = FilterScheduler {
        filters: ALL_FILTERS.to_vec(),
        weighing: Weighing {
            weighers: vec![(Weigher::Ram, 1.0), (Weigher::Disk, 1.0)],
        },
        host_subset_size: 1,
        ratios: Ratios::default(),
    };
    let spec = RequestSpec {
        instance_uuid: "bench".to_owned(),
        flavor: FlavorSpec {
            memory_mb: 2048,
            vcpus: 2,
            root_gb: 20,
            ephemeral_gb: 0,
            swap_mb: 0,
            extra_specs: BTreeMap::from([
                ("trust:trusted_host".to_owned(), "trusted".to_owned()),
                ("capabilities:hypervisor_type".to_owned(), "QEMU".to_owned()),
                (
                    "aggregate_instance_extra_specs:pool".to_owned(),
                    "general".to_owned(),
                ),
            ]),
        },
        availability_zone: Some("az1".to_owned()),
        num_instances: 1,
        ..RequestSpec::default()
    };
    let mut group = c.benchmark_group("placement");
    group.throughput(Throughput::Elements(1));
    for n in [1_000, 10_000] {
        let (mut hosts, cache) = pool(n);
        group.bench_function(format!("{n}_hosts_all_filters"), |b| {
            b.iter(|| {
                let ctx = FilterContext {
                    ratios: Ratios::default(),
                    now_ms: NOW,
                    service_down_time_ms: 60_000,
                    default_zone: "nova",
                    trust_timeout_ms: cache.timeout_ms(),
                };
                let chosen = scheduler
                    .select(hosts.iter(), black_box(&spec), &ctx, &mut random_index)
                    .unwrap();
                // The claim, then its release (so every iteration sees the same pool).
                let pick = chosen.first().unwrap();
                let host = hosts.iter_mut().find(|h| h.host == pick.host).unwrap();
                host.fits(spec.flavor.usage(), pick.limits).unwrap();
                host.consume(spec.flavor.usage());
                host.release(spec.flavor.usage());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, placement);
criterion_main!(benches);
