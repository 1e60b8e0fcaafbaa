//! The activation-proof checks, each failing alone: wrong secret, another agent's challenge,
//! an expired challenge, a used challenge.

use trustpool_api::Base64Bytes;
use trustpool_api::enrollment::{ActivationProof, RegisterRequest};
use trustpool_attestation::service::ServiceError;
use trustpool_attestation::store::now_ms;
use trustpool_testkit::pki::TestPki;

fn sha256_hex(b: &[u8]) -> String {
    trustpool_api::bytes::to_hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref())
}

#[tokio::test(flavor = "multi_thread")]
async fn activation_proofs_are_checked() {
    let dir = std::env::temp_dir().join(format!("trustpool-enroll-{}", std::process::id()));
    let pki = TestPki::new(&dir.join("pki"), "enroll CA");
    let _ = pki.issue("server", &["127.0.0.1"]);
    let p = dir.join("pki");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n[enrollment]\nek_ca = [\"{p}/ca.crt\"]\n",
        db = dir.join("enroll.db").display(),
        p = p.display()
    );
    let server = trustpool_attestation::start(
        trustpool_attestation::config::Config::parse(&text, "e.toml").unwrap(),
    )
    .await
    .unwrap();
    let s = server.service.clone();
    let registration = serde_json::json!({
        "request": RegisterRequest {
            host_name: "node1".into(), enrollment_token: None, agent_url: "https://127.0.0.1:1".into(), agent_certificate: String::new(),
            // A real EK public area (made by tpm2_createek): activation re-checks the rules
            // of one TPM, one name on it.
            ek_public: Base64Bytes(std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/quote/rsa2048-sha256/ek.pub")).unwrap()),
            ek_certificate: None, ak_public: Base64Bytes(vec![2]),
        },
        "software_tpm": false,
        "token_sha256": sha256_hex(b"bootstrap"),
    })
    .to_string();
    // The administrator's grant for node1 that the registration presented.
    s.store
        .put_grant(&trustpool_attestation::store::Grant {
            host_name: "node1".into(),
            token_hash: sha256_hex(b"bootstrap"),
            ek_sha256: None,
            aliases: vec![],
            created_by: "test".into(),
            created_at: now_ms(),
            expires_at: now_ms() + 60_000,
        })
        .await
        .unwrap();
    let secret = [7u8; 32];
    let later = now_ms() + 60_000;
    for (id, agent, expires) in [
        ("c-ok", "agent-a", later),
        ("c-wrong", "agent-a", later),
        ("c-other", "agent-b", later),
        ("c-expired", "agent-a", now_ms() - 1),
    ] {
        s.store
            .put_challenge(id, agent, &sha256_hex(&secret), &registration, expires)
            .await
            .unwrap();
    }
    let proof = |id: &str, secret: &[u8]| ActivationProof {
        challenge_id: id.into(),
        secret: Base64Bytes(secret.to_vec()),
    };

    let wrong = s
        .prove("agent-a", &proof("c-wrong", &[8u8; 32]))
        .await
        .unwrap_err();
    assert!(matches!(wrong, ServiceError::Forbidden(_)), "{wrong}");
    let other = s
        .prove("agent-a", &proof("c-other", &secret))
        .await
        .unwrap_err();
    assert!(matches!(other, ServiceError::NotFound(_)), "{other}");
    let expired = s
        .prove("agent-a", &proof("c-expired", &secret))
        .await
        .unwrap_err();
    assert!(matches!(expired, ServiceError::NotFound(_)), "{expired}");
    assert!(
        s.store.host_by_name("node1").await.unwrap().is_none(),
        "nothing is stored before a valid proof"
    );

    s.prove("agent-a", &proof("c-ok", &secret)).await.unwrap();
    assert!(s.store.host_by_name("node1").await.unwrap().is_some());
    let reused = s
        .prove("agent-a", &proof("c-ok", &secret))
        .await
        .unwrap_err();
    assert!(
        matches!(reused, ServiceError::NotFound(_)),
        "single use: {reused}"
    );
    let audit = s.store.audit_log(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, _, action, _, _)| action == "activation_failed")
    );
    drop(s);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Registrations cost a credential each: beyond the configured rate (burst twice that) the
/// server answers 429 before doing any work.
#[tokio::test(flavor = "multi_thread")]
async fn registration_floods_are_refused_with_429() {
    let dir = std::env::temp_dir().join(format!("trustpool-flood-{}", std::process::id()));
    let pki = TestPki::new(&dir.join("pki"), "flood CA");
    let _ = pki.issue("server", &["127.0.0.1"]);
    let p = dir.join("pki");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n\
         [enrollment]\nek_ca = [\"{p}/ca.crt\"]\nmax_registrations_per_second = 1\n",
        db = dir.join("flood.db").display(),
        p = p.display()
    );
    let server = trustpool_attestation::start(
        trustpool_attestation::config::Config::parse(&text, "f.toml").unwrap(),
    )
    .await
    .unwrap();
    let tls = trustpool_client::tls::client_config(&trustpool_client::TlsOptions {
        ca_pem: Some(pki.ca_pem()),
        identity: None,
    })
    .unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let body = serde_json::json!({
        "host_name": "node1", "agent_url": "https://127.0.0.1:1",
        "agent_certificate": pki.ca_pem(), "ek_public": "AQ==", "ek_certificate": null, "ak_public": "Ag==",
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let resp = client
            .post(format!(
                "https://127.0.0.1:{}/v1/agents/register",
                server.address.port()
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(
        &statuses[..2],
        &[422, 422],
        "{statuses:?}: the burst is processed"
    );
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
    server.stop().await;
}

/// A registration without a usable agent TLS certificate (the one that will be pinned) is
/// refused before anything else is looked at.
#[tokio::test(flavor = "multi_thread")]
async fn a_registration_without_a_usable_agent_certificate_is_refused() {
    let dir = std::env::temp_dir().join(format!("trustpool-nocert-{}", std::process::id()));
    let pki = TestPki::new(&dir.join("pki"), "nocert CA");
    let _ = pki.issue("server", &["127.0.0.1"]);
    let p = dir.join("pki");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n[enrollment]\nek_ca = [\"{p}/ca.crt\"]\n",
        db = dir.join("nocert.db").display(),
        p = p.display()
    );
    let server = trustpool_attestation::start(
        trustpool_attestation::config::Config::parse(&text, "n.toml").unwrap(),
    )
    .await
    .unwrap();
    let request = |certificate: String| RegisterRequest {
        host_name: "node1".into(),
        enrollment_token: None,
        agent_url: "https://127.0.0.1:1".into(),
        agent_certificate: certificate,
        ek_public: Base64Bytes(vec![1]),
        ek_certificate: None,
        ak_public: Base64Bytes(vec![2]),
    };
    let refused = server.service.register(&request(String::new())).await;
    assert!(
        matches!(&refused, Err(ServiceError::BadRequest(m)) if m.contains("agent_certificate")),
        "{refused:?}"
    );
    // Exactly one certificate: a chain (or a bundle of many) is not the agent's.
    let two = format!("{}{}", pki.ca_pem(), pki.ca_pem());
    let refused = server.service.register(&request(two)).await;
    assert!(
        matches!(&refused, Err(ServiceError::BadRequest(m)) if m.contains("exactly one")),
        "{refused:?}"
    );
    // With a certificate the same request gets further (and fails on its fake keys).
    let further = server.service.register(&request(pki.ca_pem())).await;
    assert!(
        !matches!(&further, Err(ServiceError::BadRequest(m)) if m.contains("agent_certificate")),
        "{further:?}"
    );
    server.stop().await;
}
