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

/// `POST /v1/hosts` (administrator): lets a new host enroll under `host_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddHost {
    /// The name (a DNS name, as Nova knows the host).
    pub host_name: String,
    /// Other names PollHosts may ask by (at most 16, unique across the fleet).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The SHA-256 (hex) of the TPM's EK certificate (DER). When given, only that TPM may
    /// take the name, and it needs no token.
    #[serde(default)]
    pub ek_certificate_sha256: Option<String>,
    /// How long the credential is usable (default 24 hours, at most 30 days).
    #[serde(default)]
    pub valid_hours: Option<u32>,
}

/// `POST /v1/hosts/{name}/re-enroll` (administrator): lets an enrolled host enroll again —
/// with another TPM (its EK certificate named here), or with the same TPM and a new AK,
/// agent URL or agent certificate. Policies and approval carry over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reenroll {
    /// SHA-256 (hex) of the new TPM's EK certificate; absent: the same TPM only.
    #[serde(default)]
    pub ek_certificate_sha256: Option<String>,
    /// How long the window is open (default 1 hour).
    #[serde(default)]
    pub valid_hours: Option<u32>,
}

/// An enrollment credential, as shown once to the administrator who made it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentGrant {
    /// The name it is bound to.
    pub host_name: String,
    /// The single-use bootstrap token: the agent reads it from its
    /// `[server] enrollment_token_file`. Shown only here.
    pub token: String,
    /// The EK certificate the name is bound to, if the administrator named one.
    pub ek_certificate_sha256: Option<String>,
    /// Aliases the host gets when it enrolls.
    pub aliases: Vec<String>,
    /// Until when it is usable (RFC 3339).
    pub expires: String,
}

impl std::fmt::Debug for EnrollmentGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentGrant")
            .field("host_name", &self.host_name)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// `PUT /v1/hosts/{name}/aliases` (administrator): the host's other names, replacing the
/// old ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAliases {
    /// At most 16 DNS names, unique across every host's names and aliases.
    pub aliases: Vec<String>,
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
