//! A private swtpm + test PKI + agent configuration per test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use trustpool_agent::config::Config;
use trustpool_agent::{RunningAgent, start};
use trustpool_client::{AgentClient, Identity, TlsOptions};
use trustpool_testkit::pki::TestPki;
use trustpool_testkit::swtpm::Swtpm;

pub(crate) fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

pub(crate) struct Harness {
    pub(crate) tpm: Swtpm,
    pub(crate) pki: TestPki,
    pub(crate) dir: PathBuf,
}

impl Harness {
    pub(crate) fn new() -> Self {
        assert!(
            trustpool_testkit::swtpm::available(),
            "swtpm and tpm2-tools must be installed (make test installs them)"
        );
        let tpm = Swtpm::start();
        let dir = tpm.dir().join("agent");
        std::fs::create_dir_all(&dir).unwrap();
        let pki = TestPki::new(&dir.join("pki"), "trustpool test CA");
        // As a pool issues them: the agent's for server authentication only; the server's
        // (also a client certificate) is the one client the agent serves, pinned by key.
        let _ = pki.issue_server("agent", &["localhost", "127.0.0.1"]);
        let _ = pki.issue("server", &["attestation.test", "127.0.0.1"]);
        Self { tpm, pki, dir }
    }

    /// A config for this TPM; `extra` is appended (e.g. a `[server]` section).
    pub(crate) fn config(&self, manifest: Option<&str>, extra: &str) -> Config {
        let pki = self.dir.join("pki");
        let boot = manifest
            .map(|m| format!("boot_manifest = \"{}\"\n", packaging(m).display()))
            .unwrap_or_default();
        let text = format!(
            "host_name = \"compute-test\"\nstate_dir = \"{state}\"\n[tpm]\ntcti = \"{tcti}\"\n{boot}[listen]\naddress = \"127.0.0.1:0\"\nurl = \"https://127.0.0.1:0\"\ncert = \"{pki}/agent.crt\"\nkey = \"{pki}/agent.key\"\nclient_ca = \"{pki}/ca.crt\"\nserver_certificate = \"{pki}/server.crt\"\n{extra}",
            state = self.dir.join("state").display(),
            tcti = self.tpm.tcti(),
            pki = pki.display(),
        );
        Config::parse(&text, Path::new("test-agent.toml")).unwrap()
    }

    pub(crate) async fn start(&self, manifest: Option<&str>) -> RunningAgent {
        start(self.config(manifest, ""))
            .await
            .unwrap_or_else(|e| panic!("agent start: {e:#}"))
    }

    /// A client that presents the server's certificate (as the attestation server does).
    pub(crate) fn client(&self, agent: &RunningAgent) -> AgentClient {
        self.client_as(agent, "server")
    }

    /// A client that presents `pki/<stem>.crt`.
    pub(crate) fn client_as(&self, agent: &RunningAgent, stem: &str) -> AgentClient {
        let pki = self.dir.join("pki");
        let identity = Identity {
            cert_chain_pem: std::fs::read_to_string(pki.join(format!("{stem}.crt"))).unwrap(),
            key_pem: std::fs::read_to_string(pki.join(format!("{stem}.key"))).unwrap(),
        };
        let tls = TlsOptions {
            ca_pem: Some(self.pki.ca_pem()),
            identity: Some(identity),
        };
        AgentClient::new(
            &format!("https://127.0.0.1:{}", agent.address.port()),
            &tls,
            Duration::from_secs(30),
        )
        .unwrap()
    }
}
