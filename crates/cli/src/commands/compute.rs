//! Compute verbs against the scheduler's Nova-shaped API. Errors read like Nova's (the
//! server's message); `--output json` prints the API objects as they are.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::anyhow;
use trustpool_api::compute::flavor::{CreateFlavor, Flavor, NewFlavor, TRUSTED_HOST_SPEC};
use trustpool_api::compute::host::{AggregateAction, HypervisorCredential};
use trustpool_api::compute::server::NewServer;
use trustpool_client::{ClientError, ComputeClient};

use super::compute_view::{
    aggregate_rows, flavor_detail, flavor_rows, hypervisor_detail, hypervisor_rows, server_detail,
    server_rows, show,
};
use super::outcome;
use super::table::table;
use crate::Outcome;
use crate::cli::{Cli, Output};
use crate::compute_cli::{BootArgs, ComputeCommand, FlavorOs, HypervisorOs, KeyAction, ServerOs};

/// A node and its compute token: the token is printed this once (the scheduler keeps
/// only its SHA-256).
fn credential_detail(c: &HypervisorCredential) -> String {
    format!(
        "{}\ncompute_token: {}\n\nThe scheduler keeps only this token's SHA-256: write it now to {}'s agent.toml [scheduler] token_file.\nIt reports heartbeats for {} only.\n",
        hypervisor_detail(&c.hypervisor),
        c.compute_token,
        c.hypervisor.hypervisor_hostname,
        c.hypervisor.hypervisor_hostname,
    )
}

fn client(cli: &Cli) -> anyhow::Result<ComputeClient> {
    let url = cli
        .compute_url
        .as_deref()
        .ok_or_else(|| anyhow!("no compute API: set --compute-url or TRUSTPOOL_COMPUTE_URL"))?;
    Ok(ComputeClient::new(
        url,
        &cli.server_tls()?,
        cli.compute_token.clone().or_else(|| cli.token.clone()),
        Duration::from_secs(60),
    )?)
}

/// `KEY=VALUE` items; the seed's `KEY VALUE` (two words, no `=`) is read as one pair.
/// Unscoped trust keys get a warning: TrustedFilter reads only `trust:trusted_host`.
fn pairs(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let [key, value] = items
        && !key.contains('=')
        && !value.contains('=')
    {
        out.insert(key.clone(), value.clone());
    } else {
        for item in items {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                anyhow!("{item:?} is not KEY=VALUE (e.g. trust:trusted_host=trusted)")
            })?;
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    for key in out.keys() {
        if key != TRUSTED_HOST_SPEC && key.ends_with("trusted_host") {
            eprintln!(
                "trustpool: warning: {key:?} is not read by TrustedFilter; did you mean {TRUSTED_HOST_SPEC}?"
            );
        }
    }
    Ok(out)
}

async fn aggregate_id(c: &ComputeClient, name: &str) -> Result<u64, ClientError> {
    let list = c.aggregates().await?;
    Ok(list
        .iter()
        .find(|a| a.name == name || a.id.to_string() == name)
        .map_or(0, |a| a.id))
}

async fn boot(c: &ComputeClient, a: &BootArgs) -> anyhow::Result<Outcome> {
    let request = NewServer {
        name: a.name.clone(),
        image_ref: a.image.clone(),
        flavor_ref: a.flavor.clone(),
        availability_zone: a.availability_zone.clone(),
        min_count: a.min_count,
        max_count: a.max_count,
        metadata: BTreeMap::new(),
    };
    let id = match c.boot(request).await {
        Ok(id) => id,
        Err(ClientError::Status {
            status, message, ..
        }) if (400..500).contains(&status) => {
            return Ok(Outcome::Refused(message));
        }
        Err(e) => return Err(e.into()),
    };
    let mut server = c.server(&id).await?;
    if a.wait {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while server.status == "BUILD" && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            server = c.server(&id).await?;
        }
    }
    crate::emit(&show(a.output, &server, server_detail)?);
    match (&server.status[..], &server.fault) {
        ("ERROR", Some(f)) if a.wait => Ok(Outcome::Refused(f.message.clone())),
        _ => Ok(Outcome::Success),
    }
}

fn new_flavor(
    name: &str,
    id: &str,
    ram: u64,
    disk: u64,
    vcpus: u32,
    ephemeral: Option<u64>,
    swap: Option<u64>,
) -> CreateFlavor {
    CreateFlavor {
        flavor: NewFlavor {
            name: name.to_owned(),
            ram,
            vcpus,
            disk,
            id: Some(id.to_owned()),
            ephemeral,
            swap,
            rxtx_factor: None,
            is_public: None,
            description: None,
        },
    }
}

