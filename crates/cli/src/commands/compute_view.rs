//! How compute objects are shown: tables with Nova's column names, `Property | Value`
//! detail tables, or the API objects as JSON.

use trustpool_api::compute::flavor::Flavor;
use trustpool_api::compute::host::{Aggregate, Hypervisor};
use trustpool_api::compute::server::Server;

use super::json_text;
use super::table::{properties, table};
use crate::cli::Output;

pub(super) fn flavor_rows(flavors: &[Flavor], specs: bool) -> String {
    let mut headers = vec![
        "ID",
        "Name",
        "Memory_MB",
        "Disk",
        "Ephemeral",
        "Swap",
        "VCPUs",
        "RXTX_Factor",
        "Is_Public",
    ];
    if specs {
        headers.push("extra_specs");
    }
    let rows: Vec<Vec<String>> = flavors
        .iter()
        .map(|f| {
            let mut row = vec![
                f.id.clone(),
                f.name.clone(),
                f.ram.to_string(),
                f.disk.to_string(),
                f.ephemeral.to_string(),
                if f.swap == 0 {
                    String::new()
                } else {
                    f.swap.to_string()
                },
                f.vcpus.to_string(),
                f.rxtx_factor.to_string(),
                if f.is_public { "True" } else { "False" }.to_owned(),
            ];
            if specs {
                row.push(serde_json::to_string(&f.extra_specs).unwrap_or_default());
            }
            row
        })
        .collect();
    table(&headers, &rows)
}

pub(super) fn flavor_detail(f: &Flavor) -> String {
    properties(&[
        ("OS-FLV-EXT-DATA:ephemeral", f.ephemeral.to_string()),
        ("disk", f.disk.to_string()),
        (
            "extra_specs",
            serde_json::to_string(&f.extra_specs).unwrap_or_default(),
        ),
        ("id", f.id.clone()),
        ("name", f.name.clone()),
        (
            "os-flavor-access:is_public",
            if f.is_public { "True" } else { "False" }.to_owned(),
        ),
        ("ram", f.ram.to_string()),
        ("rxtx_factor", f.rxtx_factor.to_string()),
        (
            "swap",
            if f.swap == 0 {
                String::new()
            } else {
                f.swap.to_string()
            },
        ),
        ("vcpus", f.vcpus.to_string()),
    ])
}

pub(super) fn server_rows(servers: &[Server]) -> String {
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.name.clone(),
                s.status.clone(),
                s.task_state.clone().unwrap_or_else(|| "-".to_owned()),
                s.host.clone().unwrap_or_else(|| "-".to_owned()),
                s.availability_zone.clone(),
                s.trust_alert
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |a| format!("host {}", a.trust_lvl)),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "Name",
            "Status",
            "Task State",
            "Host",
            "Zone",
            "Trust Alert",
        ],
        &rows,
    )
}

pub(super) fn server_detail(s: &Server) -> String {
    let mut pairs = vec![
        ("OS-EXT-AZ:availability_zone", s.availability_zone.clone()),
        (
            "OS-EXT-SRV-ATTR:host",
            s.host.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        (
            "OS-EXT-SRV-ATTR:hypervisor_hostname",
            s.hypervisor_hostname
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
        ),
        (
            "OS-EXT-STS:task_state",
            s.task_state.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("OS-EXT-STS:vm_state", s.vm_state.clone()),
        ("created", s.created.clone()),
        (
            "flavor",
            format!("{} ({})", s.flavor.original_name, s.flavor.id),
        ),
        ("id", s.id.clone()),
        ("image", s.image.id.clone()),
        ("name", s.name.clone()),
        ("status", s.status.clone()),
        ("updated", s.updated.clone()),
    ];
    if let Some(f) = &s.fault {
        pairs.push((
            "fault",
            serde_json::json!({"code": f.code, "message": f.message, "created": f.created, "details": f.details}).to_string(),
        ));
    }
    if let Some(a) = &s.trust_alert {
        pairs.push((
            "trust_alert",
            format!(
                "host {} since {}: {}",
                a.trust_lvl,
                a.since,
                a.reasons.join("; ")
            ),
        ));
    }
    properties(&pairs)
}

pub(super) fn hypervisor_rows(list: &[Hypervisor]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                h.hypervisor_hostname.clone(),
                h.state.clone(),
                h.status.clone(),
                h.trust_level.clone(),
                h.trust_vtime.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "Hypervisor hostname",
            "State",
            "Status",
            "Trust",
            "Trust vtime",
        ],
        &rows,
    )
}

pub(super) fn hypervisor_detail(h: &Hypervisor) -> String {
    properties(&[
        ("id", h.id.to_string()),
        ("hypervisor_hostname", h.hypervisor_hostname.clone()),
        ("state", h.state.clone()),
        ("status", h.status.clone()),
        ("trust_level", h.trust_level.clone()),
        (
            "trust_vtime",
            h.trust_vtime.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("availability_zones", h.availability_zones.join(", ")),
        ("vcpus", h.vcpus.to_string()),
        ("vcpus_used", h.vcpus_used.to_string()),
        ("memory_mb", h.memory_mb.to_string()),
        ("memory_mb_used", h.memory_mb_used.to_string()),
        ("free_ram_mb", h.free_ram_mb.to_string()),
        ("local_gb", h.local_gb.to_string()),
        ("local_gb_used", h.local_gb_used.to_string()),
        ("free_disk_gb", h.free_disk_gb.to_string()),
        ("running_vms", h.running_vms.to_string()),
        ("host_ip", h.host_ip.clone()),
        (
            "service_disabled_reason",
            h.service.disabled_reason.clone().unwrap_or_default(),
        ),
    ])
}

pub(super) fn aggregate_rows(list: &[Aggregate]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.name.clone(),
                a.availability_zone
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                a.hosts.join(", "),
                serde_json::to_string(&a.metadata).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["Id", "Name", "Availability Zone", "Hosts", "Metadata"],
        &rows,
    )
}

pub(super) fn show<T: serde::Serialize>(
    output: Output,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<String> {
    match output {
        Output::Json => json_text(value),
        Output::Table => Ok(text(value)),
    }
}
