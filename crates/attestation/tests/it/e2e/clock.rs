//! TPM clock continuity that cannot flip-flop: a TPM whose counters went backwards (its
//! state restored from a snapshot) is untrusted, stays untrusted across server restarts
//! (the rejected quote is no baseline), and is trusted again only once an administrator
//! accepts the rollback. (A `TPM2_Clear` invalidates the AK itself: that host re-enrolls.)

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_tpm_clock_stays_untrusted_until_an_administrator_accepts_it() {
    let pool = Pool::new(1);
    let config = pool.server_config(true, &pool.ek_cas());
    let server = trustpool_attestation::start(config.clone()).await.unwrap();
    let api = Api::new(&pool, &server);
    let agent = pool
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
    api.call(
        reqwest::Method::PUT,
        "/v1/hosts/node1/policies",
        Some(json!({"policies": ["golden"]})),
    )
    .await;
    api.wait_for("node1", "trusted").await;

    // The TPM's state is rolled back behind the server's back (a vTPM snapshot restored):
    // stand-in for it, the server's record of an earlier quote with counters far ahead of
    // what the TPM now reports.
    server.stop().await;
    let store = trustpool_attestation::store::Store::connect(&config.database_url.0)
        .await
        .unwrap();
    let agent_id = store.host_by_name("node1").await.unwrap().unwrap().agent_id;
    let mut ahead = store.verdict_history(&agent_id, 1).await.unwrap()[0].clone();
    ahead.id = trustpool_attestation::store::new_id();
    ahead.at = trustpool_attestation::store::now_ms();
    ahead.until = ahead.at;
    ahead.reset_count = Some(1_000);
    ahead.restart_count = Some(0);
    ahead.clock = Some(0);
    store.insert_verdict(&ahead).await.unwrap();
    drop(store);
    let server = trustpool_attestation::start(config.clone()).await.unwrap();
    let api = Api::new(&pool, &server);
    let view = api.wait_for("node1", "untrusted").await;
    let reasons = view["reasons"].to_string();
    assert!(
        reasons.contains("went backwards") && reasons.contains("host-clock-reset"),
        "{view}"
    );

    // A restarted server does not take the rejected quote as its baseline: no flip back.
    server.stop().await;
    let server = trustpool_attestation::start(config.clone()).await.unwrap();
    let api = Api::new(&pool, &server);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, view) = api
        .call(reqwest::Method::GET, "/v1/hosts/node1", None)
        .await;
    assert_eq!(view["trust_lvl"], "untrusted", "still refused: {view}");

    // The administrator accepts the rollback: the next quote is the baseline.
    let (status, _) = api
        .call(reqwest::Method::POST, "/v1/hosts/node1/clock-reset", None)
        .await;
    assert_eq!(status, 200);
    api.wait_for("node1", "trusted").await;
    let audit = server.service.store.audit_log(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, actor, action, subject, _)| action == "clock_reset"
                && subject == "node1"
                && actor.starts_with("admin-")),
        "{audit:?}"
    );
    agent.stop().await;
    server.stop().await;
}

/// A TPM that lost power without an orderly shutdown reports `clockInfo.safe = NO`: its
/// clock may have gone backwards unnoticed, so its quotes are not trusted (the emulated
/// boot, like an OS rebooting, shuts the TPM down in order first, so agents restarting
/// normally stay trusted).
#[tokio::test(flavor = "multi_thread")]
async fn a_tpm_that_lost_power_uncleanly_is_not_trusted() {
    let pool = Pool::new(1);
    let server = trustpool_attestation::start(pool.server_config(true, &pool.ek_cas()))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let agent = pool
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
    api.call(
        reqwest::Method::PUT,
        "/v1/hosts/node1/policies",
        Some(json!({"policies": ["golden"]})),
    )
    .await;
    api.wait_for("node1", "trusted").await;
    // An orderly restart of the agent (its emulated boot shuts the TPM down first) stays
    // trusted.
    agent.stop().await;
    let agent = pool
        .agent_at(0, "node1", "boot/known-good.toml", server.address.port())
        .await;
    api.wait_for("node1", "trusted").await;
    // The power goes: the TPM is reset without TPM2_Shutdown (swtpm's CMD_INIT on its
    // control channel), then the host boots again.
    agent.stop().await;
    let tcti = pool.tpms[0].tcti();
    let port: u16 = tcti
        .rsplit("port=")
        .next()
        .and_then(|p| p.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let out = std::process::Command::new("swtpm_ioctl")
        .args(["--tcp", &format!("127.0.0.1:{}", port + 1), "-i"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = pool
        .agent_at(0, "node1", "boot/known-good.toml", server.address.port())
        .await;
    let view = api.wait_for("node1", "untrusted").await;
    assert!(view["reasons"].to_string().contains("not safe"), "{view}");
    agent.stop().await;
    server.stop().await;
}
