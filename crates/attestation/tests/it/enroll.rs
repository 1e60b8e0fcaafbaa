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
        ("c0", "0a0a", later),
        ("c1", "0a0a", later),
        ("c2", "0b0b", later),
        ("c3", "0a0a", now_ms() - 1),
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
        .prove("0a0a", &proof("c1", &[8u8; 32]), None)
        .await
        .unwrap_err();
    assert!(matches!(wrong, ServiceError::Forbidden(_)), "{wrong}");
    let other = s
        .prove("0a0a", &proof("c2", &secret), None)
        .await
        .unwrap_err();
    assert!(matches!(other, ServiceError::NotFound(_)), "{other}");
    let expired = s
        .prove("0a0a", &proof("c3", &secret), None)
        .await
        .unwrap_err();
    assert!(matches!(expired, ServiceError::NotFound(_)), "{expired}");
    // Ids that no challenge can have are refused before a rate token is spent.
    let junk = s
        .prove("not-hex", &proof("c0", &secret), None)
        .await
        .unwrap_err();
    assert!(matches!(junk, ServiceError::NotFound(_)), "{junk}");
    assert!(
        s.store.host_by_name("node1").await.unwrap().is_none(),
        "nothing is stored before a valid proof"
    );

    s.prove("0a0a", &proof("c0", &secret), None).await.unwrap();
    assert!(s.store.host_by_name("node1").await.unwrap().is_some());
    let reused = s
        .prove("0a0a", &proof("c0", &secret), None)
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
    let refused = server.service.register(&request(String::new()), None).await;
    assert!(
        matches!(&refused, Err(ServiceError::BadRequest(m)) if m.contains("agent_certificate")),
        "{refused:?}"
    );
    // Exactly one certificate: a chain (or a bundle of many) is not the agent's.
    let two = format!("{}{}", pki.ca_pem(), pki.ca_pem());
    let refused = server.service.register(&request(two), None).await;
    assert!(
        matches!(&refused, Err(ServiceError::BadRequest(m)) if m.contains("exactly one")),
        "{refused:?}"
    );
    // With a certificate the same request gets further (and fails on its fake keys).
    let further = server.service.register(&request(pki.ca_pem()), None).await;
    assert!(
        !matches!(&further, Err(ServiceError::BadRequest(m)) if m.contains("agent_certificate")),
        "{further:?}"
    );
    server.stop().await;
}

