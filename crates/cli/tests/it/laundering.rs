//! The host-identity attack of `../shared/reference/pentest-2026-12.md`, end to end on the
//! local pool (real binaries, real agents on swtpm, the scheduler): root on the tampered
//! compute-3 — its agent key, its TPM's public keys, the network — tries to make the name
//! `compute-3` read `trusted` by laundering the trusted compute-1's identity:
//!
//! 1. use its own agent certificate as a client of compute-1's agent (`/v1/info`,
//!    `/v1/activate`: the activation oracle);
//! 2. re-register compute-1 with an alias `compute-3` (or any other change);
//! 3. park its own TPM under another name, freeing `compute-3`;
//! 4. claim compute-1's name with its own TPM.
//!
//! On the code before host identity, each step worked and a trusted-only boot with
//! `--availability-zone nova:compute-3` went ACTIVE on compute-3. Now every step is refused
//! with its reason, PollHosts and the scheduler say `untrusted`, and the boot fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trustpool_api::Base64Bytes;
use trustpool_api::agent::ActivateRequest;
use trustpool_api::compute::flavor::{CreateFlavor, NewFlavor};
use trustpool_api::compute::server::NewServer;
use trustpool_attestation::store::{HostRecord, Store};
use trustpool_client::{AgentClient, ClientError, Identity, TlsOptions};
use trustpool_testkit::pool::{Pool, PoolSpec};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_trustpool"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// What root on a host holds: its agent's TLS key, presented as a client certificate.
fn as_host(pool: &Pool, host: &str) -> TlsOptions {
    let pki = pool.dir.join("pki");
    TlsOptions {
        ca_pem: Some(std::fs::read_to_string(pool.dir.join("ca.crt")).unwrap()),
        identity: Some(Identity {
            cert_chain_pem: std::fs::read_to_string(pki.join(format!("{host}.crt"))).unwrap(),
            key_pem: std::fs::read_to_string(pki.join(format!("{host}.key"))).unwrap(),
        }),
    }
}

/// A registration as an agent sends it, from a host's enrolled (public) material.
fn registration(name: &str, of: &HostRecord, agent_url: &str) -> Value {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    json!({
        "host_name": name,
        "agent_url": agent_url,
        "agent_certificate": of.agent_certificate,
        "ek_public": b64(&of.ek_public),
        "ek_certificate": of.ek_certificate.as_deref().map(b64),
        "ak_public": b64(&of.ak_public),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_host_cannot_launder_a_trusted_hosts_identity() {
    let dir = std::env::temp_dir().join(format!("trustpool-pool-launder-{}", std::process::id()));
    let mut spec = PoolSpec::new(3, 1, &dir);
    spec.bin_dir = Some(bin_dir());
    spec.interval_secs = 2;
    let pool = Pool::up(&spec).await.unwrap();
    let compute = pool.compute().unwrap();
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.join("attestation.db").display()
    ))
    .await
    .unwrap();
    let t = store.host_by_name("compute-1").await.unwrap().unwrap();
    let m = store.host_by_name("compute-3").await.unwrap().unwrap();
    let attacker = as_host(&pool, "compute-3");
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(
            trustpool_client::tls::client_config(&TlsOptions {
                identity: None,
                ..attacker.clone()
            })
            .unwrap(),
        )
        .build()
        .unwrap();
    let server = format!("https://127.0.0.1:{}", pool.attestation_port);
    let register = |body: Value| {
        let (http, url) = (http.clone(), format!("{server}/v1/agents/register"));
        async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // 1. The oracle: compute-3's agent key is no client of compute-1's agent (nor of its own).
    for victim in [&t, &m] {
        let client =
            AgentClient::new(&victim.agent_url, &attacker, Duration::from_secs(5)).unwrap();
        let info = client.info().await.map(|_| ());
        assert!(matches!(info, Err(ClientError::Connect { .. })), "{info:?}");
        let activate = client
            .activate(&ActivateRequest {
                id_object: Base64Bytes(vec![0; 16]),
                encrypted_secret: Base64Bytes(vec![0; 16]),
            })
            .await
            .map(|_| ());
        assert!(
            matches!(activate, Err(ClientError::Connect { .. })),
            "{activate:?}"
        );
    }

    // 2. Re-register compute-1 claiming compute-3 as an alias: agents claim no names.
    let mut with_alias = registration("compute-1", &t, &t.agent_url);
    with_alias["aliases"] = json!(["compute-3"]);
    let (status, body) = register(with_alias).await;
    assert_eq!(status, 422, "aliases are not an agent's to send: {body}");
    // … or re-point compute-1's agent URL at compute-3: an administrator's act.
    let (status, body) = register(registration("compute-1", &t, &m.agent_url)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("host-reenroll"),
        "{body}"
    );
    // An unchanged registration is a renewal: it gets a challenge, which only compute-1's
    // TPM can answer, through an agent that serves only the attestation server.
    let (status, body) = register(registration("compute-1", &t, &t.agent_url)).await;
    assert_eq!(status, 201, "{body}");

    // 3. Park compute-3's TPM under another name: one TPM, one name.
    let (status, body) = register(registration("compute-3-parked", &m, &m.agent_url)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("enrolled as host compute-3"),
        "{body}"
    );
    // 4. Take compute-1's name with compute-3's TPM.
    let (status, body) = register(registration("compute-1", &m, &m.agent_url)).await;
    assert_eq!(status, 409, "{body}");

    // Nothing moved: each name is still its own TPM, compute-3 has no alias.
    let (t_after, m_after) = (
        store.host_by_name("compute-1").await.unwrap().unwrap(),
        store.host_by_name("compute-3").await.unwrap().unwrap(),
    );
    assert_eq!((t_after.agent_id, t_after.aliases), (t.agent_id, t.aliases));
    assert_eq!((m_after.agent_id, m_after.aliases), (m.agent_id, m.aliases));

    // PollHosts, as Nova's TrustedFilter asks it: compute-3 is untrusted.
    let poll = http
        .post(format!("{server}/AttestationService/resources/PollHosts"))
        .header("x-auth-blob", "i-am-openstack")
        .json(&json!({"count": 2, "hosts": ["compute-3", "compute-1"]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(poll["hosts"][0]["trust_lvl"], "untrusted", "{poll}");
    assert_eq!(poll["hosts"][1]["trust_lvl"], "trusted", "{poll}");
    assert_eq!(
        compute.hypervisor("compute-3").await.unwrap().trust_level,
        "untrusted"
    );

    // And a trusted-only boot forced onto compute-3 finds no valid host.
    compute
        .create_flavor(&CreateFlavor {
            flavor: NewFlavor {
                name: "m1.tiny".into(),
                ram: 512,
                vcpus: 1,
                disk: 1,
                id: Some("1".into()),
                ephemeral: None,
                swap: None,
                rxtx_factor: None,
                is_public: None,
                description: None,
            },
        })
        .await
        .unwrap();
    compute
        .set_extra_specs(
            "1",
            BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
        )
        .await
        .unwrap();
    let id = compute
        .boot(NewServer {
            name: "pwned".into(),
            image_ref: "cirros".into(),
            flavor_ref: "m1.tiny".into(),
            availability_zone: Some("nova:compute-3".into()),
            min_count: None,
            max_count: None,
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let server = loop {
        let s = compute.server(&id).await.unwrap();
        if s.status != "BUILD" {
            break s;
        }
        assert!(Instant::now() < deadline, "stays in BUILD");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((server.status.as_str(), server.host), ("ERROR", None));
    pool.down();
    let _ = std::fs::remove_dir_all(&dir);
}
