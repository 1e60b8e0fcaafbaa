//! Who may enroll: software TPMs and unknown EK CAs refused, administrator approval,
//! the agent's pinned certificate, and re-enrollment with a replaced TPM.

use super::*;

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
        audit.iter().any(
            |e| e["actor"].as_str().is_some_and(|a| a.starts_with("admin-"))
                && e["action"] == "approved"
                && e["subject"] == "node1"
        ),
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
    api.wait_for("node1", "untrusted").await;
    api.adopt_golden("node1", "golden").await;
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

/// A host name bound to one TPM refuses another (audited) until an administrator opens a
/// re-enrollment window naming the new TPM's EK: another TPM that tries during the window is
/// refused (the first comer does not win); the named one takes the name, with no token, and
/// keeps the policies.
#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_tpm_enrolls_only_when_an_administrator_names_its_ek() {
    let pool = Pool::new(3);
    let server = trustpool_attestation::start(pool.server_config(true, &pool.ek_cas()))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let replacement_ek = pool.tpms[2].ek_certificate_sha256();
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
    // Another TPM claims the name: refused, with no window open.
    let intruder = pool
        .agent(1, "node1", "boot/known-good.toml", &server)
        .await;
    wait_audit(&server, "register_refused", "node1", "host-reenroll").await;
    // The administrator names the replacement's EK; the intruder, still retrying, is
    // refused during the window too.
    let (status, grant) = api
        .call(
            reqwest::Method::POST,
            "/v1/hosts/node1/re-enroll",
            Some(json!({"ek_certificate_sha256": replacement_ek})),
        )
        .await;
    assert_eq!(status, 201, "{grant}");
    wait_audit(
        &server,
        "register_refused",
        "node1",
        "may enroll only with the TPM",
    )
    .await;
    let (_, view) = api
        .call(reqwest::Method::GET, "/v1/hosts/node1", None)
        .await;
    assert_eq!(
        view["agent_id"], before["agent_id"],
        "the intruder was refused: {view}"
    );
    intruder.stop().await;
    // The replacement, named by its EK, needs no token.
    let second = pool
        .agent_with_token(
            2,
            "node1",
            "boot/known-good.toml",
            server.address.port(),
            None,
        )
        .await;
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
            .any(|(_, actor, action, subject, detail)| action == "enrolled"
                && subject == "node1"
                && detail.contains("another TPM")
                && detail.contains("credential from admin-")
                && actor == "agent"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|(_, actor, action, _, _)| action == "re-enroll_allowed"
                && actor.starts_with("admin-")),
        "the administrator's token name is recorded: {audit:?}"
    );
    second.stop().await;
    server.stop().await;
}

/// Waits until the audit log has `action` on `subject` with `detail` containing `needle`.
pub(super) async fn wait_audit(server: &RunningServer, action: &str, subject: &str, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let audit = server.service.store.audit_log(200).await.unwrap();
        if audit
            .iter()
            .any(|(_, _, a, s, d)| a == action && s == subject && d.contains(needle))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {action} of {subject} with {needle:?}: {audit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
