//! One enrolled host as the server holds it in memory: what attesting it needs, prepared
//! once per version of its database row (the AK parsed and its attributes checked, the
//! pinned agent certificate decoded, its names), and what the server has learned since
//! (the latest verdict, the TPM clock of the last verified quote, the digest of the
//! evidence last stored). The bulky enrollment material (EK, certificates in PEM) is not
//! kept: at 100,000 hosts every byte per host is 100 kB.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use trustpool_api::oat::TrustLevel;
use trustpool_evidence::{AttestationKey, ClockInfo, Public, VerifyOptions};

use crate::store::{HostRecord, VerdictRecord};

/// How far ahead of this server's clock a verdict may be dated and still count.
pub const MAX_CLOCK_SKEW_MS: i64 = 60_000;

/// How a name designates a host, strongest first: when two hosts claim one name, the
/// strongest claim wins and a tie designates neither (an ambiguous name is `unknown`,
/// never another host's verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameKind {
    /// The registered host name (unique in the database).
    HostName,
    /// An alias the agent registered.
    Alias,
    /// The host name's first label (`node1` for `node1.example.com`).
    ShortName,
}

/// The latest verdict of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    /// The level.
    pub level: TrustLevel,
    /// When (Unix ms).
    pub at: i64,
    /// Why not trusted.
    pub reasons: Vec<String>,
}

#[derive(Debug, Default)]
struct Learned {
    latest: Option<Latest>,
    clock: Option<ClockInfo>,
    evidence: Option<[u8; 32]>,
    /// The stored run of this host's current verdict and the digest of its content.
    run: Option<(String, [u8; 32])>,
}

/// An enrolled host, prepared for attestation.
#[derive(Debug)]
pub struct FleetHost {
    /// Hex of the AK Name.
    pub agent_id: Arc<str>,
    /// The registered name.
    pub host_name: String,
    /// Every name PollHosts may ask for, with how it designates this host.
    pub names: Vec<(String, NameKind)>,
    /// The agent's base URL.
    pub agent_url: String,
    /// Names of the accepted policies (any-of).
    pub policies: Vec<String>,
    /// The row version this was prepared from (`hosts.updated_at`).
    pub updated_at: i64,
    /// When an administrator last accepted a TPM clock rollback (no baseline before it).
    pub clock_reset_at: Option<i64>,
    key: Result<Arc<AttestationKey>, String>,
    pin: Option<Arc<[u8]>>,
    learned: Mutex<Learned>,
}

impl FleetHost {
    /// Prepares a host from its database row. An unusable AK or agent certificate is kept
    /// as the reason every attestation of this host will fail with (never skipped).
    #[must_use]
    pub fn prepare(record: &HostRecord) -> Self {
        let key = Public::parse_tpm2b(&record.ak_public)
            .map_err(|e| format!("enrolled AK: {e}"))
            .and_then(|public| {
                AttestationKey::new(public, VerifyOptions::default())
                    .map_err(|e| format!("enrolled AK: {e}"))
            })
            .map(Arc::new);
        let pin =
            trustpool_client::tls::certificates(&record.agent_certificate, "agent certificate")
                .ok()
                .and_then(|chain| chain.into_iter().next())
                .map(|leaf| Arc::from(leaf.as_ref()));
        Self {
            agent_id: Arc::from(record.agent_id.as_str()),
            host_name: record.host_name.clone(),
            names: names(record),
            agent_url: record.agent_url.clone(),
            policies: record.policies.clone(),
            updated_at: record.updated_at,
            clock_reset_at: record.clock_reset_at,
            key,
            pin,
            learned: Mutex::default(),
        }
    }

    /// Keeps what was learned about the previous version of this host (same agent id).
    pub fn carry_over(&self, previous: &Self) {
        let mut old = std::mem::take(&mut *previous.learned());
        if self.clock_reset_at != previous.clock_reset_at {
            // An administrator accepted a clock rollback: the old baseline goes.
            old.clock = None;
        }
        *self.learned() = old;
    }