async fn create_flavor(
    c: &ComputeClient,
    body: CreateFlavor,
    props: &[String],
    output: Output,
) -> anyhow::Result<Outcome> {
    let specs = pairs(props)?;
    let flavor = match c.create_flavor(&body).await {
        Ok(f) => f,
        Err(ClientError::Status {
            status, message, ..
        }) if (400..500).contains(&status) => {
            return Ok(Outcome::Refused(message));
        }
        Err(e) => return Err(e.into()),
    };
    if specs.is_empty() {
        return outcome(Ok(flavor), |f| show(output, &f, flavor_detail));
    }
    let id = flavor.id.clone();
    outcome(c.set_extra_specs(&id, specs).await, |specs| {
        let f = Flavor {
            extra_specs: specs,
            ..flavor
        };
        show(output, &f, flavor_detail)
    })
}

async fn unset_keys(c: &ComputeClient, flavor: &str, keys: &[String]) -> anyhow::Result<Outcome> {
    for key in keys {
        match c.unset_extra_spec(flavor, key).await {
            Ok(()) => {}
            Err(ClientError::Status {
                status, message, ..
            }) if (400..500).contains(&status) => {
                return Ok(Outcome::Refused(message));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Outcome::Success)
}

pub(crate) fn run(cli: &Cli, command: &ComputeCommand) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let c = client(cli)?;
    runtime.block_on(async {
        use ComputeCommand as C;
        match command {
            C::FlavorCreate {
                name,
                id,
                ram,
                disk,
                vcpus,
                ephemeral,
                swap,
                properties,
                output,
            } => {
                create_flavor(
                    &c,
                    new_flavor(name, id, *ram, *disk, *vcpus, *ephemeral, *swap),
                    properties,
                    *output,
                )
                .await
            }
            C::Flavor(FlavorOs::Create {
                ram,
                disk,
                vcpus,
                id,
                ephemeral,
                swap,
                properties,
                name,
                output,
            }) => {
                create_flavor(
                    &c,
                    new_flavor(name, id, *ram, *disk, *vcpus, *ephemeral, *swap),
                    properties,
                    *output,
                )
                .await
            }
            C::FlavorList {
                extra_specs,
                output,
            }
            | C::Flavor(FlavorOs::List {
                long: extra_specs,
                output,
            }) => {
                let (specs, output) = (*extra_specs, *output);
                outcome(c.flavors().await, |f| {
                    show(output, &f, |f| flavor_rows(f, specs))
                })
            }
            C::FlavorShow(a) | C::Flavor(FlavorOs::Show(a)) => {
                outcome(c.flavor(&a.name).await, |f| {
                    show(a.output, &f, flavor_detail)
                })
            }
            C::FlavorDelete(a) | C::Flavor(FlavorOs::Delete(a)) => {
                outcome(c.delete_flavor(&a.name).await, |()| Ok(String::new()))
            }
            C::FlavorKey {
                flavor,
                action: KeyAction::Set,
                items,
            } => outcome(c.set_extra_specs(flavor, pairs(items)?).await, |_| {
                Ok(String::new())
            }),
            C::Flavor(FlavorOs::Set { properties, flavor }) => {
                outcome(c.set_extra_specs(flavor, pairs(properties)?).await, |_| {
                    Ok(String::new())
                })
            }
            C::FlavorKey {
                flavor,
                action: KeyAction::Unset,
                items,
            } => unset_keys(&c, flavor, items).await,
            C::Flavor(FlavorOs::Unset { properties, flavor }) => {
                unset_keys(&c, flavor, properties).await
            }
            C::Boot(a) | C::Server(ServerOs::Create(a)) => boot(&c, a).await,
            C::List(a) | C::Server(ServerOs::List(a)) => outcome(c.servers().await, |s| {
                show(a.output, &s, |s| server_rows(s))
            }),
            C::Show(a) | C::Server(ServerOs::Show(a)) => outcome(c.server(&a.name).await, |s| {
                show(a.output, &s, server_detail)
            }),
            C::Delete(a) | C::Server(ServerOs::Delete(a)) => {
                outcome(c.delete_server(&a.name).await, |()| {
                    Ok(format!(
                        "Request to delete server {} has been accepted.\n",
                        a.name
                    ))
                })
            }
            C::HypervisorList(a) | C::Hypervisor(HypervisorOs::List(a)) => {
                outcome(c.hypervisors().await, |h| {
                    show(a.output, &h, |h| hypervisor_rows(h))
                })
            }
            C::HypervisorShow(a) | C::Hypervisor(HypervisorOs::Show(a)) => {
                outcome(c.hypervisor(&a.name).await, |h| {
                    show(a.output, &h, hypervisor_detail)
                })
            }
            C::HypervisorCreate(a) | C::Hypervisor(HypervisorOs::Create(a)) => {
                outcome(c.create_hypervisor(&a.name).await, |cred| {
                    show(a.output, &cred, credential_detail)
                })
            }
            C::HypervisorTokenRotate(a) | C::Hypervisor(HypervisorOs::RotateToken(a)) => {
                outcome(c.rotate_compute_token(&a.name).await, |cred| {
                    show(a.output, &cred, credential_detail)
                })
            }
            C::ServiceDelete(a) => outcome(c.delete_service(&a.name).await, |()| {
                Ok(format!(
                    "Compute service {} and its hypervisor have been deleted.\n",
                    a.name
                ))
            }),
            C::ServiceList(a) => outcome(c.services().await, |list| {
                show(a.output, &list, |list| {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|s| {
                            vec![
                                s.id.to_string(),
                                s.binary.clone(),
                                s.host.clone(),
                                s.zone.clone(),
                                s.status.clone(),
                                s.state.clone(),
                                s.updated_at.clone().unwrap_or_else(|| "-".to_owned()),
                                s.disabled_reason.clone().unwrap_or_else(|| "-".to_owned()),
                            ]
                        })
                        .collect();
                    table(
                        &[
                            "Id",
                            "Binary",
                            "Host",
                            "Zone",
                            "Status",
                            "State",
                            "Updated_at",
                            "Disabled Reason",
                        ],
                        &rows,
                    )
                })
            }),
            C::ServiceEnable { host, binary } | C::ServiceDisable { host, binary, .. }
                if binary != "nova-compute" =>
            {
                Ok(Outcome::Refused(format!(
                    "Service {binary} on host {host} not found."
                )))
            }
            C::ServiceEnable { host, .. } => outcome(c.set_service(host, true, None).await, |s| {
                Ok(table(
                    &["Host", "Binary", "Status"],
                    &[vec![s.host, s.binary, s.status]],
                ))
            }),
            C::ServiceDisable { host, reason, .. } => {
                outcome(c.set_service(host, false, reason.clone()).await, |s| {
                    Ok(table(
                        &["Host", "Binary", "Status", "Disabled Reason"],
                        &[vec![
                            s.host,
                            s.binary,
                            s.status,
                            s.disabled_reason.unwrap_or_default(),
                        ]],
                    ))
                })
            }
            C::AggregateCreate {
                name,
                availability_zone,
            } => outcome(
                c.create_aggregate(name, availability_zone.clone()).await,
                |a| Ok(aggregate_rows(&[a])),
            ),
            C::AggregateList(a) => outcome(c.aggregates().await, |list| {
                show(a.output, &list, |l| aggregate_rows(l))
            }),
            C::AggregateAddHost { aggregate, host } => {
                let id = aggregate_id(&c, aggregate).await?;
                let action = AggregateAction::AddHost { host: host.clone() };
                outcome(c.aggregate_action(id, &action).await, |a| {
                    Ok(aggregate_rows(&[a]))
                })
            }
            C::AggregateRemoveHost { aggregate, host } => {
                let id = aggregate_id(&c, aggregate).await?;
                let action = AggregateAction::RemoveHost { host: host.clone() };
                outcome(c.aggregate_action(id, &action).await, |a| {
                    Ok(aggregate_rows(&[a]))
                })
            }
            C::AggregateSetMetadata { aggregate, items } => {
                let id = aggregate_id(&c, aggregate).await?;
                let metadata = items
                    .iter()
                    .map(|i| match i.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (i.clone(), None),
                    })
                    .collect();
                let action = AggregateAction::SetMetadata { metadata };
                outcome(c.aggregate_action(id, &action).await, |a| {
                    Ok(aggregate_rows(&[a]))
                })
            }
            C::AggregateDelete { aggregate } => {
                let id = aggregate_id(&c, aggregate).await?;
                outcome(c.delete_aggregate(id).await, |()| Ok(String::new()))
            }
            C::AvailabilityZoneList(a) => outcome(c.availability_zones().await, |z| {
                show(a.output, &z, |z| {
                    let rows: Vec<Vec<String>> = z
                        .availability_zone_info
                        .iter()
                        .map(|zone| {
                            vec![
                                zone.zone_name.clone(),
                                if zone.zone_state.available {
                                    "available"
                                } else {
                                    "not available"
                                }
                                .to_owned(),
                                zone.hosts.clone().unwrap_or_default().join(", "),
                            ]
                        })
                        .collect();
                    table(&["Name", "Status", "Hosts"], &rows)
                })
            }),
        }
    })
}
