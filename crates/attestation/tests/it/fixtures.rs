//! Records and a server configuration for the tests that need no TPM: hosts written to the
//! store directly (enrollment is tested with real swtpms in `e2e`), and a server on a fresh
//! SQLite file with a test PKI.

use std::path::Path;
use std::time::Duration;

use trustpool_api::oat::TrustLevel;
use trustpool_attestation::config::Config;
use trustpool_attestation::service::Service;
use trustpool_attestation::store::{HostRecord, HostState, VerdictRecord, new_id, now_ms};
use trustpool_testkit::pki::TestPki;

/// The read token the test server accepts.
pub(crate) const READ_TOKEN: &str = "read-token-for-tests";

/// The admin token of [`server_config`]'s server, named `ops` there.
pub(crate) const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// An enrolled host whose keys are not keys (attesting it makes it untrusted) and whose
/// agent listens nowhere.
pub(crate) fn host(agent_id: &str, name: &str, aliases: &[&str]) -> HostRecord {
    HostRecord {
        agent_id: agent_id.into(),
        host_name: name.into(),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        agent_url: "https://127.0.0.1:9".into(),
        agent_certificate: String::new(),
        // One TPM, one host: each fake host its own EK.
        ek_public: agent_id.as_bytes().to_vec(),
        ek_certificate: None,
        ak_public: vec![2],
        state: HostState::Enrolled,
        policies: vec![],
        software_tpm: false,
        created_at: now_ms(),
        updated_at: now_ms(),
        clock_reset_at: None,
    }
}

/// A verdict made now.
pub(crate) fn verdict(agent_id: &str, level: TrustLevel) -> VerdictRecord {
    VerdictRecord {
        id: new_id(),
        agent_id: agent_id.into(),
        at: now_ms(),
        until: now_ms(),
        repeats: 1,
        level,
        policy: None,
        reasons: vec![],
        reset_count: None,
        restart_count: None,
        clock: None,
        pcrs: None,
    }
}

/// A server on `dir/a.db` with a certificate for 127.0.0.1 from a test CA in `dir/pki`,
/// challenging hourly (the tests' hosts cannot answer) and accepting [`READ_TOKEN`].
pub(crate) fn server_config(dir: &Path) -> Config {
    let p = dir.join("pki");
    let pki = TestPki::new(&p, "attestation test CA");
    let _ = pki.issue("server", &["127.0.0.1"]);
    let token_hash = trustpool_api::bytes::to_hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, READ_TOKEN.as_bytes()).as_ref(),
    );
    let admin_hash = trustpool_api::bytes::to_hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ADMIN_TOKEN.as_bytes()).as_ref(),
    );
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n[enrollment]\nek_ca = [\"{p}/ca.crt\"]\n\
         [attestation]\ninterval_secs = 3600\nverdict_ttl_secs = 3600\n[auth]\nread_token_sha256 = [\"{token_hash}\"]\nadmin_token_sha256 = [\"ops:{admin_hash}\"]\n",
        db = dir.join("a.db").display(),
        p = p.display(),
    );
    Config::parse(&text, "test.toml").unwrap()
}

/// Waits for the challenger's first round over `hosts` freshly put in the store: it attests
/// new hosts within a second (these, whose AKs are not keys, come out untrusted) and then
/// not for an hour, so verdicts a test records afterwards stay.
pub(crate) async fn after_first_round(service: &Service, hosts: usize) {
    service.refresh_cache().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while service.cache.counts(Duration::from_secs(3600))[1].1 < hosts {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first round not done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
