//! The scheduler over HTTPS: the compute API on SQLite and PostgreSQL, the TrustedFilter
//! against a real `PollHosts` endpoint, and (feature `swtpm`) the seed's workflow with a
//! real attestation server and real agents on swtpm.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api;
mod check_config;
#[cfg(feature = "swtpm")]
mod e2e;
mod nodes;
mod trust;

use std::path::PathBuf;
use std::time::Duration;

use trustpool_api::compute::HostReport;
use trustpool_client::{ComputeClient, TlsOptions};
use trustpool_scheduler::RunningScheduler;
use trustpool_scheduler::conf::Config;
use trustpool_testkit::pki::TestPki;

pub(crate) const ADMIN: &str = "admin-token";
pub(crate) const READER: &str = "read-token";

pub(crate) fn sha256_hex(s: &str) -> String {
    trustpool_api::bytes::to_hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref(),
    )
}

pub(crate) use trustpool_testkit::ports::free_port;

/// A directory with a test PKI (server certificate for 127.0.0.1 / localhost).
pub(crate) struct Harness {
    pub(crate) dir: PathBuf,
    pub(crate) pki: TestPki,
}

/// The `[trusted_computing]` section a test points the scheduler at.
pub(crate) struct Attestation {
    pub(crate) port: u16,
    pub(crate) api_url: &'static str,
    pub(crate) auth_blob: Option<&'static str>,
    pub(crate) timeout_secs: u64,
    pub(crate) stream_token: Option<String>,
}

impl Harness {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "trustpool-sched-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = TestPki::new(&dir.join("pki"), "trustpool scheduler test CA");
        let _ = pki.issue("server", &["localhost", "127.0.0.1"]);
        Self { dir, pki }
    }

    pub(crate) fn sqlite(&self) -> String {
        format!(
            "sqlite:///{}",
            self.dir.join(format!("sched-{}.db", free_port())).display()
        )
    }

    /// A nova.conf with `filters`, the harness's certificates and tokens.
    pub(crate) fn nova_conf(
        &self,
        db: &str,
        filters: &str,
        attestation: Option<&Attestation>,
    ) -> String {
        let p = self.dir.join("pki");
        let mut text = format!(
            "[DEFAULT]\nosapi_compute_listen = 127.0.0.1\nosapi_compute_listen_port = 0\n\
             scheduler_default_filters = {filters}\nram_allocation_ratio = 1.0\n\
             [database]\nconnection = {db}\n[ssl]\ncert_file = {p}/server.crt\nkey_file = {p}/server.key\n\
             [trustpool]\nadmin_token_sha256 = {}\nread_token_sha256 = {}\n",
            sha256_hex(ADMIN),
            sha256_hex(READER),
            p = p.display(),
        );
        if let Some(a) = attestation {
            if let Some(t) = &a.stream_token {
                text.push_str(&format!("attestation_read_token = {t}\n"));
            }
            text.push_str(&format!(
                "[trusted_computing]\nserver = 127.0.0.1\nport = {}\nserver_ca_file = {}\napi_url = {}\nattestation_auth_timeout = {}\n",
                a.port,
                self.pki.ca_cert().display(),
                a.api_url,
                a.timeout_secs
            ));
            if let Some(b) = a.auth_blob {
                text.push_str(&format!("auth_blob = {b}\n"));
            }
        }
        text
    }

    pub(crate) async fn scheduler(&self, conf: &str) -> RunningScheduler {
        let config = Config::parse(conf).unwrap();
        trustpool_scheduler::start(config).await.unwrap()
    }

    /// Creates compute node `name` as an administrator: its compute token.
    pub(crate) async fn node(&self, s: &RunningScheduler, name: &str) -> String {
        self.client(s, ADMIN)
            .create_hypervisor(name)
            .await
            .unwrap()
            .compute_token
    }

    /// Creates compute node `name`: a client holding its compute token.
    pub(crate) async fn compute(&self, s: &RunningScheduler, name: &str) -> ComputeClient {
        let token = self.node(s, name).await;
        self.client(s, &token)
    }

    pub(crate) fn client(&self, s: &RunningScheduler, token: &str) -> ComputeClient {
        ComputeClient::new(
            &format!("https://127.0.0.1:{}", s.address.port()),
            &TlsOptions {
                ca_pem: Some(self.pki.ca_pem()),
                identity: None,
            },
            Some(token.to_owned()),
            Duration::from_secs(10),
        )
        .unwrap()
    }
}

/// A heartbeat for a host with these resources.
pub(crate) fn report(name: &str, memory_mb: u64, vcpus: u32, local_gb: u64) -> HostReport {
    HostReport {
        host_name: name.to_owned(),
        memory_mb,
        vcpus,
        local_gb,
        availability_zone: "nova".to_owned(),
        agent_url: format!("https://{name}:9443"),
    }
}

/// Waits until the server leaves BUILD.
pub(crate) async fn settled(c: &ComputeClient, id: &str) -> trustpool_api::compute::server::Server {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.server(id).await.unwrap();
        if s.status != "BUILD" {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} stays in BUILD"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