/// One client flooding registrations spends its own budget, not everyone's: past its
/// per-address rate it gets 429 naming its address while the server-wide budget is left.
#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_spend_everyones_enrollment_budget() {
    let dir = std::env::temp_dir().join(format!("trustpool-source-{}", std::process::id()));
    let mut config = crate::fixtures::server_config(&dir);
    config.max_registrations_per_second = 1000;
    config.max_registrations_per_source_per_second = 1;
    let server = trustpool_attestation::start(config).await.unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(dir.join("pki/ca.crt")).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let body = serde_json::json!({
        "host_name": "node1", "agent_url": "https://127.0.0.1:1",
        "agent_certificate": std::fs::read_to_string(dir.join("pki/ca.crt")).unwrap(),
        "ek_public": "AQ==", "ek_certificate": null, "ak_public": "Ag==",
    });
    let mut answers = Vec::new();
    for _ in 0..4 {
        let resp = client
            .post(format!(
                "https://127.0.0.1:{}/v1/agents/register",
                server.address.port()
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
    }
    assert_eq!((answers[0].0, answers[1].0), (422, 422), "{answers:?}");
    assert!(
        answers[2..]
            .iter()
            .all(|(s, m)| *s == 429 && m.contains("from 127.0.0.1")),
        "{answers:?}"
    );
    // Another client still has the server-wide budget.
    let other = server
        .service
        .register(
            &serde_json::from_value(body).unwrap(),
            Some("10.1.2.3".parse().unwrap()),
        )
        .await;
    assert!(!matches!(other, Err(ServiceError::TooMany(_))), "{other:?}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Challenges nobody answered and audit rows past retention are deleted (hourly).
#[tokio::test(flavor = "multi_thread")]
async fn expired_challenges_and_old_audit_rows_are_deleted() {
    let dir = std::env::temp_dir().join(format!("trustpool-maint-{}", std::process::id()));
    let mut config = crate::fixtures::server_config(&dir);
    config.audit_retention = std::time::Duration::from_millis(1);
    let server = trustpool_attestation::start(config).await.unwrap();
    let s = &server.service;
    for (id, expires) in [("aa", now_ms() - 1), ("bb", now_ms() + 60_000)] {
        s.store
            .put_challenge(id, "0a", "00", "{}", expires)
            .await
            .unwrap();
    }
    s.store.audit("test", "something", "x", "").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // (The hourly task runs once at start too, and may have been first.)
    let _ = s.maintain().await.unwrap();
    assert!(
        s.store.audit_log(10).await.unwrap().is_empty(),
        "past retention"
    );
    assert!(s.store.take_challenge("bb").await.unwrap().is_some());
    assert!(s.store.take_challenge("aa").await.unwrap().is_none());
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each cheap check of a registration refuses alone, with a 400 naming its field, before
/// any key is parsed or rate token spent: what an unauthenticated client can make the
/// server store or parse is bounded field by field.
#[tokio::test(flavor = "multi_thread")]
async fn each_cheap_registration_check_refuses_alone_naming_its_field() {
    let dir = std::env::temp_dir().join(format!("trustpool-cheap-{}", std::process::id()));
    let server = trustpool_attestation::start(crate::fixtures::server_config(&dir))
        .await
        .unwrap();
    let good = RegisterRequest {
        host_name: "node1".into(),
        enrollment_token: Some("t".into()),
        agent_url: "https://127.0.0.1:1".into(),
        agent_certificate: std::fs::read_to_string(dir.join("pki/ca.crt")).unwrap(),
        ek_public: Base64Bytes(vec![1]),
        ek_certificate: Some(Base64Bytes(vec![2])),
        ak_public: Base64Bytes(vec![3]),
    };
    let passes = server.service.register(&good, None).await;
    assert!(
        !matches!(passes, Err(ServiceError::BadRequest(_))),
        "the base request passes the cheap checks: {passes:?}"
    );
    let cases: Vec<(&str, RegisterRequest)> = vec![
        (
            "host_name",
            RegisterRequest {
                host_name: "a/b".into(),
                ..good.clone()
            },
        ),
        (
            "ek_certificate",
            RegisterRequest {
                ek_certificate: Some(Base64Bytes(vec![0; 16 * 1024 + 1])),
                ..good.clone()
            },
        ),
        (
            "ek_public",
            RegisterRequest {
                ek_public: Base64Bytes(vec![0; 1027]),
                ..good.clone()
            },
        ),
        (
            "ak_public",
            RegisterRequest {
                ak_public: Base64Bytes(vec![0; 1027]),
                ..good.clone()
            },
        ),
        (
            "agent_url",
            RegisterRequest {
                agent_url: format!("https://{}", "a".repeat(600)),
                ..good.clone()
            },
        ),
        (
            "agent_url",
            RegisterRequest {
                agent_url: "http://127.0.0.1:1".into(),
                ..good.clone()
            },
        ),
        (
            "enrollment_token",
            RegisterRequest {
                enrollment_token: Some(String::new()),
                ..good.clone()
            },
        ),
        (
            "enrollment_token",
            RegisterRequest {
                enrollment_token: Some("t".repeat(257)),
                ..good.clone()
            },
        ),
        (
            "agent_certificate",
            RegisterRequest {
                agent_certificate: "x".repeat(16 * 1024 + 1),
                ..good.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let refused = server.service.register(&request, None).await;
        assert!(
            matches!(&refused, Err(ServiceError::BadRequest(m)) if m.contains(field)),
            "{field}: {refused:?}"
        );
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
