//! Table tests of every filter's maths, after Nova's `test_*_filters.py`.

use std::collections::BTreeMap;
use std::sync::Arc;

use trustpool_api::oat::TrustLevel;

use super::*;
use crate::host_state::AggregateInfo;
use crate::request::FlavorSpec;

const NOW: i64 = 1_800_000_000_000;

fn ctx() -> FilterContext<'static> {
    FilterContext {
        ratios: Ratios::default(),
        now_ms: NOW,
        service_down_time_ms: 60_000,
        default_zone: "nova",
        trust_timeout_ms: 60_000,
    }
}

fn host(total_ram: i64, free_ram: i64) -> HostState {
    let mut h = HostState::new("host1", total_ram, 100, 4);
    h.free_ram_mb = free_ram;
    h.last_seen_ms = NOW;
    h
}

fn spec_ram(mb: u64) -> RequestSpec {
    RequestSpec {
        flavor: FlavorSpec {
            memory_mb: mb,
            vcpus: 1,
            root_gb: 1,
            ..FlavorSpec::default()
        },
        num_instances: 1,
        ..RequestSpec::default()
    }
}

fn specs(pairs: &[(&str, &str)]) -> RequestSpec {
    let mut s = spec_ram(512);
    s.flavor.extra_specs = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    s
}

fn passes(filter: Filter, h: &HostState, s: &RequestSpec, ratios: Ratios) -> bool {
    let mut c = ctx();
    c.ratios = ratios;
    filter.host_passes(h, s, &c)
}

fn ratios(ram: f64, cpu: f64, disk: f64) -> Ratios {
    Ratios { ram, cpu, disk }
}

/// `test_ram_filters.py`.
#[test]
fn ram_filter() {
    for (total, free, ratio, req, want) in [
        (1024, 1023, 1.0, 1024, false),
        (1024, 1024, 1.0, 1024, true),
        (2048, -1024, 2.0, 1024, true), // oversubscribed: limit 4096
        (512, 512, 2.0, 1024, false),   // no overcommit against itself
        (1024, 0, 1.5, 512, true),      // default ratio 1.5
        (1024, 0, 1.5, 513, false),
    ] {
        assert_eq!(
            passes(
                Filter::Ram,
                &host(total, free),
                &spec_ram(req),
                ratios(ratio, 16.0, 1.0)
            ),
            want,
            "total {total} free {free} ratio {ratio} req {req}"
        );
    }
    let limits = limits(&[Filter::Ram], &host(2048, -1024), ratios(2.0, 16.0, 1.0));
    assert_eq!(limits.memory_mb, Some(4096.0));
    assert_eq!(limits.disk_mb, None);
}

/// `test_core_filters.py`.
#[test]
fn core_filter() {
    for (total, used, ratio, req, want) in [
        (4, 7, 2.0, 1, true),
        (4, 8, 2.0, 1, false),
        (0, 100, 2.0, 1, true), // fail safe: vCPU collection broken
        (4, 0, 16.0, 5, false), // more than the host has
        (4, 63, 16.0, 1, true),
        (4, 64, 16.0, 1, false),
    ] {
        let mut h = host(1024, 1024);
        h.vcpus_total = total;
        h.vcpus_used = used;
        let mut s = spec_ram(1);
        s.flavor.vcpus = req;
        assert_eq!(
            passes(Filter::Core, &h, &s, ratios(1.5, ratio, 1.0)),
            want,
            "total {total} used {used} ratio {ratio} req {req}"
        );
    }
}

/// `test_disk_filters.py` (swap counted, no overcommit against itself).
#[test]
fn disk_filter() {
    for (total_gb, free_mb, ratio, root, eph, swap, want) in [
        (13, 11 * 1024, 1.0, 1, 1, 1024, true),
        (13, 11 * 1024, 1.0, 10, 1, 1024, false),
        (12, 11 * 1024, 2.0, 20, 1, 1024, false), // more than the disk itself
        (12, 11 * 1024, 2.0, 10, 1, 1024, true),  // oversubscribed
        (12, 0, 1.0, 1, 0, 0, false),
    ] {
        let mut h = host(1024, 1024);
        h.total_usable_disk_gb = total_gb;
        h.free_disk_mb = free_mb;
        let s = RequestSpec {
            flavor: FlavorSpec {
                memory_mb: 1,
                vcpus: 1,
                root_gb: root,
                ephemeral_gb: eph,
                swap_mb: swap,
                ..FlavorSpec::default()
            },
            num_instances: 1,
            ..RequestSpec::default()
        };
        assert_eq!(
            passes(Filter::Disk, &h, &s, ratios(1.5, 16.0, ratio)),
            want,
            "total {total_gb} GiB free {free_mb} MiB ratio {ratio} root {root} eph {eph} swap {swap}"
        );
    }
}

