//! A whole trusted compute pool on one machine — the harness of `trustpool dev up`,
//! `make demo` and the end-to-end tests: a test PKI, the attestation server, the
//! scheduler, and N agents each on its own swtpm with its own measured-boot manifest
//! (K of them with a tampered BIOS), real processes of the real binaries. `up` waits until
//! the golden policy (imported from a good host) is in force and every host has its
//! verdict at the scheduler.
//!
//! Everything lives in one directory (`DIR`): configs, `nova.conf`, `ca.crt`, tokens, an
//! `env` file for the CLI, SQLite databases, TPM state, logs, and `pool.json` (what runs
//! where, for `trustpool dev down`).

mod detached;
mod files;
pub mod process;
mod settle;

pub use detached::{down_dir, tamper_dir};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use trustpool_client::{AdminClient, ComputeClient, TlsOptions};

use crate::pki::TestPki;
use crate::ports::free_port;
use crate::swtpm::Swtpm;
use files::{AgentFile, AttestationFile, Tokens};
use process::{Bins, stop_child};

/// What to start.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Compute hosts.
    pub hosts: usize,
    /// How many of them (the last ones) boot a tampered BIOS.
    pub tampered: usize,
    /// Where everything goes (emptied first).
    pub dir: PathBuf,
    /// A PostgreSQL URL for both servers instead of SQLite files in `dir`.
    pub postgres: Option<String>,
    /// Where the binaries are (default: next to the running executable).
    pub bin_dir: Option<PathBuf>,
    /// The attestation interval, seconds.
    pub interval_secs: u64,
}

impl PoolSpec {
    /// `hosts` hosts, `tampered` of them tampered, in `dir`, SQLite, 3 s interval.
    #[must_use]
    pub fn new(hosts: usize, tampered: usize, dir: &Path) -> Self {
        Self {
            hosts,
            tampered,
            dir: dir.to_path_buf(),
            postgres: None,
            bin_dir: None,
            interval_secs: 3,
        }
    }
}

/// One compute host of the pool.
#[derive(Debug)]
pub struct Host {
    /// `compute-N`.
    pub name: String,
    /// Booted the tampered BIOS at start.
    pub tampered: bool,
    /// The agent's HTTPS port.
    pub agent_port: u16,
    tpm: Option<Swtpm>,
    agent: Option<Child>,
}

/// A running pool.
#[derive(Debug)]
pub struct Pool {
    /// Its directory.
    pub dir: PathBuf,
    /// The attestation server's port.
    pub attestation_port: u16,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// The hosts.
    pub hosts: Vec<Host>,
    /// The admin token (both servers).
    pub admin_token: String,
    attestation: Option<Child>,
    scheduler: Option<Child>,
    bins: Bins,
}

const GRACE: Duration = Duration::from_secs(10);

