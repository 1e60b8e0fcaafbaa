//! The attestation server's native v1 API (JSON; admin bearer tokens for writes, read
//! tokens for reads).

use serde::{Deserialize, Serialize};

use crate::oat::TrustLevel;

/// A host as `GET /v1/hosts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    /// Name as Nova knows it.
    pub host_name: String,
    /// Hex of the AK Name.
    pub agent_id: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// `enrolled`, `pending_approval`.
    pub state: String,
    /// Current trust level (unknown when the verdict is older than the TTL).
    pub trust_lvl: TrustLevel,
    /// When the latest verdict was made (RFC 3339), if any.
    pub vtime: Option<String>,
    /// The policy that matched (`name@version`) when trusted.
    pub policy: Option<String>,
    /// Why not trusted.
    pub reasons: Vec<String>,
    /// Accepted policies.
    pub policies: Vec<String>,
    /// Software TPM (development).
    pub software_tpm: bool,
    /// Agent URL.
    pub agent_url: String,
}

/// One verdict in a host's history: identical consecutive verdicts are one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictView {
    /// RFC 3339: when this outcome was first reached.
    pub at: String,
    /// RFC 3339: its latest attestation (absent from servers before runs existed).
    #[serde(default)]
    pub until: Option<String>,
    /// Attestations with this outcome in a row.
    #[serde(default = "one")]
    pub repeats: i64,
    /// Level.
    pub trust_lvl: TrustLevel,
    /// Matching policy.
    pub policy: Option<String>,
    /// Reasons.
    pub reasons: Vec<String>,
    /// TPM resetCount.
    pub reset_count: Option<i64>,
}

fn one() -> i64 {
    1
}

/// `PUT /v1/hosts/{name}/policies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignPolicies {
    /// Accepted policy names (any-of).
    pub policies: Vec<String>,
}

/// One event of `GET /v1/trust/stream` (server-sent events, event name `trust`): the level
/// of the names it lists changed (or, on connect, the current level of every host).
///
/// The names are exactly those that designate the host under the server's one resolution
/// rule (registered name, then administrator-set alias, then the name's first label; a tie
/// designates nobody) — the rule PollHosts answers by. When a name stops designating a
/// host (alias removed, host deleted, a tie appeared), the server sends a change for that
/// name alone, `unknown`, with empty `aliases`. A subscriber writes the level into the
/// slots of these names only, and only into slots it has (its own compute nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustChange {
    /// The host's registered name (or the name that stopped designating a host).
    pub host_name: String,
    /// The other names that designate this host now (never one that designates another).
    pub aliases: Vec<String>,
    /// New level.
    pub trust_lvl: TrustLevel,
    /// When (RFC 3339).
    pub vtime: String,
    /// Why not trusted.
    pub reasons: Vec<String>,
}
