//! Use cases, with no HTTP types: enrollment ([`enroll`]), attestation of one host
//! ([`attest`]), the scheduler of challenges ([`challenger`]), the trust cache PollHosts
//! reads ([`cache`]), and the known-good database ([`policies`]).

pub mod attest;
pub mod cache;
pub mod challenger;
pub mod ear;
pub mod enroll;
pub mod evidence;
pub mod fleet;
pub mod identity;
pub mod maintenance;
pub mod metrics;
pub mod policies;
pub mod rate;

use std::sync::{Arc, RwLock};

use trustpool_client::{Identity, TlsOptions};

use crate::config::Config;
use crate::ekcert::EkCaStore;
use crate::store::{Store, StoreError};

/// What a use case can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The request's evidence or keys are unusable.
    #[error("{0}")]
    Rejected(String),
    /// The EK certificate is refused.
    #[error("EK certificate refused")]
    EkCertificate(#[from] crate::ekcert::EkCertError),
    /// Policy says no (software TPM, unknown CA kind …).
    #[error("{0}")]
    Forbidden(String),
    /// Conflicts with the current state (host bound to another EK …).
    #[error("{0}")]
    Conflict(String),
    /// No such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// A policy document is invalid.
    #[error("invalid policy")]
    Policy(#[from] trustpool_policy::PolicyError),
    /// Too many requests of this kind right now (retry later).
    #[error("{0}")]
    TooMany(String),
    /// A name or field is not acceptable (the message names the field).
    #[error("{0}")]
    BadRequest(String),
    /// Storage failed.
    #[error("storage failure")]
    Store(#[source] StoreError),
}

impl From<StoreError> for ServiceError {
    /// A uniqueness conflict is the caller's (409, naming what), anything else the server's.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(other),
        }
    }
}

impl From<trustpool_api::names::NameError> for ServiceError {
    fn from(e: trustpool_api::names::NameError) -> Self {
        Self::BadRequest(e.to_string())
    }
}

/// Shared by handlers and background tasks.
#[derive(Debug)]
pub struct Service {
    /// The database.
    pub store: Store,
    /// The configuration.
    pub config: Arc<Config>,
    /// EK CAs and their CRLs (re-read hourly: see [`maintenance`]).
    pub ek_cas: RwLock<Arc<EkCaStore>>,
    /// Hosts whose EK certificate no longer validates (revoked by a refreshed CRL, expired,
    /// its CA removed), by agent id, with the reason: they are untrusted until it validates
    /// again or they re-enroll.
    pub ek_refused: RwLock<std::collections::HashMap<String, String>>,
    /// The enrolled hosts in memory and PollHosts' view of them.
    pub cache: cache::TrustCache,
    /// One connection pool for all agents.
    pub agent_pool: trustpool_client::HttpsPool,
    /// The latest policies, parsed, and the number of stored policy versions they were
    /// read at: re-read only when a version is added (here, or by another server).
    pub policy_cache: RwLock<Option<(i64, Arc<Vec<trustpool_policy::Policy>>)>>,
    /// Registrations and activation proofs allowed per second (429 beyond).
    pub enrollment_bucket: rate::Bucket,
    /// The same, per client address.
    pub enrollment_sources: rate::PerSource,
    /// Prometheus counters.
    pub metrics: metrics::Metrics,
    /// Verdicts waiting for the group-commit writer.
    pub verdict_writer: tokio::sync::mpsc::Sender<(
        crate::store::VerdictWrite,
        tokio::sync::oneshot::Sender<Option<String>>,
    )>,
    /// Signs EAR results.
    pub signer: ear::ResultSigner,
    /// Trust-level changes, for the `/v1/trust/stream` subscribers.
    pub changes: tokio::sync::broadcast::Sender<trustpool_api::v1::TrustChange>,
}

impl Service {
    /// The EK CAs and CRLs as last loaded.
    #[must_use]
    pub fn ek_cas(&self) -> Arc<EkCaStore> {
        self.ek_cas
            .read()
            .map_or_else(|p| p.into_inner().clone(), |g| g.clone())
    }

