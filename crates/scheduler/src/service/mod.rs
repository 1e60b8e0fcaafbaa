//! The scheduler's use cases over its in-memory state and the store: flavors
//! ([`flavors`]), compute hosts, services and aggregates ([`hosts`]), servers and their
//! placement ([`servers`]), and following the attestation server ([`trust_watch`]).
//!
//! State lives in memory (Nova's 98 % bottleneck was re-reading every host per request)
//! and is written through to the store; a restart rebuilds it, usage included.

pub mod flavors;
pub mod hosts;
pub mod servers;
pub mod trust_watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use trustpool_client::OatClient;

use crate::conf::Config;
use crate::host_state::{AggregateInfo, HostState};
use crate::request::FlavorSpec;
use crate::select::FilterScheduler;
use crate::store::{AggregateRecord, FlavorRecord, NodeRecord, ServerRecord, Store, StoreError};
use crate::trust::TrustCache;

/// A use case failed; the HTTP layer maps each kind to Nova's error body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// 400 `badRequest`.
    #[error("{0}")]
    BadRequest(String),
    /// 404 `itemNotFound`.
    #[error("{0}")]
    NotFound(String),
    /// 409 `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// 403 `forbidden` (a credential used beyond what it allows, a bound reached).
    #[error("{0}")]
    Forbidden(String),
    /// 500: the system's random generator failed (no token was made).
    #[error("no randomness for a new token")]
    NoRandomness,
    /// 500 (details only in the log).
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// The in-memory state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) flavors: BTreeMap<String, FlavorRecord>,
    pub(crate) nodes: BTreeMap<String, NodeRecord>,
    /// Each node's compute token (its SHA-256) → the node's name: whose heartbeat a
    /// token authenticates. The key is the hash of a 256-bit random secret, so looking it
    /// up in a map leaks nothing a guess could use.
    pub(crate) node_tokens: HashMap<[u8; 32], String>,
    /// What the filters see, by host name.
    pub(crate) hosts: HashMap<Arc<str>, HostState>,
    pub(crate) aggregates: BTreeMap<u64, AggregateRecord>,
    pub(crate) servers: BTreeMap<String, ServerRecord>,
    /// Since when (Unix ms) each compute node has had no current level (`unknown`), for
    /// the trust-alert grace period (`trust_watch`). In memory only: a restart restarts
    /// every grace period (alerts already raised are stored with their servers and stay).
    pub(crate) silent_since: HashMap<String, i64>,
    /// One shared copy per distinct aggregate set and stats: hosts sharing them form a
    /// class the filters answer once for (see `HostState::class`).
    interned_aggregates: HashMap<Vec<u64>, Arc<[Arc<AggregateInfo>]>>,
    interned_stats: HashMap<String, Arc<BTreeMap<String, String>>>,
}

impl State {
    /// The aggregates `host` is in, as the filters read them (interned).
    fn aggregates_of(&mut self, host: &str) -> Arc<[Arc<AggregateInfo>]> {
        let ids: Vec<u64> = self
            .aggregates
            .values()
            .filter(|a| a.hosts.iter().any(|h| h == host))
            .map(|a| a.id)
            .collect();
        let aggregates = &self.aggregates;
        self.interned_aggregates
            .entry(ids)
            .or_insert_with_key(|ids| {
                ids.iter()
                    .filter_map(|id| aggregates.get(id))
                    .map(|a| {
                        Arc::new(AggregateInfo {
                            id: a.id,
                            name: a.name.clone(),
                            metadata: a.metadata.clone(),
                        })
                    })
                    .collect()
            })
            .clone()
    }

    /// Stores `node` in the state and its token in the token index (dropping the one it
    /// had, when rotated).
    pub(crate) fn put_node(&mut self, node: NodeRecord) {
        if let Some(old) = self.nodes.get(&node.host).and_then(|n| n.token_sha256) {
            self.node_tokens.remove(&old);
        }
        if let Some(hash) = node.token_sha256 {
            self.node_tokens.insert(hash, node.host.clone());
        }
        self.nodes.insert(node.host.clone(), node);
    }

    /// Removes a node and its token from the state.
    pub(crate) fn remove_node(&mut self, host: &str) -> Option<NodeRecord> {
        let node = self.nodes.remove(host)?;
        if let Some(hash) = node.token_sha256 {
            self.node_tokens.remove(&hash);
        }
        self.hosts.remove(host);
        self.silent_since.remove(host);
        Some(node)
    }

    /// An aggregate's metadata changed: its interned sets are stale.
    pub(crate) fn forget_interned_aggregates(&mut self) {
        self.interned_aggregates.clear();
    }