    fn learned(&self) -> MutexGuard<'_, Learned> {
        // The guarded data is plain values, consistent after any panic.
        self.learned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The enrolled AK, or why it is unusable.
    ///
    /// # Errors
    /// The reason, for the verdict.
    pub fn key(&self) -> Result<Arc<AttestationKey>, String> {
        self.key.clone()
    }

    /// The leaf certificate (DER) the agent registered, which it must present.
    #[must_use]
    pub fn pinned_certificate(&self) -> Option<Arc<[u8]>> {
        self.pin.clone()
    }

    /// The latest verdict known (`at`: its latest attestation).
    #[must_use]
    pub fn latest(&self) -> Option<Latest> {
        self.learned().latest.clone()
    }

    /// The level now: the latest verdict's if younger than `ttl_ms`, else unknown. A
    /// verdict dated more than [`MAX_CLOCK_SKEW_MS`] ahead (a server sharing the database
    /// with a wrong clock) is unknown too: it would otherwise outlive every later verdict.
    #[must_use]
    pub fn level_at(&self, now_ms: i64, ttl_ms: i64) -> TrustLevel {
        match &self.learned().latest {
            Some(l)
                if now_ms.saturating_sub(l.at) <= ttl_ms
                    && l.at.saturating_sub(now_ms) <= MAX_CLOCK_SKEW_MS =>
            {
                l.level
            }
            _ => TrustLevel::Unknown,
        }
    }

    /// Records a verdict unless a later one is known; returns the level it replaced
    /// (`None` for the first) when it was recorded.
    pub fn record(&self, verdict: &VerdictRecord) -> Option<Option<TrustLevel>> {
        let mut learned = self.learned();
        let previous = learned.latest.as_ref().map(|l| (l.level, l.at));
        if previous.is_some_and(|(_, at)| at > verdict.until) {
            return None;
        }
        learned.latest = Some(Latest {
            level: verdict.level,
            at: verdict.until,
            reasons: verdict.reasons.clone(),
        });
        Some(previous.map(|(level, _)| level))
    }

    /// The TPM clock of the last verified quote, if this server saw one.
    #[must_use]
    pub fn clock(&self) -> Option<ClockInfo> {
        self.learned().clock
    }

    /// Remembers the TPM clock of a verified quote.
    pub fn set_clock(&self, clock: ClockInfo) {
        self.learned().clock = Some(clock);
    }

    /// The stored run a verdict with this content digest would repeat.
    #[must_use]
    pub fn run_repeated_by(&self, content: &[u8; 32]) -> Option<String> {
        match &self.learned().run {
            Some((id, digest)) if digest == content => Some(id.clone()),
            _ => None,
        }
    }

    /// Remembers the run the latest verdict was stored in.
    pub fn set_run(&self, id: String, content: [u8; 32]) {
        self.learned().run = Some((id, content));
    }

    /// Whether the evidence with this digest is the one last stored.
    #[must_use]
    pub fn evidence_stored(&self, digest: &[u8; 32]) -> bool {
        self.learned().evidence.as_ref() == Some(digest)
    }

    /// Remembers the digest of the evidence just stored.
    pub fn set_evidence_stored(&self, digest: [u8; 32]) {
        self.learned().evidence = Some(digest);
    }
}

fn names(record: &HostRecord) -> Vec<(String, NameKind)> {
    let mut names = vec![(record.host_name.clone(), NameKind::HostName)];
    for alias in &record.aliases {
        if names.iter().all(|(n, _)| n != alias) {
            names.push((alias.clone(), NameKind::Alias));
        }
    }
    if let Some((short, _)) = record.host_name.split_once('.')
        && names.iter().all(|(n, _)| n != short)
    {
        names.push((short.to_owned(), NameKind::ShortName));
    }
    names
}
