//! Real agents on swtpm against the server on SQLite: enrollment (EK chain + credential
//! activation), challenges, policy import from a golden host, verdicts with reasons, and
//! PollHosts as Nova calls it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use trustpool_agent::RunningAgent;
use trustpool_attestation::RunningServer;
use trustpool_attestation::config::Config;
use trustpool_testkit::pki::TestPki;
use trustpool_testkit::swtpm::Swtpm;

const ADMIN: &str = "admin-token-for-tests";
const BLOB: &str = "shared-auth-blob";

fn sha256_hex(s: &str) -> String {
    trustpool_api::bytes::to_hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref(),
    )
}

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Pool {
    dir: PathBuf,
    pki: TestPki,
    tpms: Vec<Swtpm>,
}

impl Pool {
    fn new(hosts: usize) -> Self {
        assert!(
            trustpool_testkit::swtpm::available(),
            "swtpm and tpm2-tools must be installed (make test installs them)"
        );
        let dir = std::env::temp_dir().join(format!(
            "trustpool-e2e-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = TestPki::new(&dir.join("pki"), "trustpool e2e CA");
        let _ = pki.issue("server", &["localhost", "127.0.0.1"]);
        Self {
            dir,
            pki,
            tpms: (0..hosts).map(|_| Swtpm::start()).collect(),
        }
    }

    fn server_config(&self, allow_software_tpm: bool, ek_cas: &[PathBuf]) -> Config {
        let p = self.dir.join("pki");
        let cas: Vec<String> = ek_cas
            .iter()
            .map(|c| format!("\"{}\"", c.display()))
            .collect();
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\nserver_id = \"e2e\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
             [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n\
             [enrollment]\ndev_ek_ca = [{cas}]\nallow_software_tpm = {allow_software_tpm}\n\
             [attestation]\ninterval_secs = 2\nverdict_ttl_secs = 6\nagent_timeout_secs = 10\n\
             [auth]\nadmin_token_sha256 = [\"{admin}\"]\npoll_hosts_auth_blob = \"{BLOB}\"\n",
            db = self
                .dir
                .join(format!("attestation-{}.db", free_port()))
                .display(),
            p = p.display(),
            cas = cas.join(", "),
            admin = sha256_hex(ADMIN),
        );
        Config::parse(&text, "e2e.toml").unwrap()
    }

    fn ek_cas(&self) -> Vec<PathBuf> {
        self.tpms
            .iter()
            .flat_map(|t| [t.ca_root(), t.dir().join("ca/state/issuercert.pem")])
            .collect()
    }

    async fn agent(
        &self,
        i: usize,
        name: &str,
        manifest: &str,
        server: &RunningServer,
    ) -> RunningAgent {
        let tpm = &self.tpms[i];
        let issued = self
            .pki
            .issue(&format!("agent{i}"), &["127.0.0.1", "localhost"]);
        let port = free_port();
        let text = format!(
            "host_name = \"{name}\"\naliases = [\"{name}.pool.test\"]\nstate_dir = \"{state}\"\n[tpm]\ntcti = \"{tcti}\"\nboot_manifest = \"{manifest}\"\n\
             [listen]\naddress = \"127.0.0.1:{port}\"\nurl = \"https://127.0.0.1:{port}\"\ncert = \"{cert}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\"\n\
             [server]\nurl = \"https://127.0.0.1:{sport}\"\nca = \"{ca}\"\nretry_max_secs = 1\n",
            state = tpm.dir().join("agent-state").display(),
            tcti = tpm.tcti(),
            manifest = packaging(manifest).display(),
            cert = issued.cert.display(),
            key = issued.key.display(),
            ca = self.pki.ca_cert().display(),
            sport = server.address.port(),
        );
        let config =
            trustpool_agent::config::Config::parse(&text, Path::new("agent.toml")).unwrap();
        trustpool_agent::start(config).await.unwrap()
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(pool: &Pool, server: &RunningServer) -> Self {
        let config = trustpool_client::tls::client_config(&trustpool_client::TlsOptions {
            ca_pem: Some(pool.pki.ca_pem()),
            identity: None,
        })
        .unwrap();
        Self {
            client: reqwest::Client::builder()
                .use_preconfigured_tls(config)
                .build()
                .unwrap(),
            base: format!("https://127.0.0.1:{}", server.address.port()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn poll(&self, hosts: Value, blob: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(format!(
                "{}/AttestationService/resources/PollHosts",
                self.base
            ))
            .header("content-type", "application/json")
            .header("Accept", "application/json")
            .header("x-auth-blob", blob)
            .body(json!({"count": 1, "hosts": hosts}).to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn wait_for(&self, host: &str, level: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, view) = self
                .call(reqwest::Method::GET, &format!("/v1/hosts/{host}"), None)
                .await;
            if status == 200 && view["trust_lvl"] == level {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{host} never became {level}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_workflow_good_and_tampered_hosts() {
    let pool = Pool::new(2);
    let server = trustpool_attestation::start(pool.server_config(true, &pool.ek_cas()))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let good = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    let bad = pool
        .agent(1, "node2", "boot/tampered-bios.toml", &server)
        .await;

    // Enrolled and attested, but no policy yet: never trusted.
    let view = api.wait_for("node1", "untrusted").await;
    assert!(
        view["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no known-good policy"),
        "{view}"
    );
    assert_eq!(view["software_tpm"], true);

    // The administrator imports the golden host, reviews and stores the policy, assigns it.
    let (status, doc) = api
        .call(
            reqwest::Method::POST,
            "/v1/policies/import",
            Some(json!({"host": "node1", "name": "golden"})),
        )
        .await;
    assert_eq!(status, 200, "{doc}");
    let (status, created) = api
        .call(reqwest::Method::POST, "/v1/policies", Some(doc))
        .await;
    assert_eq!(status, 201, "{created}");
    for host in ["node1", "node2"] {
        let (status, _) = api
            .call(
                reqwest::Method::PUT,
                &format!("/v1/hosts/{host}/policies"),
                Some(json!({"policies": ["golden"]})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let view = api.wait_for("node1", "trusted").await;
    assert_eq!(view["policy"], "golden@1");
    let view = api.wait_for("node2", "untrusted").await;
    let reason = view["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("BIOS: PCR 0 (sha256) differs from the policy: expected"),
        "{reason}"
    );

    // PollHosts, as Nova sends it: names and aliases echoed; unregistered hosts unknown.
    let (status, body) = api
        .poll(json!(["node2", "node1.pool.test", "nobody"]), BLOB)
        .await;
    assert_eq!(status, 200);
    let levels: Vec<(&str, &str)> = body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host_name"].as_str().unwrap(),
                h["trust_lvl"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        levels,
        vec![
            ("node2", "untrusted"),
            ("node1.pool.test", "trusted"),
            ("nobody", "unknown")
        ]
    );
    assert!(body["hosts"][0]["vtime"].as_str().unwrap().ends_with('Z'));
    let (status, body) = api.poll(json!("node1"), BLOB).await;
    assert_eq!(
        (status, body["hosts"][0]["trust_lvl"].as_str()),
        (200, Some("trusted")),
        "Folsom's string form"
    );
    let (status, _) = api.poll(json!(["node1"]), "wrong").await;
    assert_eq!(status, 401);

    // The agent goes silent: unknown within the TTL, never a stale trusted.
    good.stop().await;
    let view = api.wait_for("node1", "unknown").await;
    assert!(
        view["reasons"][0]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{view}"
    );

    bad.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn software_tpms_and_unknown_ek_cas_are_refused() {
    let pool = Pool::new(1);
    // allow_software_tpm off: the swtpm's EK chains to a development CA only.
    let server = trustpool_attestation::start(pool.server_config(false, &pool.ek_cas()))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let agent = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = api
        .call(reqwest::Method::GET, "/v1/hosts/node1", None)
        .await;
    assert_eq!(status, 404, "never enrolled");
    agent.stop().await;
    server.stop().await;

    // Another CA entirely: the chain does not verify.
    let other = TestPki::new(&pool.dir.join("other"), "not the EK CA");
    let server = trustpool_attestation::start(pool.server_config(true, &[other.ca_cert()]))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let agent = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = api
        .call(reqwest::Method::GET, "/v1/hosts/node1", None)
        .await;
    assert_eq!(status, 404, "never enrolled");
    let audit = server.service.store.audit_log(50).await.unwrap();
    assert!(
        audit
            .iter()
            .all(|(_, _, action, _, _)| action != "enrolled")
    );
    agent.stop().await;
    server.stop().await;
}
