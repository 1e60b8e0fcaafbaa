//! Real agents on swtpm against the server on SQLite: enrollment (EK chain + credential
//! activation), challenges, policy import from a golden host, verdicts with reasons, and
//! PollHosts as Nova calls it. This module holds the pool of swtpm-backed agents and the
//! API client the tests share; each file is one story.

mod clock;
mod crash;
mod enrollment;
mod faults;
mod replay;
mod scale_out;
mod workflow;

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

use trustpool_testkit::ports::free_port;

struct Pool {
    dir: PathBuf,
    pki: TestPki,
    tpms: Vec<Swtpm>,
    /// Each host's agent port: a host whose agent restarts comes back at the same URL.
    ports: Vec<u16>,
}

impl Drop for Pool {
    /// The scratch directory goes with the pool (each TPM removes its own).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
            ports: (0..hosts).map(|_| free_port()).collect(),
        }
    }

    fn server_config(&self, allow_software_tpm: bool, ek_cas: &[PathBuf]) -> Config {
        let p = self.dir.join("pki");
        let cas: Vec<String> = ek_cas
            .iter()
            .map(|c| format!("\"{}\"", c.display()))
            .collect();
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\nserver_id = \"e2e\"\nresult_signing_key = \"{key}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
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
            key = self.dir.join("ear.p8").display(),
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
        self.agent_at(i, name, manifest, server.address.port())
            .await
    }

    /// Starts host `i`'s agent as `name`. As an operator would, first lets the name enroll
    /// (`POST /v1/hosts`) and hands the agent the token; a name already enrolled needs none
    /// (the agent renews its unchanged enrollment).
    async fn agent_at(
        &self,
        i: usize,
        name: &str,
        manifest: &str,
        server_port: u16,
    ) -> RunningAgent {
        let token_file = self.tpms[i].dir().join("enrollment.token");
        let (status, grant) = Api::at(self, server_port)
            .call(
                reqwest::Method::POST,
                "/v1/hosts",
                Some(json!({"host_name": name})),
            )
            .await;
        match status {
            201 => std::fs::write(&token_file, grant["token"].as_str().unwrap()).unwrap(),
            409 => {
                let _ = std::fs::remove_file(&token_file);
            }
            other => panic!("host-add {name}: {other} {grant}"),
        }
        self.agent_with_token(i, name, manifest, server_port, Some(&token_file))
            .await
    }

    /// Starts host `i`'s agent as `name` with this token file (or none).
    async fn agent_with_token(
        &self,
        i: usize,
        name: &str,
        manifest: &str,
        server_port: u16,
        token_file: Option<&Path>,
    ) -> RunningAgent {
        let tpm = &self.tpms[i];
        // Agents' certificates authenticate servers only; the server's client certificate
        // (server.crt, same CA) is the one client every agent serves, pinned by key.
        // A restarted agent keeps its certificate and URL (it renews its enrollment).
        let stem = format!("agent{i}");
        let cert = self.dir.join("pki").join(format!("{stem}.crt"));
        let issued = if cert.exists() {
            trustpool_testkit::pki::Issued {
                key: cert.with_extension("key"),
                cert,
            }
        } else {
            self.pki.issue_server(&stem, &["127.0.0.1", "localhost"])
        };
        let port = self.ports[i];
        let token = token_file
            .filter(|f| f.exists())
            .map(|f| format!("enrollment_token_file = \"{}\"\n", f.display()))
            .unwrap_or_default();
        let text = format!(
            "host_name = \"{name}\"\nstate_dir = \"{state}\"\n[tpm]\ntcti = \"{tcti}\"\nboot_manifest = \"{manifest}\"\n\
             [listen]\naddress = \"127.0.0.1:{port}\"\nurl = \"https://127.0.0.1:{port}\"\ncert = \"{cert}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\"\nserver_certificate = \"{server_cert}\"\n\
             [server]\nurl = \"https://127.0.0.1:{sport}\"\nca = \"{ca}\"\n{token}retry_max_secs = 1\n",
            state = tpm.dir().join("agent-state").display(),
            tcti = tpm.tcti(),
            manifest = packaging(manifest).display(),
            cert = issued.cert.display(),
            key = issued.key.display(),
            ca = self.pki.ca_cert().display(),
            server_cert = self.dir.join("pki/server.crt").display(),
            sport = server_port,
        );
        let config =
            trustpool_agent::config::Config::parse(&text, Path::new("agent.toml")).unwrap();
        trustpool_agent::start(config).await.unwrap()
    }
}

async fn node1_history(api: &Api) -> Vec<Value> {
    let (status, body) = api
        .call(reqwest::Method::GET, "/v1/hosts/node1/verdicts", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(pool: &Pool, server: &RunningServer) -> Self {
        Self::at(pool, server.address.port())
    }

    fn at(pool: &Pool, port: u16) -> Self {
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
            base: format!("https://127.0.0.1:{port}"),
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

    /// Fetches a host's EAR, checks its ES256 signature against the JWKS, returns the claims.
    async fn ear(&self, host: &str) -> Value {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let jwt = self
            .client
            .get(format!("{}/v1/hosts/{host}/ear", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let jwks: Value = self
            .client
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = &jwks["keys"][0];
        let mut point = vec![4u8];
        point.extend(B64.decode(key["x"].as_str().unwrap()).unwrap());
        point.extend(B64.decode(key["y"].as_str().unwrap()).unwrap());
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "{jwt}");
        let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some("ES256"), key["kid"].as_str())
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            &point,
        )
        .verify(signed.as_bytes(), &B64.decode(parts[2]).unwrap())
        .expect("EAR signature verifies with the JWKS key");
        serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap()
    }

    /// What an operator does with a golden host: imports its latest evidence as the policy
    /// `policy`, stores it, and assigns it to that host.
    async fn adopt_golden(&self, host: &str, policy: &str) {
        let (status, doc) = self
            .call(
                reqwest::Method::POST,
                "/v1/policies/import",
                Some(json!({"host": host, "name": policy})),
            )
            .await;
        assert_eq!(status, 200, "{doc}");
        let (status, body) = self
            .call(reqwest::Method::POST, "/v1/policies", Some(doc))
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/hosts/{host}/policies"),
                Some(json!({"policies": [policy]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
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
