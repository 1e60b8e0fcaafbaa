//! An enrolled agent that answers a challenge with an endless body (chunked, no
//! `Content-Length`) costs the server at most the response limit, not everything it can
//! stream for `agent_timeout` (security review H3: one host could exhaust the server's
//! memory, every interval).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::routing::post;
use trustpool_api::oat::TrustLevel;
use trustpool_client::serve::HttpsListener;
use trustpool_testkit::pki::TestPki;

use crate::fixtures::host;

/// What the client reads at most (`trustpool-client`'s response limit).
const LIMIT: u64 = 32 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_streaming_without_end_is_cut_off_at_the_limit() {
    let dir = std::env::temp_dir().join(format!("trustpool-bounded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = crate::fixtures::server_config(&dir);
    // The hostile agent: a certificate from the agents' CA (pinned at enrollment), and a
    // quote answer that never ends.
    let pki = TestPki::new(&dir.join("agent-pki"), "hostile agent CA");
    let issued = pki.issue_server("agent", &["127.0.0.1"]);
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let app = axum::Router::new().route(
        "/v1/quote",
        post(move || {
            let counter = counter.clone();
            async move {
                let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
                let endless = futures_util::stream::repeat_with(move || {
                    counter.fetch_add(64 * 1024, Ordering::Relaxed);
                    Ok::<_, std::io::Error>(chunk.clone())
                });
                axum::body::Body::from_stream(endless)
            }
        }),
    );
    let tls = trustpool_client::tls::server_config(&issued.cert_pem(), &issued.key_pem()).unwrap();
    let agent = HttpsListener::start("127.0.0.1:0".parse().unwrap(), tls, app)
        .await
        .unwrap();
    let mut config = config;
    config.agents_ca = pki.ca_cert();
    config.agent_timeout = Duration::from_secs(20);
    let server = trustpool_attestation::start(config).await.unwrap();
    let service = &server.service;
    let mut record = host("hostile", "compute-9", &[]);
    record.agent_url = format!("https://127.0.0.1:{}", agent.address.port());
    record.agent_certificate = issued.cert_pem();
    // A real AK (tpm2_createak): the server gets as far as challenging the agent.
    record.ak_public = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/quote/rsa2048-sha256/ak.pub"
    ))
    .unwrap();
    service
        .store
        .enroll_host(&record, Some("ek-of-hostile"), None, None)
        .await
        .unwrap();
    service.refresh_cache().await.unwrap();

    let verdict = service.attest_now("test", "compute-9").await.unwrap();
    let streamed = sent.load(Ordering::Relaxed);
    assert_ne!(verdict.level, TrustLevel::Trusted);
    assert!(
        verdict.reasons.iter().any(|r| r.contains("too large")),
        "{verdict:?}"
    );
    // Cut off at the limit (plus what sits in socket and TLS buffers); the old client read
    // the whole stream until the 20 s agent timeout (gigabytes on loopback).
    assert!(
        streamed < LIMIT + (8 << 20),
        "the server let the agent stream {streamed} bytes"
    );
    server.stop().await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every server's listener: connections beyond its cap are refused at accept, and a peer
/// that connects and sends nothing is closed after the handshake timeout (the permit is
/// then free again). Before, neither was bounded.
#[tokio::test(flavor = "multi_thread")]
async fn a_listener_refuses_connections_beyond_its_cap_and_closes_silent_ones() {
    use tokio::io::AsyncReadExt as _;
    let dir = std::env::temp_dir().join(format!("trustpool-cap-{}", std::process::id()));
    let pki = TestPki::new(&dir, "listener CA");
    let issued = pki.issue_server("server", &["127.0.0.1"]);
    let tls = trustpool_client::tls::server_config(&issued.cert_pem(), &issued.key_pem()).unwrap();
    let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }));
    let limits = trustpool_client::serve::ServeLimits {
        max_connections: 3,
        handshake_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(1),
    };
    let listener = HttpsListener::start_with("127.0.0.1:0".parse().unwrap(), tls, app, limits)
        .await
        .unwrap();
    let addr = listener.address;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(
            trustpool_client::tls::client_config(&trustpool_client::TlsOptions {
                ca_pem: Some(pki.ca_pem()),
                identity: None,
            })
            .unwrap(),
        )
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/ok", addr.port());
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        client.get(&url).send().await.is_err(),
        "a fourth connection is refused while three are open"
    );
    for mut s in silent {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "a silent peer is closed: {read:?}"
        );
    }
    let answer = client.get(&url).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "ok");
    listener.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A correct quote — right nonce, selection, digest and AK — whose `clockInfo.safe` is NO
