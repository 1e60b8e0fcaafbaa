//! Servers: boot (202, `BUILD`), placement in the background (`ACTIVE` on the chosen host
//! or `ERROR` with Nova's fault), claims that cannot double-book a host, bounded retries,
//! delete (resources freed).

use std::sync::Arc;

use trustpool_api::compute::server::{Fault, NewServer, ServerFlavor};
use trustpool_api::time::{now_ms, rfc3339};

use super::{Service, ServiceError, flavor_spec, new_uuid};
use crate::filters::{Filter, FilterContext, format_counts, trusted_requirement};
use crate::request::{RequestSpec, parse_availability_zone};
use crate::select::{NoValidHost, random_index};
use crate::store::ServerRecord;

/// Most instances in one request.
const MAX_COUNT: u32 = 100;

fn fault(message: String, details: Option<String>) -> Fault {
    Fault {
        code: 500,
        message,
        created: rfc3339(now_ms()),
        details,
    }
}

impl Service {
    /// `POST /v2.1/servers`: validates, records the servers in `BUILD` and places them in
    /// the background. Returns their ids.
    ///
    /// # Errors
    /// `BadRequest` for invalid input (Nova's messages).
    pub async fn boot(self: &Arc<Self>, req: NewServer) -> Result<Vec<String>, ServiceError> {
        let name = req.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::BadRequest(
                "Invalid input for field/attribute name.".to_owned(),
            ));
        }
        let flavor_ref = req.flavor_ref.rsplit('/').next().unwrap_or_default();
        let flavor = self.read().flavor(flavor_ref).cloned().ok_or_else(|| {
            ServiceError::BadRequest(format!("Flavor {} could not be found.", req.flavor_ref))
        })?;
        let min = req.min_count.unwrap_or(1);
        let max = req.max_count.unwrap_or(min);
        if min == 0 || max < min || max > MAX_COUNT {
            return Err(ServiceError::BadRequest(format!(
                "min_count ({min}) and max_count ({max}) must satisfy 1 <= min_count <= max_count <= {MAX_COUNT}"
            )));
        }
        let requested = req
            .availability_zone
            .clone()
            .filter(|z| !z.trim().is_empty())
            .or_else(|| self.config.default_schedule_zone.clone());
        let (zone, force_host, force_node) = requested
            .as_deref()
            .map(parse_availability_zone)
            .unwrap_or_default();
        if let Some(z) = &zone
            && !self.zones().iter().any(|known| known == z)
        {
            return Err(ServiceError::BadRequest(
                "The requested availability zone is not available".to_owned(),
            ));
        }
        let booted = ServerFlavor {
            id: flavor.id.clone(),
            original_name: flavor.name.clone(),
            ram: flavor.ram_mb,
            vcpus: flavor.vcpus,
            disk: flavor.disk_gb,
            ephemeral: flavor.ephemeral_gb,
            swap: flavor.swap_mb,
            extra_specs: flavor.extra_specs.clone(),
        };
        let now = now_ms();
        let records: Vec<ServerRecord> = (1..=max)
            .map(|i| ServerRecord {
                id: new_uuid(),
                name: if max > 1 {
                    format!("{name}-{i}")
                } else {
                    name.clone()
                },
                flavor: booted.clone(),
                image: req.image_ref.clone(),
                zone: zone
                    .clone()
                    .unwrap_or_else(|| self.config.default_availability_zone.clone()),
                host: None,
                status: "BUILD".to_owned(),
                task_state: Some("scheduling".to_owned()),
                fault: None,
                trust_alert: None,
                metadata: req.metadata.clone(),
                created_at: now,
                updated_at: now,
            })
            .collect();
        for r in &records {
            self.store.put_server(r).await?;
            self.store.add_action(&r.id, "create", None).await?;
        }
        {
            let mut state = self.write();
            for r in &records {
                state.servers.insert(r.id.clone(), r.clone());
            }
        }
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let spec = RequestSpec {
            instance_uuid: ids.first().cloned().unwrap_or_default(),
            flavor: flavor_spec(&booted),
            availability_zone: zone,
            force_host,
            force_node,
            tried_hosts: Vec::new(),
            num_instances: max,
        };
        let service = self.clone();
        let placing = ids.clone();
        tokio::spawn(async move { service.place(placing, spec).await });
        Ok(ids)
    }

    /// Every zone a request may name: the default zone and every aggregate's and agent's.
    #[must_use]
    pub fn zones(&self) -> Vec<String> {
        let state = self.read();
        let mut zones: Vec<String> = state
            .hosts
            .values()
            .flat_map(|h| h.availability_zones(&self.config.default_availability_zone))
            .chain(
                state
                    .aggregates
                    .values()
                    .filter_map(|a| a.metadata.get("availability_zone").cloned()),
            )
            .chain([self.config.default_availability_zone.clone()])
            .collect();
        zones.sort();
        zones.dedup();
        zones
    }

    /// Places `ids` (one request): the TrustedFilter's cache is made fresh first (one
    /// batched poll, only when the flavor asks for trust), then up to `max_attempts`
    /// select-and-claim rounds.
    pub(crate) async fn place(self: Arc<Self>, ids: Vec<String>, mut spec: RequestSpec) {
        if trusted_requirement(&spec).is_some() {
            if !self.scheduler.filters.contains(&Filter::Trusted) {
                self.fail(
                    &ids,
                    "No valid host was found. The flavor asks for a trusted host but TrustedFilter is not enabled.".to_owned(),
                    None,
                )
                .await;
                return;
            }
            if let Some(oat) = &self.oat {
                let names: Vec<String> = self.read().nodes.keys().cloned().collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                self.trust.prepare(&spec, &names, oat, &now_ms).await;
            }
        }
        let mut last = String::new();
        for _attempt in 0..self.config.max_attempts {
            let selection = {
                let state = self.read();
                let ctx = FilterContext {
                    ratios: self.config.ratios,
                    now_ms: now_ms(),
                    service_down_time_ms: self.down_time_ms(),
                    default_zone: &self.config.default_availability_zone,
                    trust_timeout_ms: self.trust.timeout_ms(),
                };
                self.scheduler
                    .select(state.hosts.values(), &spec, &ctx, &mut random_index)
            };
            let selection = match selection {
                Ok(s) => s,
                Err(NoValidHost { reason, counts }) => {
                    let details = (!counts.is_empty())
                        .then(|| format!("Filter results: {}", format_counts(&counts)));
                    self.fail(&ids, format!("No valid host was found. {reason}"), details)
                        .await;
                    return;
                }
            };
            match self.claim(&ids, &selection) {
                Ok(placed) => {
                    for record in placed {
                        tracing::info!(server = %record.id, host = record.host.as_deref().unwrap_or(""), "placed");
                        if let Err(e) = self.store.put_server(&record).await {
                            tracing::error!(error = %e, server = %record.id, "storing a placement failed");
                        }
                    }
                    return;
                }
                Err((host, reason)) => {
                    tracing::info!(host, %reason, "claim failed; rescheduling without that host");
                    spec.tried_hosts.push(host);
                    last = reason;
                }
            }
        }
        let first = ids.first().cloned().unwrap_or_default();
        self.fail(
            &ids,
            format!(
                "Exceeded maximum number of retries. Exceeded max scheduling attempts {} for instance {first}. Last exception: {last}",
                self.config.max_attempts
            ),
            None,
        )
        .await;
    }

    /// Claims every selection at once under the state lock, re-checking each host against
    /// the limits the filters used (another request may have consumed it meanwhile). All
    /// or nothing: on a failure the earlier claims of this request are released.
    fn claim(
        &self,
        ids: &[String],
        selection: &[crate::select::Selection],
    ) -> Result<Vec<ServerRecord>, (String, String)> {
        let mut state = self.write();
        let mut claimed: Vec<(usize, String)> = Vec::new();
        let usages: Vec<_> = ids
            .iter()
            .map(|id| {
                state
                    .servers
                    .get(id)
                    .map(|s| flavor_spec(&s.flavor).usage())
            })
            .collect();
        for (i, sel) in selection.iter().enumerate() {
            let usage = usages.get(i).copied().flatten().unwrap_or_default();
            let outcome = match state.hosts.get_mut(sel.host.as_ref()) {
                None => Err(format!("compute host {} is gone", sel.host)),
                Some(host) => host.fits(usage, sel.limits).map(|()| host.consume(usage)),
            };
            if let Err(reason) = outcome {
                for (j, h) in &claimed {
                    let usage = usages.get(*j).copied().flatten().unwrap_or_default();
                    if let Some(host) = state.hosts.get_mut(h.as_str()) {
                        host.release(usage);
                    }
                }
                return Err((sel.host.to_string(), reason));
            }
            claimed.push((i, sel.host.to_string()));
        }
        let now = now_ms();
        let mut placed = Vec::new();
        for ((_, host), id) in claimed.iter().zip(ids) {
            let zone = state
                .hosts
                .get(host.as_str())
                .map(|h| h.availability_zones(&self.config.default_availability_zone));
            if let Some(server) = state.servers.get_mut(id) {
                server.host = Some(host.clone());
                server.status = "ACTIVE".to_owned();
                server.task_state = None;
                server.updated_at = now;
                if let Some(z) = zone.and_then(|z| z.into_iter().next()) {
                    server.zone = z;
                }
                placed.push(server.clone());
            }
        }
        Ok(placed)
    }

    async fn fail(&self, ids: &[String], message: String, details: Option<String>) {
        tracing::info!(server = ids.first().map_or("", String::as_str), %message, details = details.as_deref().unwrap_or(""), "placement failed");
        let mut failed = Vec::new();
        {
            let mut state = self.write();
            for id in ids {
                if let Some(s) = state.servers.get_mut(id) {
                    s.status = "ERROR".to_owned();
                    s.task_state = None;
                    s.fault = Some(fault(message.clone(), details.clone()));
                    s.updated_at = now_ms();
                    failed.push(s.clone());
                }
            }
        }
        for s in failed {
            if let Err(e) = self.store.put_server(&s).await {
                tracing::error!(error = %e, server = %s.id, "storing a failed placement failed");
            }
        }
    }

    /// Every server.
    #[must_use]
    pub fn servers(&self) -> Vec<ServerRecord> {
        self.read().servers.values().cloned().collect()
    }

    /// A server by id, or by a unique name.
    ///
    /// # Errors
    /// `NotFound` in Nova's words; `Conflict` for an ambiguous name.
    pub fn server(&self, id: &str) -> Result<ServerRecord, ServiceError> {
        let state = self.read();
        if let Some(s) = state.servers.get(id) {
            return Ok(s.clone());
        }
        let named: Vec<&ServerRecord> = state.servers.values().filter(|s| s.name == id).collect();
        match named.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ServiceError::NotFound(format!(
                "Instance {id} could not be found."
            ))),
            _ => Err(ServiceError::Conflict(format!(
                "Multiple server matches found for '{id}', use an ID to be more specific."
            ))),
        }
    }

    /// `DELETE /v2.1/servers/{id}`: frees its resources on its host.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn delete_server(&self, id: &str) -> Result<(), ServiceError> {
        let server = self.server(id)?;
        self.store.delete_server(&server.id).await?;
        self.store.add_action(&server.id, "delete", None).await?;
        let mut state = self.write();
        if let Some(removed) = state.servers.remove(&server.id)
            && let (Some(host), "ACTIVE") = (removed.host.as_deref(), removed.status.as_str())
            && let Some(h) = state.hosts.get_mut(host)
        {
            h.release(flavor_spec(&removed.flavor).usage());
        }
        Ok(())
    }
}
