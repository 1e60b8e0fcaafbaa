//! Records as Nova's API shows them.

use trustpool_api::compute::Link;
use trustpool_api::compute::flavor::Flavor;
use trustpool_api::compute::host::{
    Aggregate, Hypervisor, HypervisorService, Service as ServiceView,
};
use trustpool_api::compute::server::{IdRef, Server};
use trustpool_api::time::{now_ms, rfc3339};

use crate::service::Service;
use crate::store::{AggregateRecord, FlavorRecord, NodeRecord, ServerRecord};

fn links(kind: &str, id: &str) -> Vec<Link> {
    vec![
        Link {
            rel: "self".to_owned(),
            href: format!("/v2.1/{kind}/{id}"),
        },
        Link {
            rel: "bookmark".to_owned(),
            href: format!("/{kind}/{id}"),
        },
    ]
}

pub(super) fn flavor(f: FlavorRecord) -> Flavor {
    Flavor {
        links: links("flavors", &f.id),
        id: f.id,
        name: f.name,
        ram: f.ram_mb,
        disk: f.disk_gb,
        vcpus: f.vcpus,
        ephemeral: f.ephemeral_gb,
        swap: f.swap_mb,
        rxtx_factor: f.rxtx_factor,
        is_public: f.is_public,
        disabled: false,
        extra_specs: f.extra_specs,
    }
}

pub(super) fn server(s: ServerRecord) -> Server {
    let vm_state = match s.status.as_str() {
        "ACTIVE" => "active",
        "ERROR" => "error",
        _ => "building",
    };
    Server {
        links: links("servers", &s.id),
        id: s.id,
        name: s.name,
        status: s.status.clone(),
        flavor: s.flavor,
        image: IdRef { id: s.image },
        created: rfc3339(s.created_at),
        updated: rfc3339(s.updated_at),
        hypervisor_hostname: s.host.clone(),
        host: s.host,
        availability_zone: s.zone,
        vm_state: vm_state.to_owned(),
        task_state: s.task_state,
        fault: s.fault,
        trust_alert: s.trust_alert,
        metadata: s.metadata,
    }
}

fn up(service: &Service, node: &NodeRecord, now: i64) -> bool {
    now.saturating_sub(node.last_seen) <= service.down_time_ms()
}

pub(super) fn hypervisor(service: &Service, node: NodeRecord) -> Hypervisor {
    let now = now_ms();
    let state = service.read();
    let host = state.hosts.get(node.host.as_str());
    let (free_ram, free_disk_mb, vcpus_used, running) = host.map_or(
        (
            i64::try_from(node.memory_mb).unwrap_or(i64::MAX),
            i64::try_from(node.local_gb.saturating_mul(1024)).unwrap_or(i64::MAX),
            0,
            0,
        ),
        |h| (h.free_ram_mb, h.free_disk_mb, h.vcpus_used, h.num_instances),
    );
    let zones = host.map_or_else(
        || vec![service.config.default_availability_zone.clone()],
        |h| h.availability_zones(&service.config.default_availability_zone),
    );
    drop(state);
    let level = service.trust.level(&node.host, now);
    let vtime = level
        .as_ref()
        .and_then(|_| service.trust.entry(&node.host))
        .map(|e| rfc3339(e.vtime_ms));
    let memory = i64::try_from(node.memory_mb).unwrap_or(i64::MAX);
    let disk_gb = i64::try_from(node.local_gb).unwrap_or(i64::MAX);
    let free_disk_gb = free_disk_mb.div_euclid(1024);
    Hypervisor {
        id: node.id,
        hypervisor_hostname: node.host.clone(),
        state: if up(service, &node, now) {
            "up"
        } else {
            "down"
        }
        .to_owned(),
        status: if node.disabled { "disabled" } else { "enabled" }.to_owned(),
        vcpus: node.vcpus,
        vcpus_used: u32::try_from(vcpus_used).unwrap_or(u32::MAX),
        memory_mb: node.memory_mb,
        memory_mb_used: u64::try_from(memory.saturating_sub(free_ram)).unwrap_or(0),
        free_ram_mb: free_ram,
        local_gb: node.local_gb,
        local_gb_used: u64::try_from(disk_gb.saturating_sub(free_disk_gb)).unwrap_or(0),
        free_disk_gb,
        disk_available_least: free_disk_gb,
        running_vms: running,
        current_workload: 0,
        host_ip: node
            .agent_url
            .trim_start_matches("https://")
            .split(['/', ':'])
            .next()
            .unwrap_or_default()
            .to_owned(),
        hypervisor_type: "QEMU".to_owned(),
        hypervisor_version: 1,
        service: HypervisorService {
            id: node.id,
            host: node.host,
            disabled_reason: node.disabled_reason,
        },
        availability_zones: zones,
        trust_level: level.map_or("unknown", |l| l.as_str()).to_owned(),
        trust_vtime: vtime,
    }
}

pub(super) fn service_view(service: &Service, node: NodeRecord) -> ServiceView {
    let zone = service
        .read()
        .hosts
        .get(node.host.as_str())
        .and_then(|h| {
            h.availability_zones(&service.config.default_availability_zone)
                .into_iter()
                .next()
        })
        .unwrap_or_else(|| service.config.default_availability_zone.clone());
    ServiceView {
        id: node.id,
        binary: "nova-compute".to_owned(),
        state: if up(service, &node, now_ms()) {
            "up"
        } else {
            "down"
        }
        .to_owned(),
        status: if node.disabled { "disabled" } else { "enabled" }.to_owned(),
        updated_at: (node.last_seen > 0).then(|| rfc3339(node.last_seen)),
        host: node.host,
        zone,
        disabled_reason: node.disabled_reason,
        forced_down: false,
    }
}

pub(super) fn aggregate(a: AggregateRecord) -> Aggregate {
    Aggregate {
        id: a.id,
        availability_zone: a.metadata.get("availability_zone").cloned(),
        name: a.name,
        hosts: a.hosts,
        metadata: a.metadata,
        created_at: rfc3339(a.created_at),
        updated_at: a.updated_at.map(rfc3339),
        deleted: false,
    }
}
