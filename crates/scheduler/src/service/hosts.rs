//! Compute hosts (an administrator creates each node and its compute token; its agent's
//! heartbeats, authenticated by that token, keep it up), their `nova-compute` services
//! (enable/disable/delete), and aggregates / availability zones.

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use trustpool_api::compute::HostReport;
use trustpool_api::compute::host::AggregateAction;
use trustpool_api::names::check_name;
use trustpool_api::time::now_ms;

use super::{Service, ServiceError};
use crate::store::{AggregateRecord, NodeRecord};

/// Random bytes in a compute token (256 bits, hex-encoded: 64 characters).
const TOKEN_BYTES: usize = 32;

/// A new compute token and its SHA-256 (what the database keeps).
fn new_token() -> Result<(String, [u8; 32]), ServiceError> {
    let mut secret = [0u8; TOKEN_BYTES];
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| ServiceError::NoRandomness)?;
    let token = trustpool_api::bytes::to_hex(&secret);
    Ok((token.clone(), token_sha256(&token)))
}

/// The SHA-256 a compute token is stored and looked up as.
#[must_use]
pub fn token_sha256(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

fn not_found(host: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "Compute host {host} could not be found. An administrator creates it: trustpool hypervisor-create {host}"
    ))
}

impl Service {
    /// The node a compute token (its SHA-256) belongs to.
    #[must_use]
    pub fn node_of_token(&self, hash: &[u8; 32]) -> Option<String> {
        self.read().node_tokens.get(hash).cloned()
    }

    /// `POST /v2.1/os-hypervisors`: an administrator creates compute node `name` (down
    /// until its first heartbeat). Returns it and its compute token, which is not kept.
    ///
    /// # Errors
    /// `BadRequest` for a name that is no DNS name, `Conflict` for a taken one,
    /// `Forbidden` when `[trustpool] max_compute_nodes` nodes exist.
    pub async fn create_node(&self, name: &str) -> Result<(NodeRecord, String), ServiceError> {
        check_name(name, "hypervisor_hostname").map_err(|e| {
            ServiceError::BadRequest(format!("Invalid input for field/attribute {e}"))
        })?;
        let _w = self.writes.lock().await;
        let (count, taken, last_id) = {
            let state = self.read();
            (
                state.nodes.len(),
                state.nodes.contains_key(name),
                state.nodes.values().map(|n| n.id).max().unwrap_or(0),
            )
        };
        if taken {
            return Err(ServiceError::Conflict(format!(
                "Compute host {name} already exists."
            )));
        }
        let max = self.config.max_compute_nodes;
        if count >= max {
            return Err(ServiceError::Forbidden(format!(
                "Maximum number of compute nodes exceeded: {count} of {max} exist ([trustpool] max_compute_nodes)."
            )));
        }
        let (token, hash) = new_token()?;
        let node = NodeRecord {
            id: last_id.saturating_add(1),
            host: name.to_owned(),
            memory_mb: 0,
            vcpus: 0,
            local_gb: 0,
            reported_zone: String::new(),
            agent_url: String::new(),
            disabled: false,
            disabled_reason: None,
            last_seen: 0,
            token_sha256: Some(hash),
        };
        self.store.put_node(&node).await?;
        tracing::info!(host = name, id = node.id, "compute node created");
        let mut state = self.write();
        state.put_node(node.clone());
        state.refresh_host(name, &self.trust);
        Ok((node, token))
    }

    /// `POST /v2.1/os-hypervisors/{id}/compute-token`: a new compute token for a node (by
    /// id or name); the old one stops working at once.
    ///
    /// # Errors
    /// `NotFound` for an unknown node.
    pub async fn rotate_node_token(
        &self,
        id_or_name: &str,
    ) -> Result<(NodeRecord, String), ServiceError> {
        let _w = self.writes.lock().await;
        let mut node = self.node(id_or_name)?;
        let (token, hash) = new_token()?;
        node.token_sha256 = Some(hash);
        self.store.put_node(&node).await?;
        tracing::info!(host = node.host, id = node.id, "compute token rotated");
        self.write().put_node(node.clone());
        Ok((node, token))
    }

    /// `DELETE /v2.1/os-services/{id}`: deletes a compute node (by id or name), its
    /// aggregate memberships and its trust slot. Refused while servers are on it (Nova:
    /// "Unable to delete compute service that is hosting instances").
    ///
    /// # Errors
    /// `NotFound` for an unknown node, `Conflict` while it hosts servers.
    pub async fn delete_node(&self, id_or_name: &str) -> Result<(), ServiceError> {
        let _w = self.writes.lock().await;
        let node = self.node(id_or_name)?;
        let host = node.host.as_str();
        if self
            .read()
            .servers
            .values()
            .any(|s| s.host.as_deref() == Some(host))
        {
            return Err(ServiceError::Conflict(format!(
                "Unable to delete compute service that is hosting instances ({host}). Migrate or delete the instances first."
            )));
        }
        self.store.delete_node(host).await?;
        {
            let mut state = self.write();
            state.remove_node(host);
            for a in state.aggregates.values_mut() {
                a.hosts.retain(|h| h != host);
            }
            state.forget_interned_aggregates();
        }
        self.trust.forget(host);
        tracing::info!(host, id = node.id, "compute node deleted");
        Ok(())
    }

    /// A heartbeat from `node` (the node whose token authenticated it): updates its
    /// resources and liveness. The database is written when something changed or the
    /// stored liveness is a quarter of `service_down_time` old (10,000 hosts reporting
    /// every 10 s would otherwise be 1,000 writes a second for nothing). Never creates a
    /// node.
    ///
    /// # Errors
    /// `Forbidden` when the report names another node than `node`; `NotFound` when the
    /// node is gone.
    pub async fn report(&self, node: &str, report: &HostReport) -> Result<u64, ServiceError> {
        let name = report.host_name.as_str();
        if name != node {
            return Err(ServiceError::Forbidden(format!(
                "Policy doesn't allow os-hypervisors:report to be performed: this compute token is host {node}'s, it cannot report for {name:?}."
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
            None => return Err(not_found(name)),
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
        // Writes are serialised: an operator's disable (or delete) racing a heartbeat must
        // not be lost.
        let _w = self.writes.lock().await;
        let mut node = self
            .read()
            .nodes
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
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
            state.put_node(node);
            if changed || !state.hosts.contains_key(name) {
                state.refresh_host(name, &self.trust);
            } else if let Some(h) = state.hosts.get_mut(name) {
                h.last_seen_ms = now;
            }
        }
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