/// `test_compute_filters.py`: disabled fails whatever its liveness; up passes; down fails.
#[test]
fn compute_filter() {
    let s = spec_ram(1);
    let mut h = host(1024, 1024);
    assert!(passes(Filter::Compute, &h, &s, Ratios::default()));
    h.last_seen_ms = NOW - 61_000;
    assert!(!passes(Filter::Compute, &h, &s, Ratios::default()));
    h.last_seen_ms = NOW;
    h.disabled = true;
    h.disabled_reason = Some(Arc::from("maintenance"));
    assert!(!passes(Filter::Compute, &h, &s, Ratios::default()));
}

fn in_aggregates(metadata: &[&[(&str, &str)]]) -> HostState {
    let mut h = host(1024, 1024);
    h.aggregates = metadata
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Arc::new(AggregateInfo {
                id: i as u64,
                name: format!("agg{i}"),
                metadata: m
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            })
        })
        .collect();
    h
}

/// `test_availability_zone_filters.py`.
#[test]
fn availability_zone_filter() {
    let zone = |z: Option<&str>| RequestSpec {
        availability_zone: z.map(str::to_owned),
        ..spec_ram(1)
    };
    let plain = host(1024, 1024);
    let listed = in_aggregates(&[&[("availability_zone", "nova, nova2")]]);
    let other = in_aggregates(&[&[("availability_zone", "az1")]]);
    for (h, z, want) in [
        (&plain, None, true),
        (&plain, Some("nova"), true), // default_availability_zone
        (&listed, Some("nova2"), true),
        (&listed, Some("nova"), true),
        (&other, Some("nova"), false),
        (&other, Some("az1"), true),
        (&other, None, true),
    ] {
        assert_eq!(
            passes(Filter::AvailabilityZone, h, &zone(z), Ratios::default()),
            want,
            "{z:?}"
        );
    }
}

/// `test_compute_capabilities_filters.py`, with `trust:` in the specs to prove it is
/// ignored.
#[test]
fn compute_capabilities_filter() {
    let mut h = host(1024, 1024);
    h.stats = Arc::new(BTreeMap::from([
        ("hypervisor_type".to_owned(), "QEMU".to_owned()),
        (
            "cpu_info".to_owned(),
            r#"{"features": "aes mmx", "topology": {"cores": 4}}"#.to_owned(),
        ),
    ]));
    for (pairs, want) in [
        (&[("capabilities:hypervisor_type", "QEMU")][..], true),
        (&[("capabilities:hypervisor_type", "xen")][..], false),
        (&[("capabilities:free_ram_mb", "= 1000")][..], true),
        (&[("capabilities:free_ram_mb", "= 2000")][..], false),
        (
            &[("capabilities:cpu_info:features", "<all-in> aes")][..],
            true,
        ),
        (
            &[("capabilities:cpu_info:topology:cores", ">= 4")][..],
            true,
        ),
        (&[("capabilities:cpu_info:missing", "x")][..], false),
        (&[("capabilities:nothing", "x")][..], false),
        (&[("hypervisor_type", "QEMU")][..], true), // unscoped, a stat: evaluated
        (&[("hypervisor_type", "xen")][..], false),
        (&[("unrelated_key", "x")][..], true), // unscoped, unknown: ignored (Newton+)
        (&[("trust:trusted_host", "true")][..], true),
        (&[("hw:cpu_policy", "dedicated")][..], true),
        (
            &[
                ("trust:trusted_host", "true"),
                ("capabilities:hypervisor_type", "QEMU"),
            ][..],
            true,
        ),
    ] {
        assert_eq!(
            passes(
                Filter::ComputeCapabilities,
                &h,
                &specs(pairs),
                Ratios::default()
            ),
            want,
            "{pairs:?}"
        );
    }
}

