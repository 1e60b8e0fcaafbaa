//! A replayed quote and a swapped AK are rejected; a server restart loses nothing.

use super::*;

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
    api.adopt_golden("node1", "golden").await;
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
    let verdict = service.attest_now("test", "node1").await.unwrap();
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
    let verdict = service.attest_now("test", "node1").await.unwrap();
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