impl Pool {
    /// Starts everything and waits until the pool is in force: every host enrolled,
    /// reporting, and appraised against the golden policy imported from the first good
    /// host; the scheduler seeing each level.
    ///
    /// # Errors
    /// What did not start or did not happen in time (logs in `DIR/logs`).
    pub async fn up(spec: &PoolSpec) -> anyhow::Result<Self> {
        if spec.hosts == 0 || spec.tampered >= spec.hosts {
            bail!("a pool needs at least one host that is not tampered (--hosts > --tampered)");
        }
        if !crate::swtpm::available() {
            bail!(
                "swtpm, swtpm_setup, swtpm_localca and tpm2-tools are needed (scripts/install-deps.sh installs them)"
            );
        }
        let bins = Bins::find(spec.bin_dir.as_deref())?;
        let dir = std::path::absolute(&spec.dir)?;
        if let Ok(text) = std::fs::read_to_string(dir.join("pool.json")) {
            let running: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let pids = running["pids"].as_object().cloned().unwrap_or_default();
            if pids
                .values()
                .filter_map(serde_json::Value::as_u64)
                .any(|p| process::alive(u32::try_from(p).unwrap_or(0)))
            {
                bail!(
                    "a pool is already running in {} (trustpool dev down --dir {0})",
                    dir.display()
                );
            }
        }
        for sub in ["hosts", "logs", "pki"] {
            let _ = std::fs::remove_dir_all(dir.join(sub));
        }
        for file in ["attestation.db", "scheduler.db", "pool.json"] {
            let _ = std::fs::remove_file(dir.join(file));
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Two trust roots: one for TLS servers (agents, attestation server, scheduler), one
        // that issues only the attestation server's client certificate — the one client
        // every agent serves (it also pins that certificate's key).
        let pki = TestPki::new(&dir.join("pki"), "trustpool dev pool CA");
        std::fs::copy(pki.ca_cert(), dir.join("ca.crt"))?;
        let _ = pki.issue("server", &["localhost", "127.0.0.1"]);
        let client_pki = TestPki::new(
            &dir.join("pki").join("server-client"),
            "trustpool dev pool: attestation server client CA",
        );
        let _ = client_pki.issue_client("attestation-client", "trustpool-attestation");
        let tokens = Tokens {
            admin: files::new_token(),
            read: files::new_token(),
        };
        std::fs::write(dir.join("admin.token"), format!("{}\n", tokens.admin))?;
        std::fs::write(dir.join("read.token"), format!("{}\n", tokens.read))?;
        let (attestation_port, scheduler_port) = (free_port(), free_port());

        // One swtpm per host, with its EK certificate from its own swtpm-localca.
        let mut hosts = Vec::new();
        for i in 0..spec.hosts {
            let name = format!("compute-{}", i + 1);
            let host_dir = dir.join("hosts").join(&name);
            let tpm = Swtpm::start_in(&host_dir.join("tpm"));
            let tampered = i >= spec.hosts - spec.tampered;
            let manifest = if tampered {
                files::TAMPERED_BIOS
            } else {
                files::KNOWN_GOOD
            };
            std::fs::write(host_dir.join("boot.toml"), manifest)?;
            let _ = pki.issue_server(&name, &["127.0.0.1", "localhost"]);
            hosts.push(Host {
                name,
                tampered,
                agent_port: free_port(),
                tpm: Some(tpm),
                agent: None,
            });
        }
        let ek_cas: Vec<PathBuf> = hosts
            .iter()
            .filter_map(|h| h.tpm.as_ref())
            .flat_map(|t| [t.ca_root(), t.dir().join("ca/state/issuercert.pem")])
            .collect();
        let sqlite = |file: &str| format!("sqlite://{}", dir.join(file).display());
        let attestation_db = spec
            .postgres
            .clone()
            .unwrap_or_else(|| sqlite("attestation.db"));
        let scheduler_db = spec
            .postgres
            .clone()
            .unwrap_or_else(|| format!("sqlite:///{}", dir.join("scheduler.db").display()));
        std::fs::write(
            dir.join("attestation.toml"),
            files::attestation_toml(&AttestationFile {
                dir: &dir,
                port: attestation_port,
                database_url: &attestation_db,
                ek_cas: &ek_cas,
                interval_secs: spec.interval_secs,
                tokens: &tokens,
            }),
        )?;
        std::fs::write(
            dir.join("nova.conf"),
            files::nova_conf(
                &dir,
                scheduler_port,
                attestation_port,
                &scheduler_db,
                &tokens,
            ),
        )?;
        std::fs::write(
            dir.join("env"),
            files::env_file(&dir, attestation_port, scheduler_port, &tokens),
        )?;
        for h in &hosts {
            let tcti = h.tpm.as_ref().map(Swtpm::tcti).unwrap_or_default();
            std::fs::write(
                dir.join("hosts").join(&h.name).join("agent.toml"),
                files::agent_toml(&AgentFile {
                    dir: &dir,
                    name: &h.name,
                    tcti: &tcti,
                    port: h.agent_port,
                    attestation_port,
                    scheduler_port,
                    memory_mb: 8192,
                }),
            )?;
        }
        let mut pool = Self {
            dir,
            attestation_port,
            scheduler_port,
            hosts,
            admin_token: tokens.admin,
            attestation: None,
            scheduler: None,
            bins,
        };
        pool.start_attestation()?;
        pool.start_scheduler()?;
        if let Err(e) = pool.hand_out_enrollment_tokens().await {
            pool.down();
            return Err(e);
        }
        if let Err(e) = pool.hand_out_compute_tokens().await {
            pool.down();
            return Err(e);
        }
        for i in 0..pool.hosts.len() {
            pool.start_agent_at(i)?;
        }
        if let Err(e) = pool.settle().await {
            pool.down();
            return Err(e);
        }
        pool.write_state()?;
        Ok(pool)
    }

    /// The attestation server's v1 API as an administrator.
    ///
    /// # Errors
    /// TLS setup.
    pub fn admin(&self) -> anyhow::Result<AdminClient> {
        Ok(AdminClient::new(
            &format!("https://127.0.0.1:{}", self.attestation_port),
            &self.tls()?,
            Some(self.admin_token.clone()),
            Duration::from_secs(30),
        )?)
    }

    /// What an operator does before a host's agent first starts: `trustpool host-add NAME`
    /// on the attestation server, the token into the host's `enrollment.token`.
    async fn hand_out_enrollment_tokens(&self) -> anyhow::Result<()> {
        let admin = self.admin()?;
        for h in &self.hosts {
            let request = trustpool_api::v1::AddHost {
                host_name: h.name.clone(),
                aliases: Vec::new(),
                ek_certificate_sha256: None,
                valid_hours: None,
            };
            let grant = settle::wait_for(
                "the attestation server to take host-add",
                Duration::from_secs(30),
                || async { admin.add_host(&request).await.map_err(|e| e.to_string()) },
            )
            .await?;
            std::fs::write(
                self.dir
                    .join("hosts")
                    .join(&h.name)
                    .join("enrollment.token"),
                format!("{}\n", grant.token),
            )?;
        }
        Ok(())
    }

    /// The scheduler's compute API as an administrator.
    ///
    /// # Errors
    /// TLS setup.
    pub fn compute(&self) -> anyhow::Result<ComputeClient> {
        Ok(ComputeClient::new(
            &format!("https://127.0.0.1:{}", self.scheduler_port),
            &self.tls()?,
            Some(self.admin_token.clone()),
            Duration::from_secs(30),
        )?)
    }

    /// What an operator does before a host's agent first reports: `trustpool
    /// hypervisor-create NAME` on the scheduler, the token into the host's
    /// `compute.token` (its agent's `[scheduler] token_file`).
    async fn hand_out_compute_tokens(&self) -> anyhow::Result<()> {
        let compute = self.compute()?;
        for h in &self.hosts {
            let created = settle::wait_for(
                "the scheduler to take hypervisor-create",
                Duration::from_secs(30),
                || async {
                    compute
                        .create_hypervisor(&h.name)
                        .await
                        .map_err(|e| e.to_string())
                },
            )
            .await?;
            std::fs::write(
                self.dir.join("hosts").join(&h.name).join("compute.token"),
                format!("{}\n", created.compute_token),
            )?;
        }
        Ok(())
    }

    fn tls(&self) -> anyhow::Result<TlsOptions> {
        Ok(TlsOptions {
            ca_pem: Some(std::fs::read_to_string(self.dir.join("ca.crt"))?),
            identity: None,
        })
    }

    fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// Starts (again) the attestation server.
    ///
    /// # Errors
    /// When it cannot start.
    pub fn start_attestation(&mut self) -> anyhow::Result<()> {
        let config = self.dir.join("attestation.toml").display().to_string();
        self.attestation = Some(self.bins.spawn(
            "trustpool-attestation",
            &["run", "--config", &config],
            &self.logs(),
            "attestation",
        )?);
        Ok(())
    }

    /// Stops the attestation server (SIGTERM).
    pub fn stop_attestation(&mut self) {
        if let Some(mut c) = self.attestation.take() {
            stop_child(&mut c, GRACE);
        }
    }

    fn start_scheduler(&mut self) -> anyhow::Result<()> {
        let config = self.dir.join("nova.conf").display().to_string();
        self.scheduler = Some(self.bins.spawn(
            "trustpool-scheduler",
            &["--config-file", &config],
            &self.logs(),
            "scheduler",
        )?);
        Ok(())
    }

    fn index(&self, name: &str) -> anyhow::Result<usize> {
        self.hosts
            .iter()
            .position(|h| h.name == name)
            .ok_or_else(|| anyhow!("no host {name} in this pool"))
    }

    fn start_agent_at(&mut self, i: usize) -> anyhow::Result<()> {
        let logs = self.logs();
        let host = self
            .hosts
            .get_mut(i)
            .ok_or_else(|| anyhow!("no host #{i}"))?;
        let config = self.dir.join("hosts").join(&host.name).join("agent.toml");
        let child = self.bins.spawn(
            "trustpool-agent",
            &["run", "--config", &config.display().to_string()],
            &logs,
            &host.name,
        )?;
        host.agent = Some(child);
        Ok(())
    }

    /// Starts a host's agent (which first emulates its measured boot from its manifest).
    ///
    /// # Errors
    /// An unknown host, or the agent cannot start.
    pub fn start_agent(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self.index(name)?;
        self.start_agent_at(i)
    }

    /// Stops a host's agent: the host goes silent.
    ///
    /// # Errors
    /// An unknown host.
    pub fn stop_agent(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self.index(name)?;
        if let Some(mut c) = self.hosts.get_mut(i).and_then(|h| h.agent.take()) {
            stop_child(&mut c, GRACE);
        }
        Ok(())
    }

    /// Tampers a host live: its manifest gets the tampered BIOS and it reboots (the agent
    /// restarts, power-cycling its swtpm and measuring the new boot).
    ///
    /// # Errors
    /// An unknown host, or the agent cannot restart.
    pub fn tamper(&mut self, name: &str) -> anyhow::Result<()> {
        self.stop_agent(name)?;
        std::fs::write(
            self.dir.join("hosts").join(name).join("boot.toml"),
            files::TAMPERED_BIOS,
        )?;
        self.start_agent(name)
    }

    /// What runs where, for the terminal.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut out = format!(
            "trusted compute pool in {}\n\n  {:<24} {:<30} {}\n",
            self.dir.display(),
            "PART",
            "WHERE",
            "NOTE"
        );
        let line = |out: &mut String, a: &str, b: &str, c: &str| {
            out.push_str(&format!("  {a:<24} {b:<30} {c}\n"));
        };
        line(
            &mut out,
            "attestation server",
            &format!("https://127.0.0.1:{}", self.attestation_port),
            "PollHosts at /AttestationService/resources; /dashboard (password: read.token)",
        );
        line(
            &mut out,
            "scheduler (compute API)",
            &format!("https://127.0.0.1:{}/v2.1", self.scheduler_port),
            "FilterScheduler + TrustedFilter",
        );
        for h in &self.hosts {
            let tcti = h.tpm.as_ref().map(Swtpm::tcti).unwrap_or_default();
            let note = if h.tampered {
                "agent + swtpm, TAMPERED BIOS"
            } else {
                "agent + swtpm, known-good boot"
            };
            line(
                &mut out,
                &h.name,
                &format!("https://127.0.0.1:{}", h.agent_port),
                &format!("{note} ({tcti})"),
            );
        }
        out.push_str(&format!(
            "\n  CLI:      source {}/env   (then: trustpool host-list, trustpool hypervisor-list …)\n  Nova:     {}/nova.conf  (CA: {}/ca.crt)\n  logs:     {}/logs/\n",
            self.dir.display(),
            self.dir.display(),
            self.dir.display(),
            self.dir.display()
        ));
        out
    }

    fn pids(&self) -> BTreeMap<String, u32> {
        let mut pids = BTreeMap::new();
        for h in &self.hosts {
            if let Some(c) = &h.agent {
                pids.insert(format!("agent {}", h.name), c.id());
            }
        }
        if let Some(c) = &self.scheduler {
            pids.insert("scheduler".to_owned(), c.id());
        }
        if let Some(c) = &self.attestation {
            pids.insert("attestation".to_owned(), c.id());
        }
        for h in &self.hosts {
            if let Some(t) = &h.tpm {
                pids.insert(format!("swtpm {}", h.name), t.pid());
            }
        }
        pids
    }

    fn write_state(&self) -> anyhow::Result<()> {
        let state = json!({
            "attestation_port": self.attestation_port,
            "scheduler_port": self.scheduler_port,
            "hosts": self.hosts.iter().map(|h| &h.name).collect::<Vec<_>>(),
            "pids": self.pids(),
        });
        std::fs::write(
            self.dir.join("pool.json"),
            serde_json::to_string_pretty(&state)?,
        )?;
        Ok(())
    }

    /// Leaves everything running (`trustpool dev up --detach`); `down_dir` stops it.
    ///
    /// # Errors
    /// When `pool.json` cannot be written.
    pub fn detach(mut self) -> anyhow::Result<PathBuf> {
        self.write_state()?;
        let dir = self.dir.clone();
        for h in &mut self.hosts {
            if let Some(t) = h.tpm.take() {
                let _ = t.detach();
            }
            drop(h.agent.take());
        }
        drop(self.attestation.take());
        drop(self.scheduler.take());
        Ok(dir)
    }

    /// Stops everything cleanly: agents (they flush their keys), the scheduler, the
    /// attestation server, then the swtpms.
    pub fn down(self) {
        let state = self.dir.join("pool.json");
        // Drop stops the processes in that order; the swtpm handles go last with the hosts.
        drop(self);
        let _ = std::fs::remove_file(state);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            if let Some(mut c) = h.agent.take() {
                stop_child(&mut c, GRACE);
            }
        }
        for c in [self.scheduler.take(), self.attestation.take()]
            .iter_mut()
            .flatten()
        {
            stop_child(c, GRACE);
        }
    }
}
