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
    api.adopt_golden("node1", "golden").await;
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

/// An agent restart (its emulated boot shuts swtpm down in order before power-cycling it,
/// as an OS rebooting does) keeps `clockInfo.safe` = YES: the host stays trusted. (A quote
/// with `safe` = NO is refused: `bounded::a_quote_whose_clock_is_not_safe_is_refused_naming_it`;
/// whether swtpm reports NO after an unclean reset depends on when it last saved its clock,
/// so that is not tested here.)
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_restart_keeps_the_tpm_clock_safe() {
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
    // An orderly restart of the agent (its emulated boot shuts the TPM down first): the
    // quotes of the new boot are trusted too.
    agent.stop().await;
    let restarted = trustpool_attestation::store::now_ms();
    let agent = pool
        .agent_at(0, "node1", "boot/known-good.toml", server.address.port())
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let latest = server
            .service
            .store
            .verdict_history(&agent_id_of(&api, "node1").await, 1)
            .await
            .unwrap();
        if let Some(v) = latest.first()
            && v.until > restarted + 1000
        {
            assert_eq!(v.level, trustpool_api::oat::TrustLevel::Trusted, "{v:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no verdict after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    agent.stop().await;
    server.stop().await;
}

async fn agent_id_of(api: &Api, host: &str) -> String {
    let (_, view) = api
        .call(reqwest::Method::GET, &format!("/v1/hosts/{host}"), None)
        .await;
    view["agent_id"].as_str().unwrap().to_owned()
}

/// The same on two servers sharing PostgreSQL: the server that takes the host over after
/// the first stops reads the baseline from the database (the last accepted quote, never a
/// rejected one) and keeps the rollback untrusted.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_stays_untrusted_on_the_server_that_takes_over() {
    let Ok(db) = std::env::var("TRUSTPOOL_TEST_POSTGRES") else {
        eprintln!("TRUSTPOOL_TEST_POSTGRES not set: skipped (make test runs it)");
        assert!(std::env::var("TRUSTPOOL_REQUIRE_POSTGRES").is_err());
        return;
    };
    let pool = Pool::new(1);
    let tag = free_port();
    let (name, policy) = (format!("clock{tag}"), format!("clock-golden-{tag}"));
    let config = |id: &str| {
        let mut c = pool.server_config(true, &pool.ek_cas());
        c.database_url = trustpool_attestation::config::Secret(db.clone());
        c.server_id = format!("{id}-{tag}");
        c
    };
    let a = trustpool_attestation::start(config("clock-a"))
        .await
        .unwrap();
    let api_a = Api::new(&pool, &a);
    let agent = pool.agent(0, &name, "boot/known-good.toml", &a).await;
    api_a.wait_for(&name, "untrusted").await;
    api_a.adopt_golden(&name, &policy).await;
    api_a.wait_for(&name, "trusted").await;
    // The rollback (as in the test above), seen by server A.
    let store = &a.service.store;
    let agent_id = store.host_by_name(&name).await.unwrap().unwrap().agent_id;
    let mut ahead = store.verdict_history(&agent_id, 1).await.unwrap()[0].clone();
    ahead.id = trustpool_attestation::store::new_id();
    ahead.at = trustpool_attestation::store::now_ms();
    ahead.until = ahead.at;
    ahead.reset_count = Some(1_000);
    ahead.restart_count = Some(0);
    ahead.clock = Some(0);
    store.insert_verdict(&ahead).await.unwrap();
    a.service.refresh_cache().await.unwrap();
    // A's in-memory baseline is its own; make it read the database's, as a fresh server does.
    a.stop().await;
    let a = trustpool_attestation::start(config("clock-a"))
        .await
        .unwrap();
    let api_a = Api::new(&pool, &a);
    api_a.wait_for(&name, "untrusted").await;
    // Server B starts; A stops: B takes the host over (after A's lease) and still refuses.
    let b = trustpool_attestation::start(config("clock-b"))
        .await
        .unwrap();
    let api_b = Api::new(&pool, &b);
    a.stop().await;
    let taken_over = trustpool_attestation::store::now_ms();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let owner = b.service.store.lease_owner(&agent_id).await.unwrap();
        let latest = b.service.store.verdict_history(&agent_id, 1).await.unwrap();
        if owner.as_deref() == Some(b.service.config.server_id.as_str())
            && latest.first().is_some_and(|v| v.until > taken_over + 2_000)
        {
            let v = &latest[0];
            assert_eq!(v.level, trustpool_api::oat::TrustLevel::Untrusted, "{v:?}");
            assert!(
                v.reasons.iter().any(|r| r.contains("went backwards")),
                "{v:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never took the host over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = api_b
        .call(
            reqwest::Method::POST,
            &format!("/v1/hosts/{name}/clock-reset"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    api_b.wait_for(&name, "trusted").await;
    agent.stop().await;
    b.stop().await;
}
