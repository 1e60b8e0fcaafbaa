//! Storage: the only module with SQL (`sql.rs`). One schema (`migrations/`) for SQLite
//! (the default: one file, WAL) and PostgreSQL, through sqlx's `Any` driver. The
//! scheduler keeps its working state in memory and writes through to here; on start it
//! rebuilds that state from here (so a restart forgets no placement).

mod sql;

use std::collections::BTreeMap;

pub use sql::Store;
use trustpool_api::compute::server::{Fault, ServerFlavor, TrustAlert};

/// A flavor.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorRecord {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// MiB.
    pub ram_mb: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// GiB.
    pub disk_gb: u64,
    /// GiB.
    pub ephemeral_gb: u64,
    /// MiB.
    pub swap_mb: u64,
    /// Factor.
    pub rxtx_factor: f64,
    /// Public.
    pub is_public: bool,
    /// Description.
    pub description: Option<String>,
    /// Extra specs.
    pub extra_specs: BTreeMap<String, String>,
}

/// A compute node (hypervisor + its `nova-compute` service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Id (hypervisor and service).
    pub id: u64,
    /// Host name.
    pub host: String,
    /// MiB.
    pub memory_mb: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// GiB.
    pub local_gb: u64,
    /// The zone its agent reports.
    pub reported_zone: String,
    /// Agent URL.
    pub agent_url: String,
    /// Disabled by an operator.
    pub disabled: bool,
    /// Why.
    pub disabled_reason: Option<String>,
    /// Last heartbeat, Unix ms (0: never).
    pub last_seen: i64,
    /// SHA-256 of its compute token, the only credential its heartbeats are accepted
    /// with (None: created before per-host tokens; an administrator rotates one in).
    pub token_sha256: Option<[u8; 32]>,
}

/// A host aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRecord {
    /// Id.
    pub id: u64,
    /// Unique name.
    pub name: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Members.
    pub hosts: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: Option<i64>,
}

/// A server (instance).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// The flavor as booted.
    pub flavor: ServerFlavor,
    /// Image id.
    pub image: String,
    /// Zone.
    pub zone: String,
    /// Host, once placed.
    pub host: Option<String>,
    /// `BUILD` / `ACTIVE` / `ERROR`.
    pub status: String,
    /// `scheduling` while being placed.
    pub task_state: Option<String>,
    /// Why ERROR.
    pub fault: Option<Fault>,
    /// Its host stopped being trusted.
    pub trust_alert: Option<TrustAlert>,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database operation {op} failed")]
    Query {
        /// The operation.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not decode.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// What.
        what: &'static str,
    },
    /// A unique name is taken.
    #[error("{0}")]
    Duplicate(String),
}
