//! Compute hosts (they appear when their agent first reports), their `nova-compute`
//! services (enable/disable), and aggregates / availability zones.

use std::collections::BTreeMap;

use trustpool_api::compute::HostReport;
use trustpool_api::compute::host::AggregateAction;
use trustpool_api::time::now_ms;

use super::{Service, ServiceError};
use crate::store::{AggregateRecord, NodeRecord};

/// Longest host name accepted (a DNS name).
const MAX_HOST_NAME: usize = 255;

impl Service {
    /// An agent's heartbeat: creates the compute node on first sight, updates its
    /// resources and liveness. The database is written when something changed or the
    /// stored liveness is a quarter of `service_down_time` old (10,000 hosts reporting
    /// every 10 s would otherwise be 1,000 writes a second for nothing).
    ///
    /// # Errors
    /// `BadRequest` for an unusable report.
    pub async fn report(&self, report: &HostReport) -> Result<u64, ServiceError> {
        let name = report.host_name.trim();
        if name.is_empty()
            || name.len() > MAX_HOST_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(ServiceError::BadRequest(format!(
                "invalid host name {:?}",
                report.host_name
            )));
        }
        let now = now_ms();
        let differs = |n: &NodeRecord| {
            n.memory_mb != report.memory_mb
                || n.vcpus != report.vcpus
                || n.local_gb != report.local_gb
                || n.reported_zone != report.availability_zone
                || n.agent_url != report.agent_url
        };
        let (write, changed) = match self.read().nodes.get(name) {
            None => (true, true),
            Some(n) => (
                differs(n) || now.saturating_sub(n.last_seen) > self.down_time_ms() / 4,
                differs(n),
            ),
        };
        if !write {
            let mut state = self.write();
            if let Some(n) = state.nodes.get_mut(name) {
                n.last_seen = now;
            }
            if let Some(h) = state.hosts.get_mut(name) {
                h.last_seen_ms = now;
            }
            return Ok(state.nodes.get(name).map_or(0, |n| n.id));
        }
        // Writes are serialised: a new host's id, and an operator's disable racing a
        // heartbeat, must not be lost.
        let _w = self.writes.lock().await;
        let existing = self.read().nodes.get(name).cloned();
        let mut node = existing.unwrap_or_else(|| {
            let id = self.read().nodes.values().map(|n| n.id).max().unwrap_or(0) + 1;
            tracing::info!(host = name, id, "new compute host");
            NodeRecord {
                id,
                host: name.to_owned(),
                memory_mb: 0,
                vcpus: 0,
                local_gb: 0,
                reported_zone: String::new(),
                agent_url: String::new(),
                disabled: false,
                disabled_reason: None,
                last_seen: 0,
            }
        });
        node.memory_mb = report.memory_mb;
        node.vcpus = report.vcpus;
        node.local_gb = report.local_gb;
        node.reported_zone.clone_from(&report.availability_zone);
        node.agent_url.clone_from(&report.agent_url);
        node.last_seen = now;
        self.store.put_node(&node).await?;
        let id = node.id;
        {
            let mut state = self.write();
            state.nodes.insert(node.host.clone(), node);
            if changed || !state.hosts.contains_key(name) {
                state.refresh_host(name, &self.trust);
            } else if let Some(h) = state.hosts.get_mut(name) {
                h.last_seen_ms = now;
            }
        }
        self.trust.add_hosts([name]);
        Ok(id)
    }

    /// Every compute node.
    #[must_use]
    pub fn nodes(&self) -> Vec<NodeRecord> {
        self.read().nodes.values().cloned().collect()
    }

    /// A node by id or host name.
    ///
    /// # Errors
    /// `NotFound` in Nova's words.
    pub fn node(&self, id_or_name: &str) -> Result<NodeRecord, ServiceError> {
        let state = self.read();
        state
            .nodes
            .get(id_or_name)
            .or_else(|| {
                let id: u64 = id_or_name.parse().ok()?;
                state.nodes.values().find(|n| n.id == id)
            })
            .cloned()
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "Hypervisor with ID {id_or_name} could not be found."
                ))
            })
    }

    /// `PUT /v2.1/os-services/{disable,enable}`.
    ///
    /// # Errors
    /// `NotFound` for an unknown host.
    pub async fn set_service(
        &self,
        host: &str,
        disabled: bool,
        reason: Option<String>,
    ) -> Result<NodeRecord, ServiceError> {
        let _w = self.writes.lock().await;
        let mut node = self.read().nodes.get(host).cloned().ok_or_else(|| {
            ServiceError::NotFound(format!("Compute host {host} could not be found."))
        })?;
        node.disabled = disabled;
        node.disabled_reason = if disabled { reason } else { None };
        self.store.put_node(&node).await?;
        let mut state = self.write();
        if let Some(n) = state.nodes.get_mut(host) {
            n.disabled = node.disabled;
            n.disabled_reason.clone_from(&node.disabled_reason);
        }
        state.refresh_host(host, &self.trust);
        Ok(node)
    }

    /// Every aggregate.
    #[must_use]
    pub fn aggregates(&self) -> Vec<AggregateRecord> {
        self.read().aggregates.values().cloned().collect()
    }

    fn aggregate(&self, id: u64) -> Result<AggregateRecord, ServiceError> {
        self.read()
            .aggregates
            .get(&id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("Aggregate {id} could not be found.")))
    }

    async fn save_aggregate(
        &self,
        a: AggregateRecord,
        hosts: &[String],
    ) -> Result<AggregateRecord, ServiceError> {
        self.store.put_aggregate(&a).await?;
        let mut state = self.write();
        state.aggregates.insert(a.id, a.clone());
        for h in hosts {
            state.refresh_host(h, &self.trust);
        }
        Ok(a)
    }

    /// `POST /v2.1/os-aggregates`.
    ///
    /// # Errors
    /// `BadRequest` for a bad name, `Conflict` for a taken one.
    pub async fn create_aggregate(
        &self,
        name: &str,
        zone: Option<String>,
    ) -> Result<AggregateRecord, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::BadRequest(
                "Invalid input for field/attribute name.".to_owned(),
            ));
        }
        let _w = self.writes.lock().await;
        if self.read().aggregates.values().any(|a| a.name == name) {
            return Err(ServiceError::Conflict(format!(
                "Aggregate {name} already exists."
            )));
        }
        let id = self.read().aggregates.keys().max().copied().unwrap_or(0) + 1;
        let mut metadata = BTreeMap::new();
        if let Some(z) = zone.filter(|z| !z.trim().is_empty()) {
            metadata.insert("availability_zone".to_owned(), z.trim().to_owned());
        }
        let a = AggregateRecord {
            id,
            name: name.to_owned(),
            metadata,
            hosts: Vec::new(),
            created_at: now_ms(),
            updated_at: None,
        };
        self.save_aggregate(a, &[]).await
    }

    /// `POST /v2.1/os-aggregates/{id}/action`.
    ///
    /// # Errors
    /// `NotFound` for the aggregate or the host, `Conflict` for a host already (not) in it.
    pub async fn aggregate_action(
        &self,
        id: u64,
        action: AggregateAction,
    ) -> Result<AggregateRecord, ServiceError> {
        let _w = self.writes.lock().await;
        let mut a = self.aggregate(id)?;
        let touched: Vec<String> = match action {
            AggregateAction::AddHost { host } => {
                if !self.read().nodes.contains_key(&host) {
                    return Err(ServiceError::NotFound(format!(
                        "Compute host {host} could not be found."
                    )));
                }
                if a.hosts.contains(&host) {
                    return Err(ServiceError::Conflict(format!(
                        "Aggregate {id} already has host {host}."
                    )));
                }
                a.hosts.push(host.clone());
                vec![host]
            }
            AggregateAction::RemoveHost { host } => {
                if !a.hosts.contains(&host) {
                    return Err(ServiceError::NotFound(format!(
                        "Cannot remove host {host} in aggregate {id}"
                    )));
                }
                a.hosts.retain(|h| *h != host);
                vec![host]
            }
            AggregateAction::SetMetadata { metadata } => {
                self.write().forget_interned_aggregates();
                for (k, v) in metadata {
                    if !trustpool_api::compute::flavor::valid_spec_key(&k) {
                        return Err(ServiceError::BadRequest(format!(
                            "invalid metadata key {k:?}"
                        )));
                    }
                    match v {
                        Some(v) => a.metadata.insert(k, v),
                        None => a.metadata.remove(&k),
                    };
                }
                a.hosts.clone()
            }
        };
        a.updated_at = Some(now_ms());
        self.save_aggregate(a, &touched).await
    }

    /// `DELETE /v2.1/os-aggregates/{id}` (Nova refuses while it has hosts).
    ///
    /// # Errors
    /// `NotFound`, or `BadRequest` while hosts remain.
    pub async fn delete_aggregate(&self, id: u64) -> Result<(), ServiceError> {
        let _w = self.writes.lock().await;
        let a = self.aggregate(id)?;
        if !a.hosts.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "Cannot remove aggregate {id}: it still has hosts {}.",
                a.hosts.join(", ")
            )));
        }
        self.store.delete_aggregate(id).await?;
        self.write().aggregates.remove(&id);
        Ok(())
    }
}
