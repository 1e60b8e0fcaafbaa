//! Storage: the only module with SQL (`sql.rs`). One schema (`migrations/`) for SQLite (the
//! default: one file, WAL, created on first start) and PostgreSQL (several servers sharing
//! one database), through sqlx's `Any` driver with portable SQL.

mod evidence;
mod identity;
mod sql;
mod verdicts;

pub use identity::{Grant, NameHolder};
pub use sql::Store;

use trustpool_api::oat::TrustLevel;

/// Where an enrolled host stands. (A registration whose credential challenge is not yet
/// answered is not a host: it waits in `enrollment_challenges`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Proven and accepted: attested every interval.
    Enrolled,
    /// Proven; an administrator must approve it.
    PendingApproval,
}

impl HostState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Enrolled => "enrolled",
            Self::PendingApproval => "pending_approval",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "enrolled" => Some(Self::Enrolled),
            "pending_approval" => Some(Self::PendingApproval),
            _ => None,
        }
    }
}

/// A registered host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// Hex of the AK Name.
    pub agent_id: String,
    /// Name as Nova knows it.
    pub host_name: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// Agent base URL.
    pub agent_url: String,
    /// Agent TLS certificate (PEM).
    pub agent_certificate: String,
    /// EK `TPM2B_PUBLIC`.
    pub ek_public: Vec<u8>,
    /// EK certificate (DER).
    pub ek_certificate: Option<Vec<u8>>,
    /// AK `TPM2B_PUBLIC`.
    pub ak_public: Vec<u8>,
    /// Enrollment state.
    pub state: HostState,
    /// Names of the accepted policies (any-of).
    pub policies: Vec<String>,
    /// The TPM is a software TPM.
    pub software_tpm: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// When (Unix ms) an administrator last accepted that this TPM's clock or counters went
    /// backwards (e.g. after `TPM2_Clear`): quotes from before it are no baseline.
    pub clock_reset_at: Option<i64>,
}

/// One appraisal outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRecord {
    /// Random id.
    pub id: String,
    /// The host.
    pub agent_id: String,
    /// When this outcome was first reached (Unix ms).
    pub at: i64,
    /// Its latest attestation (Unix ms): identical consecutive verdicts are one run.
    pub until: i64,
    /// Attestations in the run (1 for a verdict not repeated).
    pub repeats: i64,
    /// The level.
    pub level: TrustLevel,
    /// The matching policy (`name@version`) when trusted.
    pub policy: Option<String>,
    /// Why not trusted.
    pub reasons: Vec<String>,
    /// TPM resetCount of the quote.
    pub reset_count: Option<i64>,
    /// TPM restartCount.
    pub restart_count: Option<i64>,
    /// TPM clock (of the run's latest quote).
    pub clock: Option<i64>,
    /// The quoted PCR values (JSON).
    pub pcrs: Option<String>,
}

impl VerdictRecord {
    /// A digest of what this verdict says, but for its times and TPM clock: consecutive
    /// verdicts of a host with equal digests are one run. Every field is length-prefixed,
    /// so no two different verdicts encode alike.
    #[must_use]
    pub fn run_digest(&self) -> [u8; 32] {
        let v = self;
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut field = |bytes: &[u8]| {
            ctx.update(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
            ctx.update(bytes);
        };
        field(v.level.as_str().as_bytes());
        field(v.policy.as_deref().unwrap_or_default().as_bytes());
        field(&[u8::from(v.policy.is_some())]);
        for reason in &v.reasons {
            field(reason.as_bytes());
        }
        field(
            &u64::try_from(v.reasons.len())
                .unwrap_or(u64::MAX)
                .to_le_bytes(),
        );
        field(v.pcrs.as_deref().unwrap_or_default().as_bytes());
        field(&v.reset_count.unwrap_or(-1).to_le_bytes());
        field(&v.restart_count.unwrap_or(-1).to_le_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

/// A verdict to store: a new run, or one more attestation of the host's current run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictWrite {
    /// The verdict (for a repeat: its time and TPM clock extend the run).
    pub verdict: VerdictRecord,
    /// The id of the run this verdict repeats, when it is identical to the host's current
    /// verdict but for the time and TPM clock. Stored as a new run if that is no longer
    /// the host's current one (another server recorded a verdict in between).
    pub repeats: Option<String>,
}

/// A pending enrollment challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The agent id it was made for.
    pub agent_id: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The registration request (JSON).
    pub registration: String,
    /// Unix ms.
    pub expires_at: i64,
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
    /// A uniqueness rule refused the write (a name or TPM another host holds); says which.
    #[error("{0}")]
    Conflict(String),
    /// A stored value does not decode (a corrupted row).
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// What.
        what: &'static str,
    },
}

pub use trustpool_api::time::now_ms;

/// A random 128-bit id, hex.
#[must_use]
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    trustpool_api::bytes::to_hex(&bytes)
}