/// (the TPM lost power without saving its clock) is not trusted, naming why; the same quote
/// with `safe` = YES is refused for another reason only (this host has no policy).
#[tokio::test(flavor = "multi_thread")]
async fn a_quote_whose_clock_is_not_safe_is_refused_naming_it() {
    use trustpool_api::agent::{QuoteRequest, QuoteResponse};
    use trustpool_evidence::{HashAlg, PcrIndex, PcrSelection, PcrSet, PcrValues};
    use trustpool_testkit::attest::AttestBuilder;
    use trustpool_testkit::soft_ak::SoftAk;

    for safe in [0u8, 1] {
        let dir =
            std::env::temp_dir().join(format!("trustpool-safe-{}-{safe}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = crate::fixtures::server_config(&dir);
        let pki = TestPki::new(&dir.join("agent-pki"), "agent CA");
        let issued = pki.issue_server("agent", &["127.0.0.1"]);
        config.agents_ca = pki.ca_cert();
        let ak = Arc::new(SoftAk::p256());
        let signer = ak.clone();
        let app = axum::Router::new().route(
            "/v1/quote",
            post(move |axum::Json(req): axum::Json<QuoteRequest>| {
                let ak = signer.clone();
                async move {
                    // Every selected PCR (SHA-256) holds a digest of its index.
                    let mut values = PcrValues::new();
                    let mut wire = std::collections::BTreeMap::new();
                    let mut set = Vec::new();
                    for bank in req.selection.banks() {
                        for i in &bank.pcrs {
                            let d = HashAlg::Sha256.hash(&[*i]);
                            wire.insert(*i, trustpool_api::HexBytes(d.as_bytes().to_vec()));
                            let p = PcrIndex::new(*i).unwrap();
                            values.insert(p, d);
                            set.push(p);
                        }
                    }
                    let selection =
                        PcrSelection::new(vec![(HashAlg::Sha256, PcrSet::from_indices(set))])
                            .unwrap();
                    let mut attest = AttestBuilder::quote_selection(
                        req.nonce.as_bytes(),
                        &selection,
                        &values,
                        HashAlg::Sha256,
                    );
                    attest.safe = safe;
                    let message = attest.build();
                    axum::Json(QuoteResponse {
                        signature: trustpool_api::Base64Bytes(ak.sign(&message)),
                        attest: trustpool_api::Base64Bytes(message),
                        pcrs: vec![trustpool_api::PcrBankValues {
                            bank: trustpool_api::HashAlgorithm::Sha256,
                            values: wire,
                        }],
                        event_log: None,
                    })
                }
            }),
        );
        let tls =
            trustpool_client::tls::server_config(&issued.cert_pem(), &issued.key_pem()).unwrap();
        let agent = HttpsListener::start("127.0.0.1:0".parse().unwrap(), tls, app)
            .await
            .unwrap();
        let server = trustpool_attestation::start(config).await.unwrap();
        let mut record = host("soft", "compute-1", &[]);
        record.agent_url = format!("https://127.0.0.1:{}", agent.address.port());
        record.agent_certificate = issued.cert_pem();
        record.ak_public = ak.public().to_tpm2b();
        server
            .service
            .store
            .enroll_host(&record, Some("ek-of-soft"), None, None)
            .await
            .unwrap();
        server.service.refresh_cache().await.unwrap();
        let verdict = server
            .service
            .attest_now("test", "compute-1")
            .await
            .unwrap();
        assert_eq!(verdict.level, TrustLevel::Untrusted, "{verdict:?}");
        let not_safe = verdict.reasons.iter().any(|r| r.contains("not safe"));
        assert_eq!(not_safe, safe == 0, "safe = {safe}: {verdict:?}");
        server.stop().await;
        agent.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
