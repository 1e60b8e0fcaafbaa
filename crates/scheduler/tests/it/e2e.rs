//! The seed's workflow end to end: a real attestation server, real agents on swtpm (two
//! with the known-good boot, one with a tampered BIOS) reporting to the scheduler, the
//! golden policy imported from a good host, a trusted flavor — and a good host tampered
//! live, dropping out of the pool with its running trusted instance flagged.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use trustpool_agent::RunningAgent;
use trustpool_attestation::RunningServer;
use trustpool_testkit::swtpm::Swtpm;

use super::api::{boot, flavor};
use super::*;

const BLOB: &str = "i-am-openstack";

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

struct Pool {
    h: Harness,
    tpms: Vec<Swtpm>,
    /// Each host's agent port: a host that reboots comes back at the same URL.
    ports: Vec<u16>,
}

impl Pool {
    fn new(hosts: usize) -> Self {
        assert!(
            trustpool_testkit::swtpm::available(),
            "swtpm and tpm2-tools must be installed (make test installs them)"
        );
        Self {
            h: Harness::new("e2e"),
            tpms: (0..hosts).map(|_| Swtpm::start()).collect(),
            ports: (0..hosts).map(|_| free_port()).collect(),
        }
    }

    async fn attestation(&self) -> RunningServer {
        let p = self.h.dir.join("pki");
        let cas: Vec<String> = self
            .tpms
            .iter()
            .flat_map(|t| [t.ca_root(), t.dir().join("ca/state/issuercert.pem")])
            .map(|c| format!("\"{}\"", c.display()))
            .collect();
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\nresult_signing_key = \"{dir}/ear.p8\"\n\
             [tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
             [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n\
             [enrollment]\ndev_ek_ca = [{cas}]\nallow_software_tpm = true\n\
             [attestation]\ninterval_secs = 1\nverdict_ttl_secs = 10\nagent_timeout_secs = 10\n\
             [auth]\nadmin_token_sha256 = [\"{admin}\"]\nread_token_sha256 = [\"{read}\"]\npoll_hosts_auth_blob = \"{BLOB}\"\n",
            db = self.h.dir.join("attestation.db").display(),
            dir = self.h.dir.display(),
            p = p.display(),
            cas = cas.join(", "),
            admin = sha256_hex(ADMIN),
            read = sha256_hex(READER),
        );
        let config = trustpool_attestation::config::Config::parse(&text, "e2e.toml").unwrap();
        trustpool_attestation::start(config).await.unwrap()
    }

    async fn agent(
        &self,
        i: usize,
        name: &str,
        manifest: &str,
        server: u16,
        scheduler: u16,
    ) -> RunningAgent {
        let tpm = &self.tpms[i];
        // A host that reboots keeps its TLS certificate and URL, so it renews its
        // enrollment without an administrator.
        let issued = {
            let stem = format!("agent{i}");
            let cert = self.h.dir.join("pki").join(format!("{stem}.crt"));
            if cert.exists() {
                trustpool_testkit::pki::Issued {
                    key: cert.with_extension("key"),
                    cert,
                }
            } else {
                self.h.pki.issue_server(&stem, &["127.0.0.1", "localhost"])
            }
        };
        // The attestation server's administrator lets the name enroll (a restarted host is
        // enrolled already and renews without a token).
        let enrollment = self.h.dir.join(format!("enrollment-{i}.token"));
        let attestation = trustpool_client::AdminClient::new(
            &format!("https://127.0.0.1:{server}"),
            &TlsOptions {
                ca_pem: Some(self.h.pki.ca_pem()),
                identity: None,
            },
            Some(ADMIN.to_owned()),
            Duration::from_secs(10),
        )
        .unwrap();
        let grant = attestation
            .add_host(&trustpool_api::v1::AddHost {
                host_name: name.to_owned(),
                aliases: Vec::new(),
                ek_certificate_sha256: None,
                valid_hours: None,
            })
            .await;
        let _ = std::fs::remove_file(&enrollment);
        if let Ok(grant) = grant {
            std::fs::write(&enrollment, grant.token).unwrap();
        }
        let token = self.h.dir.join(format!("compute-{i}.token"));
        // An administrator creates the node (or, for a restarted host, rotates its token)
        // and hands the agent its compute token.
        let admin = ComputeClient::new(
            &format!("https://127.0.0.1:{scheduler}"),
            &TlsOptions {
                ca_pem: Some(self.h.pki.ca_pem()),
                identity: None,
            },
            Some(ADMIN.to_owned()),
            Duration::from_secs(10),
        )
        .unwrap();
        let credential = match admin.create_hypervisor(name).await {
            Ok(created) => created,
            Err(_) => admin.rotate_compute_token(name).await.unwrap(),
        };
        std::fs::write(&token, credential.compute_token).unwrap();
        let port = self.ports[i];
        let text = format!(
            "host_name = \"{name}\"\nstate_dir = \"{state}\"\n[tpm]\ntcti = \"{tcti}\"\nboot_manifest = \"{manifest}\"\n\
             [listen]\naddress = \"127.0.0.1:{port}\"\nurl = \"https://127.0.0.1:{port}\"\ncert = \"{cert}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\"\nserver_certificate = \"{server_cert}\"\n\
             [server]\nurl = \"https://127.0.0.1:{server}\"\nca = \"{ca}\"\nenrollment_token_file = \"{enrollment}\"\nretry_max_secs = 1\n\
             [scheduler]\nurl = \"https://127.0.0.1:{scheduler}\"\nca = \"{ca}\"\ntoken_file = \"{token}\"\nheartbeat_secs = 1\n\
             [resources]\nmemory_mb = 4096\nvcpus = 4\nlocal_gb = 40\n",
            state = tpm.dir().join("agent-state").display(),
            tcti = tpm.tcti(),
            manifest = packaging(manifest).display(),
            cert = issued.cert.display(),
            key = issued.key.display(),
            ca = self.h.pki.ca_cert().display(),
            token = token.display(),
            server_cert = self.h.dir.join("pki/server.crt").display(),
            enrollment = enrollment.display(),
        );
        let config =
            trustpool_agent::config::Config::parse(&text, Path::new("agent.toml")).unwrap();
        trustpool_agent::start(config).await.unwrap()
    }
}

/// The attestation server's v1 API as an administrator.
async fn v1(
    server: &RunningServer,
    pki: &TestPki,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let tls = trustpool_client::tls::client_config(&TlsOptions {
        ca_pem: Some(pki.ca_pem()),
        identity: None,
    })
    .unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let mut req = client
        .request(
            method,
            format!("https://127.0.0.1:{}{path}", server.address.port()),
        )
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

async fn wait_level(c: &ComputeClient, host: &str, level: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(hv) = c.hypervisor(host).await
            && hv.trust_level == level
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{host} never {level} at the scheduler"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_workflow_with_a_host_tampered_live() {
    let pool = Pool::new(3);
    let h = &pool.h;
    let server = pool.attestation().await;
    let attestation = Attestation {
        port: server.address.port(),
        api_url: "/AttestationService/resources",
        auth_blob: Some(BLOB),
        timeout_secs: 60,
        stream_token: Some(READER.to_owned()),
    };
    let conf = h.nova_conf(
        &h.sqlite(),
        "AvailabilityZoneFilter,RamFilter,ComputeFilter,TrustedFilter",
        Some(&attestation),
    );
    let sched = h.scheduler(&conf).await;
    let (sp, schp) = (server.address.port(), sched.address.port());
    let _node1 = pool
        .agent(0, "node1", "boot/known-good.toml", sp, schp)
        .await;
    let node2 = pool
        .agent(1, "node2", "boot/known-good.toml", sp, schp)
        .await;
    let _node3 = pool
        .agent(2, "node3", "boot/tampered-bios.toml", sp, schp)
        .await;
    let admin = h.client(&sched, ADMIN);

    // The administrator imports the golden host (once it has verified evidence) and
    // accepts it for every host.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let reported = admin.hypervisors().await.unwrap().len();
        let hosts = v1(&server, &h.pki, reqwest::Method::GET, "/v1/hosts", None).await;
        let attested = hosts
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| !h["vtime"].is_null())
            .count();
        if reported == 3 && attested == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{reported} hosts reported to the scheduler, {attested} attested: {hosts}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let doc = v1(
        &server,
        &h.pki,
        reqwest::Method::POST,
        "/v1/policies/import",
        Some(json!({"host": "node1", "name": "golden"})),
    )
    .await;
    v1(
        &server,
        &h.pki,
        reqwest::Method::POST,
        "/v1/policies",
        Some(doc),
    )
    .await;
    for host in ["node1", "node2", "node3"] {
        v1(
            &server,
            &h.pki,
            reqwest::Method::PUT,
            &format!("/v1/hosts/{host}/policies"),
            Some(json!({"policies": ["golden"]})),
        )
        .await;
    }
    wait_level(&admin, "node1", "trusted").await;
    wait_level(&admin, "node2", "trusted").await;
    wait_level(&admin, "node3", "untrusted").await;

    // `nova flavor-key m1.tiny set trust:trusted_host trusted`, then boots.
    admin
        .create_flavor(&flavor("m1.tiny", "1", 512, 1, 1))
        .await
        .unwrap();
    admin
        .set_extra_specs(
            "m1.tiny",
            BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
        )
        .await
        .unwrap();
    let mut on_node2 = None;
    for i in 0..6 {
        let id = admin
            .boot(boot(&format!("vm{i}"), "m1.tiny", None))
            .await
            .unwrap();
        let vm = settled(&admin, &id).await;
        let host = vm.host.clone().unwrap_or_default();
        assert!(host == "node1" || host == "node2", "{vm:?}");
        if host == "node2" {
            on_node2 = Some(vm.id);
        }
    }
    let on_node2 = on_node2.expect("RAMWeigher spreads six instances over both trusted hosts");

    // node2 reboots with a tampered BIOS: the server's verdict is pushed to the
    // scheduler, the running trusted instance is flagged with the reason, new boots
    // avoid node2.
    node2.stop().await;
    let _node2 = pool
        .agent(1, "node2", "boot/tampered-bios.toml", sp, schp)
        .await;
    wait_level(&admin, "node2", "untrusted").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let alert = loop {
        if let Some(a) = admin.server(&on_node2).await.unwrap().trust_alert {
            break a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance on node2 was not flagged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alert.trust_lvl, "untrusted");
    assert!(
        alert.reasons.iter().any(|r| r.contains("PCR 0")),
        "{alert:?}"
    );
    for i in 0..3 {
        let id = admin
            .boot(boot(&format!("after{i}"), "m1.tiny", None))
            .await
            .unwrap();
        assert_eq!(settled(&admin, &id).await.host.as_deref(), Some("node1"));
    }
    // No trusted host with room: Nova's fault.
    admin
        .create_flavor(&flavor("m1.huge", "9", 4096, 1, 1))
        .await
        .unwrap();
    admin
        .set_extra_specs(
            "9",
            BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
        )
        .await
        .unwrap();
    let id = admin.boot(boot("huge", "m1.huge", None)).await.unwrap();
    let vm = settled(&admin, &id).await;
    assert_eq!(vm.status, "ERROR");
    assert_eq!(
        vm.fault.unwrap().message,
        "No valid host was found. There are not enough hosts available."
    );
    sched.stop().await;
    server.stop().await;
}