    /// Rebuilds one host's filter view from its record, aggregates and servers.
    pub(crate) fn refresh_host(&mut self, host: &str, trust: &TrustCache) {
        let Some(node) = self.nodes.get(host).cloned() else {
            self.hosts.remove(host);
            return;
        };
        let mut state = HostState::new(
            &node.host,
            i64::try_from(node.memory_mb).unwrap_or(i64::MAX),
            i64::try_from(node.local_gb).unwrap_or(i64::MAX),
            i64::from(node.vcpus),
        );
        state.id = node.id;
        state.disabled = node.disabled;
        state.disabled_reason = node.disabled_reason.as_deref().map(Arc::from);
        state.last_seen_ms = node.last_seen;
        state.trust = trust.slot(&node.host);
        state.aggregates = self.aggregates_of(host);
        let zone = node.reported_zone;
        state.stats = self
            .interned_stats
            .entry(zone)
            .or_insert_with_key(|zone| {
                Arc::new(if zone.is_empty() {
                    BTreeMap::new()
                } else {
                    BTreeMap::from([("reported_zone".to_owned(), zone.clone())])
                })
            })
            .clone();
        for server in self.servers.values() {
            if server.status == "ACTIVE" && server.host.as_deref() == Some(host) {
                state.consume(flavor_spec(&server.flavor).usage());
            }
        }
        self.hosts.insert(state.host.clone(), state);
    }

    /// A flavor by id, else by unique name.
    pub(crate) fn flavor(&self, id_or_name: &str) -> Option<&FlavorRecord> {
        self.flavors
            .get(id_or_name)
            .or_else(|| self.flavors.values().find(|f| f.name == id_or_name))
    }
}

/// The scheduler's view of a booted flavor.
pub(crate) fn flavor_spec(f: &trustpool_api::compute::server::ServerFlavor) -> FlavorSpec {
    FlavorSpec {
        memory_mb: f.ram,
        vcpus: f.vcpus,
        root_gb: f.disk,
        ephemeral_gb: f.ephemeral,
        swap_mb: f.swap,
        extra_specs: f.extra_specs.clone(),
    }
}

/// The running scheduler's services.
#[derive(Debug)]
pub struct Service {
    /// Configuration.
    pub config: Config,
    /// Database.
    pub store: Store,
    state: RwLock<State>,
    /// Trust levels from the attestation server.
    pub trust: TrustCache,
    /// The `PollHosts` client (None: TrustedFilter not enabled).
    pub(crate) oat: Option<OatClient>,
    pub(crate) scheduler: FilterScheduler,
    /// Serialises writes that allocate ids or touch several records.
    pub(crate) writes: tokio::sync::Mutex<()>,
}

impl Service {
    /// Opens the store and rebuilds the in-memory state from it.
    ///
    /// # Errors
    /// Storage or TLS configuration failures.
    pub async fn new(config: Config) -> anyhow::Result<Arc<Self>> {
        let store = Store::connect(&config.database_url).await?;
        let oat = match &config.attestation {
            Some(a) => {
                let ca = std::fs::read_to_string(&a.ca_file).map_err(|e| {
                    anyhow::anyhow!(
                        "[trusted_computing] server_ca_file {}: {e}",
                        a.ca_file.display()
                    )
                })?;
                Some(OatClient::new(
                    &a.poll_hosts_url(),
                    ca,
                    a.auth_blob.as_ref().map(|b| b.0.clone()),
                    a.request_timeout,
                )?)
            }
            None => None,
        };
        let timeout_ms = config.attestation.as_ref().map_or(60_000, |a| {
            i64::try_from(a.auth_timeout.as_millis()).unwrap_or(i64::MAX)
        });
        let mut state = State::default();
        for f in store.flavors().await? {
            state.flavors.insert(f.id.clone(), f);
        }
        for a in store.aggregates().await? {
            state.aggregates.insert(a.id, a);
        }
        for s in store.servers().await? {
            state.servers.insert(s.id.clone(), s);
        }
        for n in store.nodes().await? {
            state.put_node(n);
        }
        let names: Vec<String> = state.nodes.keys().cloned().collect();
        let trust = TrustCache::new(timeout_ms);
        for name in &names {
            state.refresh_host(name, &trust);
        }
        let scheduler = FilterScheduler {
            filters: config.filters.clone(),
            weighing: config.weighing.clone(),
            host_subset_size: config.host_subset_size,
            ratios: config.ratios,
        };
        Ok(Arc::new(Self {
            config,
            store,
            state: RwLock::new(state),
            trust,
            oat,
            scheduler,
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// `service_down_time` in ms.
    pub(crate) fn down_time_ms(&self) -> i64 {
        i64::try_from(self.config.service_down_time.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A new random UUID (version 4), as Nova's server ids.
#[must_use]
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = trustpool_api::bytes::to_hex(&b);
    let part = |r: core::ops::Range<usize>| hex.get(r).unwrap_or_default().to_owned();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}