    /// Opens the database and loads CA files.
    ///
    /// # Errors
    /// What failed, with context.
    pub async fn new(config: Config) -> anyhow::Result<Arc<Self>> {
        let registrations = config.max_registrations_per_second;
        let per_source = config.max_registrations_per_source_per_second;
        use anyhow::Context as _;
        let store = Store::connect(&config.database_url.0)
            .await
            .context("opening the database")?;
        let ek_cas =
            EkCaStore::load(&config.ek_ca, &config.dev_ek_ca)?.with_crls(&config.ek_crl)?;
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let agent_tls = TlsOptions {
            ca_pem: Some(read(&config.agents_ca)?),
            identity: Some(Identity {
                cert_chain_pem: read(&config.agents_client_cert)?,
                key_pem: read(&config.agents_client_key)?,
            }),
        };
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let signer = ear::ResultSigner::load_or_create(&config.result_signing_key)?;
        let agent_pool = trustpool_client::HttpsPool::new(&agent_tls, config.agent_timeout)?;
        let verdict_writer = spawn_verdict_writer(store.clone());
        let service = Arc::new(Self {
            store,
            config: Arc::new(config),
            ek_cas: RwLock::new(Arc::new(ek_cas)),
            ek_refused: RwLock::default(),
            cache: cache::TrustCache::default(),
            agent_pool,
            policy_cache: RwLock::default(),
            enrollment_bucket: rate::Bucket::new(
                f64::from(registrations),
                f64::from(registrations) * 2.0,
            ),
            enrollment_sources: rate::PerSource::new(
                f64::from(per_source),
                f64::from(per_source) * 2.0,
            ),
            metrics: metrics::Metrics::default(),
            signer,
            verdict_writer,
            changes,
        });
        service.fill_ek_keys().await?;
        service.cache.sync(&service.store).await?;
        Ok(service)
    }

    /// Stores the EK key fingerprint of hosts enrolled before it was kept (one TPM, one
    /// name). A host whose EK is another's is logged loudly: an administrator deletes one.
    async fn fill_ek_keys(&self) -> Result<(), StoreError> {
        for (agent_id, ek_public) in self.store.hosts_without_ek_key().await? {
            let key = match enroll::ek_key_sha256(&ek_public) {
                Ok(key) => key,
                Err(e) => {
                    tracing::error!(agent_id, error = %e, "enrolled EK unreadable");
                    continue;
                }
            };
            match self.store.set_ek_key(&agent_id, &key).await {
                Ok(()) => {}
                Err(StoreError::Conflict(what)) => {
                    tracing::error!(
                        agent_id,
                        "{what}: delete one of the two hosts (one TPM, one name)"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Brings the enrolled hosts, the trust cache and the parsed policies up to date with
    /// the database and tells stream subscribers what changed.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn refresh_cache(&self) -> Result<(), StoreError> {
        // Policies are append-only (each change a new version): a new count, a new set.
        let versions = self.store.policy_versions().await?;
        if let Ok(mut p) = self.policy_cache.write()
            && p.as_ref().is_some_and(|(count, _)| *count != versions)
        {
            *p = None;
        }
        for change in self.cache.sync(&self.store).await? {
            let _ = self.changes.send(change);
        }
        Ok(())
    }
}

/// Most verdicts written in one transaction.
const MAX_BATCH: usize = 512;

/// The group-commit writer: verdicts arriving together share one transaction (one fsync
/// for many), and each sender is told the id its verdict is durable under (`None`: not
/// stored).
fn spawn_verdict_writer(
    store: Store,
) -> tokio::sync::mpsc::Sender<(
    crate::store::VerdictWrite,
    tokio::sync::oneshot::Sender<Option<String>>,
)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(
        crate::store::VerdictWrite,
        tokio::sync::oneshot::Sender<Option<String>>,
    )>(4096);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let (verdicts, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match store.record_verdicts(&verdicts).await {
                Ok(ids) => {
                    for (ack, id) in acks.into_iter().zip(ids) {
                        let _ = ack.send(Some(id));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), verdicts = verdicts.len(), "verdicts not stored");
                    for ack in acks {
                        let _ = ack.send(None);
                    }
                }
            }
        }
    });
    tx
}