/// `test_aggregate_instance_extra_specs_filters.py`.
#[test]
fn aggregate_instance_extra_specs_filter() {
    let h = in_aggregates(&[&[("ssd", "true"), ("opt1", "1,2")], &[("opt1", "5")]]);
    for (pairs, want) in [
        (&[][..], true),
        (&[("ssd", "true")][..], true),
        (&[("aggregate_instance_extra_specs:ssd", "true")][..], true),
        (&[("ssd", "false")][..], false),
        (&[("missing", "x")][..], false), // absent from every aggregate
        (&[("opt1", "2")][..], true),     // comma list
        (&[("opt1", "5")][..], true),     // union over aggregates
        (&[("opt1", "= 4")][..], true),   // "=" means at least: 5 >= 4
        (&[("trust:trusted_host", "trusted")][..], true), // other scope: ignored
        (&[("capabilities:x", "y")][..], true),
        (&[("ssd", "true"), ("trust:trusted_host", "true")][..], true),
    ] {
        assert_eq!(
            passes(
                Filter::AggregateInstanceExtraSpecs,
                &h,
                &specs(pairs),
                Ratios::default()
            ),
            want,
            "{pairs:?}"
        );
    }
}

#[test]
fn retry_filter() {
    let h = host(1024, 1024);
    let mut s = spec_ram(1);
    assert!(passes(Filter::Retry, &h, &s, Ratios::default()));
    s.tried_hosts = vec!["host2".into()];
    assert!(passes(Filter::Retry, &h, &s, Ratios::default()));
    s.tried_hosts.push("host1".into());
    assert!(!passes(Filter::Retry, &h, &s, Ratios::default()));
}

#[test]
fn trusted_filter_levels() {
    let c = ctx();
    for (node, wanted, want) in [
        ("t", Some("trusted"), true),
        ("t", Some("untrusted"), false),
        ("u", Some("untrusted"), true),
        ("u", Some("trusted"), false),
        ("x", Some("trusted"), false), // unknown fails both
        ("x", Some("untrusted"), false),
        ("x", Some("unknown"), false), // and matches nothing (fail closed, unlike Nova)
        ("t", Some("Trusted"), false), // exact, case-sensitive
        ("x", None, true),
        ("x", Some(""), true),
    ] {
        let h = HostState::new(node, 1024, 10, 1);
        match node {
            "t" => h.trust.set(TrustLevel::Trusted, NOW - 1000),
            "u" => h.trust.set(TrustLevel::Untrusted, NOW - 1000),
            _ => {}
        }
        let s = specs(
            &wanted
                .map(|w| vec![("trust:trusted_host", w)])
                .unwrap_or_default(),
        );
        assert_eq!(
            Filter::Trusted.host_passes(&h, &s, &c),
            want,
            "{node} {wanted:?}"
        );
    }
}

#[test]
fn names_and_paths() {
    assert_eq!(Filter::parse("TrustedFilter"), Ok(Filter::Trusted));
    assert_eq!(
        Filter::parse("nova.scheduler.filters.trusted_filter.TrustedFilter"),
        Ok(Filter::Trusted)
    );
    assert!(Filter::parse("nova.scheduler.filters.ram_filter.TrustedFilter").is_err());
    assert!(
        Filter::parse("ImagePropertiesFilter")
            .unwrap_err()
            .contains("does not implement")
    );
    assert!(
        Filter::parse("TrustFilter")
            .unwrap_err()
            .contains("unknown")
    );
}

/// `test_filters.py::test_get_filtered_objects_for_index`, and Nova's log line.
#[test]
fn pipeline_order_once_per_request_and_counts() {
    let c = ctx();
    let mut hosts: Vec<HostState> = (0..3)
        .map(|i| {
            let mut h = host(1024, 1024);
            h.host = Arc::from(format!("h{i}"));
            h
        })
        .collect();
    hosts[0].disabled = true;
    let s = spec_ram(2048);
    let chain = [Filter::Retry, Filter::Compute, Filter::Ram, Filter::Core];
    let mut list = hosts.clone();
    let counts = run(&chain, &mut list, &s, 0, &c);
    assert!(list.is_empty());
    assert_eq!(
        format_counts(&counts),
        "['RetryFilter: (start: 3, end: 3)', 'ComputeFilter: (start: 3, end: 2)', 'RamFilter: (start: 2, end: 0)']",
        "stops at the first empty result"
    );
    // For index 1 the once-per-request ComputeFilter does not run.
    let mut list = hosts.clone();
    let counts = run(&chain, &mut list, &spec_ram(1), 1, &c);
    assert_eq!(list.len(), 3);
    assert!(counts.iter().all(|c| c.filter != Filter::Compute));
}
