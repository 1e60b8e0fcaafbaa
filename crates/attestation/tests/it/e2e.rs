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

    async fn agent_at(
        &self,
        i: usize,
        name: &str,
        manifest: &str,
        server_port: u16,
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
    // Both hosts enroll on their own schedule; wait for both before assigning policies.
    api.wait_for("node2", "untrusted").await;
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
    // node2 was already untrusted (no policy): attest it now to see the new reason.
    let (status, verdict) = api
        .call(reqwest::Method::POST, "/v1/hosts/node2/attest", None)
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["trust_lvl"], "untrusted");
    let reason = verdict["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("BIOS: PCR 0 (sha256) differs from the policy: expected"),
        "{reason}"
    );

    // Signed results: an EAR per host, verifiable with the JWKS.
    for (host, status) in [("node1", "affirming"), ("node2", "contraindicated")] {
        let claims = api.ear(host).await;
        assert_eq!(claims["submods"][host]["ear.status"], status, "{claims}");
        assert_eq!(claims["eat_profile"], "tag:github.com,2023:veraison/ear");
        assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    }

    // Identical consecutive verdicts are one run in the history: attesting node1 again
    // adds no row, it extends the current one.
    let before = node1_history(&api).await;
    for _ in 0..2 {
        let (status, verdict) = api
            .call(reqwest::Method::POST, "/v1/hosts/node1/attest", None)
            .await;
        assert_eq!(
            (status, verdict["trust_lvl"].as_str()),
            (200, Some("trusted"))
        );
    }
    let after = node1_history(&api).await;
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert_eq!(after[0]["at"], before[0]["at"]);
    assert_eq!(
        after[0]["repeats"].as_i64().unwrap(),
        before[0]["repeats"].as_i64().unwrap() + 2
    );
    assert!(after[0]["until"].as_str().unwrap() >= before[0]["until"].as_str().unwrap());

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

    // Metrics count what happened (aggregates only).
    let metrics = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("trustpool_hosts{trust_lvl=\"trusted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trustpool_hosts{trust_lvl=\"untrusted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trustpool_attestation_seconds_count"),
        "{metrics}"
    );
    // Two PollHosts answered above (3 names, then 1; the one refused with 401 is not).
    assert!(
        metrics.contains("trustpool_poll_hosts_seconds_count 2\n")
            && metrics.contains("trustpool_poll_hosts_names_total 4\n"),
        "{metrics}"
    );

    // The trust stream: a snapshot on connect, then changes as they happen.
    let mut stream = api
        .client
        .get(format!("{}/v1/trust/stream", api.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let mut seen = String::new();
    while !(seen.contains("\"host_name\":\"node1\"") && seen.contains("\"trust_lvl\":\"trusted\""))
    {
        seen.push_str(&String::from_utf8_lossy(
            &tokio::time::timeout(Duration::from_secs(10), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        ));
    }

    // The agent goes silent: unknown within the TTL, never a stale trusted — and the stream
    // says so without anyone polling.
    good.stop().await;
    let view = api.wait_for("node1", "unknown").await;
    assert!(
        view["reasons"][0]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{view}"
    );
    let mut seen = String::new();
    while !seen.contains("\"trust_lvl\":\"unknown\"") {
        seen.push_str(&String::from_utf8_lossy(
            &tokio::time::timeout(Duration::from_secs(20), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        ));
    }
    assert!(seen.contains("event: trust"), "{seen}");

    // The dashboard: a browser's Basic auth (password = a token), every host, escaped.
    let page = |auth: Option<&str>| {
        let mut req = api.client.get(format!("{}/dashboard", api.base));
        if let Some(token) = auth {
            req = req.basic_auth("operator", Some(token));
        }
        req.send()
    };
    let refused = page(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_eq!(page(Some("not-a-token")).await.unwrap().status(), 401);
    let shown = page(Some(ADMIN)).await.unwrap();
    let csp = shown.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'"),
        "no script may run: {csp}"
    );
    let html = shown.text().await.unwrap();
    assert!(
        html.contains("<tr id=\"host-node1\"><td>node1</td><td class=\"unknown\">unknown</td>"),
        "{html}"
    );
    assert!(
        html.contains("<tr id=\"host-node2\"><td>node2</td><td class=\"untrusted\">untrusted</td>"),
        "{html}"
    );
    assert!(
        html.contains("PCR 0 (sha256) differs from the policy"),
        "{html}"
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

/// A stand-in agent that answers every challenge with a quote captured earlier, with the
/// real agent's TLS certificate and key (so only the replay check can refuse it).
async fn replaying_agent(
    pool: &Pool,
    captured: trustpool_api::agent::QuoteResponse,
) -> (axum_server::Handle<std::net::SocketAddr>, String) {
    use axum::routing::post;
    let pki = pool.dir.join("pki");
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        pki.join("agent0.crt"),
        pki.join("agent0.key"),
    )
    .await
    .unwrap();
    let app = axum::Router::new().route(
        "/v1/quote",
        post(move || async move { axum::Json(captured.clone()) }),
    );
    let handle = axum_server::Handle::new();
    tokio::spawn(
        axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls)
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );
    let addr = handle.listening().await.unwrap();
    (handle, format!("https://127.0.0.1:{}", addr.port()))
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_quotes_and_swapped_aks_are_rejected_and_a_restart_loses_nothing() {
    let pool = Pool::new(2);
    let config = pool.server_config(true, &pool.ek_cas());
    let server = trustpool_attestation::start(config.clone()).await.unwrap();
    let api = Api::new(&pool, &server);
    let agent = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    let other = pool
        .agent(1, "node2", "boot/known-good.toml", &server)
        .await;
    api.wait_for("node1", "untrusted").await;
    api.wait_for("node2", "untrusted").await;
    let (_, doc) = api
        .call(
            reqwest::Method::POST,
            "/v1/policies/import",
            Some(json!({"host": "node1", "name": "golden"})),
        )
        .await;
    api.call(reqwest::Method::POST, "/v1/policies", Some(doc))
        .await;
    api.call(
        reqwest::Method::PUT,
        "/v1/hosts/node1/policies",
        Some(json!({"policies": ["golden"]})),
    )
    .await;
    api.wait_for("node1", "trusted").await;
    let service = server.service.clone();

    // A quote captured from the real agent (with some nonce), replayed to a later challenge.
    let identity = trustpool_client::Identity {
        cert_chain_pem: std::fs::read_to_string(pool.dir.join("pki/server.crt")).unwrap(),
        key_pem: std::fs::read_to_string(pool.dir.join("pki/server.key")).unwrap(),
    };
    let direct = trustpool_client::AgentClient::new(
        &format!("https://127.0.0.1:{}", agent.address.port()),
        &trustpool_client::TlsOptions {
            ca_pem: Some(pool.pki.ca_pem()),
            identity: Some(identity),
        },
        Duration::from_secs(10),
    )
    .unwrap();
    let selection =
        trustpool_attestation::service::attest::selection_for(&service.policies().await.unwrap());
    let wire: trustpool_api::PcrSelection = serde_json::from_value(json!(selection.banks().iter().map(|(alg, set)| json!({"bank": alg.name(), "pcrs": set.iter().map(|i| i.get()).collect::<Vec<_>>()})).collect::<Vec<_>>())).unwrap();
    let captured = direct
        .quote(&trustpool_api::agent::QuoteRequest {
            nonce: trustpool_api::Nonce::new(vec![9; 32]).unwrap(),
            selection: wire,
            include_event_log: true,
        })
        .await
        .unwrap();
    let (replayer, url) = replaying_agent(&pool, captured).await;
    let mut host = service.store.host_by_name("node1").await.unwrap().unwrap();
    let real_url = host.agent_url.clone();
    host.agent_url = url;
    service.store.put_host(&host).await.unwrap();
    let verdict = service.attest_now("node1").await.unwrap();
    assert_eq!(verdict.level, trustpool_api::oat::TrustLevel::Untrusted);
    assert!(
        verdict.reasons[0].contains("nonce"),
        "{:?}",
        verdict.reasons
    );
    replayer.shutdown();

    // The AK on record replaced by another TPM's: the real agent's quotes no longer verify.
    let node2 = service.store.host_by_name("node2").await.unwrap().unwrap();
    host.agent_url = real_url;
    host.ak_public = node2.ak_public.clone();
    service.store.put_host(&host).await.unwrap();
    let verdict = service.attest_now("node1").await.unwrap();
    assert_eq!(verdict.level, trustpool_api::oat::TrustLevel::Untrusted);
    assert!(
        verdict.reasons[0].contains("signature does not verify"),
        "{:?}",
        verdict.reasons
    );

    // Restore, then restart the server on the same database: hosts, policies and history
    // are all still there, and the host is attested again.
    let original = service.store.host(&host.agent_id).await.unwrap().unwrap();
    let mut restored = original;
    restored
        .ak_public
        .clone_from(&agent.tpm.identity().ak_public);
    service.store.put_host(&restored).await.unwrap();
    let history_before = service
        .store
        .verdict_history(&host.agent_id, 1000)
        .await
        .unwrap()
        .len();
    drop(service);
    server.stop().await;
    let server = trustpool_attestation::start(config).await.unwrap();
    let api = Api::new(&pool, &server);
    let history_after = server
        .service
        .store
        .verdict_history(&host.agent_id, 1000)
        .await
        .unwrap()
        .len();
    assert!(
        history_after >= history_before,
        "verdict history kept across restarts"
    );
    assert_eq!(server.service.policies().await.unwrap().len(), 1);
    api.wait_for("node1", "trusted").await;
    agent.stop().await;
    other.stop().await;
    server.stop().await;
}

/// Two server processes on one PostgreSQL; the one holding the leases is killed with
/// SIGKILL; the other takes every host over within the lease time and nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_postgres_survive_a_sigkill() {
    let Ok(db) = std::env::var("TRUSTPOOL_TEST_POSTGRES") else {
        eprintln!("TRUSTPOOL_TEST_POSTGRES not set: scale-out test skipped (make test runs it)");
        assert!(
            std::env::var("TRUSTPOOL_REQUIRE_POSTGRES").is_err(),
            "TRUSTPOOL_REQUIRE_POSTGRES is set but TRUSTPOOL_TEST_POSTGRES is not"
        );
        return;
    };
    let pool = Pool::new(2);
    let mut children = Vec::new();
    let mut ports = Vec::new();
    for id in ["scale-a", "scale-b"] {
        let port = free_port();
        let p = pool.dir.join("pki");
        let cas: Vec<String> = pool
            .ek_cas()
            .iter()
            .map(|c| format!("\"{}\"", c.display()))
            .collect();
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nserver_id = \"{id}\"\nresult_signing_key = \"{key}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
             [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n\
             [enrollment]\ndev_ek_ca = [{cas}]\nallow_software_tpm = true\n[attestation]\ninterval_secs = 2\nverdict_ttl_secs = 6\n",
            p = p.display(),
            cas = cas.join(", "),
            key = pool.dir.join("ear.p8").display(),
        );
        let file = pool.dir.join(format!("{id}.toml"));
        std::fs::write(&file, text).unwrap();
        let log = std::fs::File::create(pool.dir.join(format!("{id}.log"))).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_trustpool-attestation"))
            .args(["run", "--config"])
            .arg(&file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        children.push(child);
        ports.push(port);
    }
    // Wait for the first server to listen, then let both agents register with it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", ports[1])).is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "servers did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tag = free_port();
    let names = [format!("scale{tag}-1"), format!("scale{tag}-2")];
    let a1 = pool
        .agent_at(0, &names[0], "boot/known-good.toml", ports[0])
        .await;
    let a2 = pool
        .agent_at(1, &names[1], "boot/known-good.toml", ports[0])
        .await;
    let store = trustpool_attestation::store::Store::connect(&db)
        .await
        .unwrap();
    let ids = wait_until_attested(&store, &names, 2).await;

    // Kill whichever server holds the first host's lease, without a chance to clean up.
    let owner = lease_owner(&store, &ids[0]).await;
    let victim = if owner == "scale-a" { 0 } else { 1 };
    let survivor = if victim == 0 { "scale-b" } else { "scale-a" };
    let killed_at = trustpool_attestation::store::now_ms();
    // std's Child::kill is SIGKILL on Unix.
    children[victim].kill().unwrap();
    let _ = children[victim].wait();

    // Every host keeps being attested, now by the survivor; the history before the kill is intact.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = true;
        for id in &ids {
            let latest = store.verdict_history(id, 1).await.unwrap();
            all &= latest.first().is_some_and(|v| v.until > killed_at + 500);
            all &= lease_owner(&store, id).await == survivor;
        }
        if all {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hosts were not taken over after the SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &ids {
        assert!(
            store
                .verdict_history(id, 1000)
                .await
                .unwrap()
                .iter()
                .any(|v| v.at < killed_at),
            "history before the kill is kept"
        );
    }
    a1.stop().await;
    a2.stop().await;
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

async fn lease_owner(store: &trustpool_attestation::store::Store, agent_id: &str) -> String {
    store
        .lease_owner(agent_id)
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn wait_until_attested(
    store: &trustpool_attestation::store::Store,
    names: &[String],
    verdicts: usize,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut ids = Vec::new();
        for name in names {
            if let Some(host) = store.host_by_name(name).await.unwrap()
                && store
                    .verdict_history(&host.agent_id, 100)
                    .await
                    .unwrap()
                    .iter()
                    .map(|v| usize::try_from(v.repeats).unwrap())
                    .sum::<usize>()
                    >= verdicts
            {
                ids.push(host.agent_id);
            }
        }
        if ids.len() == names.len() {
            return ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hosts were not attested"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_wait_for_approval_when_required() {
    let pool = Pool::new(1);
    let mut config = pool.server_config(true, &pool.ek_cas());
    config.require_approval = true;
    let server = trustpool_attestation::start(config).await.unwrap();
    let api = Api::new(&pool, &server);
    let agent = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, view) = api
            .call(reqwest::Method::GET, "/v1/hosts/node1", None)
            .await;
        if status == 200 {
            assert_eq!(view["state"], "pending_approval");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Not attested, not in PollHosts' view, until approved.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let id = server
        .service
        .store
        .host_by_name("node1")
        .await
        .unwrap()
        .unwrap()
        .agent_id;
    assert!(
        server
            .service
            .store
            .verdict_history(&id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let (_, body) = api.poll(json!(["node1"]), BLOB).await;
    assert_eq!(body["hosts"][0]["trust_lvl"], "unknown");
    let (status, view) = api
        .call(reqwest::Method::POST, "/v1/hosts/node1/approve", None)
        .await;
    assert_eq!((status, view["state"].as_str()), (200, Some("enrolled")));
    api.wait_for("node1", "untrusted").await;
    let (status, audit) = api.call(reqwest::Method::GET, "/v1/audit", None).await;
    assert_eq!(status, 200);
    let audit = audit.as_array().unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e["actor"] == "admin" && e["action"] == "approved" && e["subject"] == "node1"),
        "{audit:?}"
    );
    assert!(audit.iter().any(|e| e["action"] == "register"));
    agent.stop().await;
    server.stop().await;
}

/// The agent's TLS certificate is pinned at registration: a machine answering at the
/// agent's URL with another certificate — even one from the agents' CA — is refused, and
/// that check alone makes the host untrusted.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_answering_with_another_certificate_is_refused() {
    let pool = Pool::new(1);
    let server = trustpool_attestation::start(pool.server_config(true, &pool.ek_cas()))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let agent = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    let (status, doc) = {
        api.wait_for("node1", "untrusted").await;
        api.call(
            reqwest::Method::POST,
            "/v1/policies/import",
            Some(json!({"host": "node1", "name": "golden"})),
        )
        .await
    };
    assert_eq!(status, 200, "{doc}");
    api.call(reqwest::Method::POST, "/v1/policies", Some(doc))
        .await;
    api.call(
        reqwest::Method::PUT,
        "/v1/hosts/node1/policies",
        Some(json!({"policies": ["golden"]})),
    )
    .await;
    api.wait_for("node1", "trusted").await;
    // The pinned certificate becomes another one from the same CA (as if the agent's URL
    // now led to a different machine holding a certificate of that CA).
    let other = pool.pki.issue("impostor", &["127.0.0.1", "localhost"]);
    let store = &server.service.store;
    let mut host = store.host_by_name("node1").await.unwrap().unwrap();
    host.agent_certificate = std::fs::read_to_string(&other.cert).unwrap();
    store.put_host(&host).await.unwrap();
    let (status, verdict) = api
        .call(reqwest::Method::POST, "/v1/hosts/node1/attest", None)
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["trust_lvl"], "untrusted", "{verdict}");
    assert!(
        verdict["reasons"][0]
            .as_str()
            .unwrap()
            .contains("presented a TLS certificate other than the one it registered"),
        "{verdict}"
    );
    agent.stop().await;
    server.stop().await;
}

/// A host name bound to one TPM refuses another (409, audited) until an administrator
/// allows a re-enrollment; then the new TPM takes the name and keeps its policies.
#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_tpm_enrolls_only_after_an_administrator_allows_it() {
    let pool = Pool::new(2);
    let server = trustpool_attestation::start(pool.server_config(true, &pool.ek_cas()))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let first = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    api.wait_for("node1", "untrusted").await;
    let (_, doc) = api
        .call(
            reqwest::Method::POST,
            "/v1/policies/import",
            Some(json!({"host": "node1", "name": "golden"})),
        )
        .await;
    api.call(reqwest::Method::POST, "/v1/policies", Some(doc))
        .await;
    let (status, before) = api
        .call(
            reqwest::Method::PUT,
            "/v1/hosts/node1/policies",
            Some(json!({"policies": ["golden"]})),
        )
        .await;
    assert_eq!(status, 200, "{before}");
    first.stop().await;
    // The motherboard is replaced: same name, another TPM.
    let second = pool
        .agent(1, "node1", "boot/known-good.toml", &server)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, view) = api
        .call(reqwest::Method::GET, "/v1/hosts/node1", None)
        .await;
    assert_eq!(view["agent_id"], before["agent_id"], "refused: {view}");
    let audit = server.service.store.audit_log(100).await.unwrap();
    assert!(
        audit.iter().any(
            |(_, _, action, subject, detail)| action == "register_refused"
                && subject == "node1"
                && detail.contains("another EK")
        ),
        "{audit:?}"
    );
    let (status, allowed) = api
        .call(reqwest::Method::POST, "/v1/hosts/node1/re-enroll", None)
        .await;
    assert_eq!(status, 200, "{allowed}");
    // The agent retries its registration (backoff ≤ 1 s here) and now gets the name.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let view = loop {
        let (_, view) = api
            .call(reqwest::Method::GET, "/v1/hosts/node1", None)
            .await;
        if view["agent_id"] != before["agent_id"] && !view["agent_id"].is_null() {
            break view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never re-enrolled: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        view["policies"],
        json!(["golden"]),
        "policies carried over: {view}"
    );
    let audit = server.service.store.audit_log(100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, _, action, subject, _)| action == "re-enrolled" && subject == "node1"),
        "{audit:?}"
    );
    second.stop().await;
    server.stop().await;
}
