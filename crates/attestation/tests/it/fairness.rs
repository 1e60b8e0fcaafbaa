//! Fair challenging (security review M6): enrolled names whose agents accept connections and
//! never answer do not make answering hosts late, and a host is never challenged twice at
//! once. The answering hosts here are stand-in agents that answer every challenge at once
//! with a quote that is not one (so their hosts are `untrusted`, with a fresh verdict each
//! interval): what is measured is the challenger, not the verification.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::post;
use tokio::time::Instant;
use trustpool_api::Base64Bytes;
use trustpool_api::agent::QuoteResponse;
use trustpool_api::oat::TrustLevel;
use trustpool_attestation::RunningServer;
use trustpool_attestation::store::{HostRecord, now_ms};
use trustpool_testkit::soft_ak::SoftAk;

use crate::fixtures::{host, server_config};

const INTERVAL: Duration = Duration::from_secs(1);
const TTL: Duration = Duration::from_secs(3);
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONCURRENCY: usize = 8;
const MAX_CONCURRENCY_FAILING: usize = 1;

/// A server challenging every second, verdicts valid 3 s, agents given 5 s, 8 permits for
/// answering hosts and 1 for the others.
async fn start(tag: &str) -> (RunningServer, PathBuf) {
    let dir = std::env::temp_dir().join(format!("trustpool-fairness-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = server_config(&dir);
    config.interval = INTERVAL;
    config.verdict_ttl = TTL;
    config.agent_timeout = AGENT_TIMEOUT;
    config.max_concurrency = MAX_CONCURRENCY;
    config.max_concurrency_failing = MAX_CONCURRENCY_FAILING;
    let server = trustpool_attestation::start(config).await.unwrap();
    (server, dir)
}

/// Requests a stand-in agent got, and how many it was answering at most at once.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
}

/// A stand-in agent with the server's test certificate (valid for 127.0.0.1 under the
/// agents' CA) that answers `/v1/quote` after `delay` with a quote that is not one.
async fn agent(dir: &Path, delay: Duration) -> (String, Arc<Seen>) {
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        dir.join("pki/server.crt"),
        dir.join("pki/server.key"),
    )
    .await
    .unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    let app = axum::Router::new().route(
        "/v1/quote",
        post(move || {
            let seen = counts.clone();
            async move {
                seen.requests.fetch_add(1, Ordering::SeqCst);
                let now = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                seen.now.fetch_sub(1, Ordering::SeqCst);
                axum::Json(QuoteResponse {
                    attest: Base64Bytes(b"not a TPMS_ATTEST".to_vec()),
                    signature: Base64Bytes(b"not a signature".to_vec()),
                    pcrs: vec![],
                    event_log: None,
                })
            }
        }),
    );
    let handle: axum_server::Handle<std::net::SocketAddr> = axum_server::Handle::new();
    tokio::spawn(
        axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls)
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );
    let addr = handle.listening().await.unwrap();
    (format!("https://127.0.0.1:{}", addr.port()), seen)
}

/// A port that accepts connections and never answers (the sockets stay open); returns its
/// URL and the number of connections accepted.
async fn stalling_port() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            open.push(socket);
        }
    });
    (url, accepted)
}

/// A host whose agent at `url` presents the test certificate, with a usable (software) AK,
/// enrolled the way enrollment stores one.
async fn enroll(server: &RunningServer, dir: &Path, id: &str, url: &str) {
    let record = HostRecord {
        agent_url: url.to_owned(),
        agent_certificate: std::fs::read_to_string(dir.join("pki/server.crt")).unwrap(),
        ak_public: SoftAk::p256().public().to_tpm2b(),
        ..host(id, &format!("{id}.example.com"), &[])
    };
    server
        .service
        .store
        .enroll_host(&record, Some(&format!("ek-of-{id}")), None, None)
        .await
        .unwrap();
}

/// How old each host's latest verdict is (ms), and its level now; `None` before its first.
fn verdicts(server: &RunningServer, ids: &[String]) -> Vec<Option<(i64, TrustLevel)>> {
    let ttl_ms = i64::try_from(TTL.as_millis()).unwrap();
    let now = now_ms();
    ids.iter()
        .map(|id| {
            let host = server.service.cache.host_by_id(id)?;
            let latest = host.latest()?;
            Some((now - latest.at, host.level_at(now, ttl_ms)))
        })
        .collect()
}

/// A gauge's value in the /metrics text.
fn gauge(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_stalling_agents_do_not_make_answering_hosts_late() {
    let (server, dir) = start("stalling").await;
    let (good_url, good_seen) = agent(&dir, Duration::ZERO).await;
    let (stall_url, accepted) = stalling_port().await;
    // An established pool: four hosts whose agents answer, each with a verdict.
    let good: Vec<String> = (0..4).map(|i| format!("good-{i}")).collect();
    for id in &good {
        enroll(&server, &dir, id, &good_url).await;
    }
    server.service.refresh_cache().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while verdicts(&server, &good).iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "no first verdicts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then 100 names whose agents accept a connection and never answer.
    let stalling: Vec<String> = (0..100).map(|i| format!("stall-{i:03}")).collect();
    for id in &stalling {
        enroll(&server, &dir, id, &stall_url).await;
    }
    server.service.refresh_cache().await.unwrap();

    // For 10 s (two agent timeouts): every answering host keeps a fresh verdict.
    let watch = Instant::now();
    let mut oldest = 0i64;
    let (mut most_main, mut most_failing) = (0u64, 0u64);
    while watch.elapsed() < Duration::from_secs(10) {
        for (id, v) in good.iter().zip(verdicts(&server, &good)) {
            let (age, level) = v.unwrap();
            oldest = oldest.max(age);
            assert_eq!(
                level,
                TrustLevel::Untrusted,
                "{id}: its verdict is {age} ms old after {:?}",
                watch.elapsed()
            );
        }
        let metrics = server.service.metrics.render(&[]);
        most_main = most_main.max(gauge(
            &metrics,
            "trustpool_challenges_in_flight{budget=\"main\"}",
        ));
        most_failing = most_failing.max(gauge(
            &metrics,
            "trustpool_challenges_in_flight{budget=\"failing\"}",
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "answering hosts' oldest verdict: {oldest} ms; in flight at most: {most_main} main, \
         {most_failing} failing; connections to the stalling port: {}; answers: {}",
        accepted.load(Ordering::SeqCst),
        good_seen.requests.load(Ordering::SeqCst),
    );
    // Challenged every second (plus jitter and the challenger's 250 ms tick).
    assert!(
        oldest < 2_000,
        "an answering host's verdict got {oldest} ms old"
    );
    assert!(most_main <= u64::try_from(MAX_CONCURRENCY).unwrap());
    assert!(most_failing <= u64::try_from(MAX_CONCURRENCY_FAILING).unwrap());
    // The stalling hosts draw from their own budget, one at a time: a 5 s timeout each.
    let connections = accepted.load(Ordering::SeqCst);
    assert!((1..=4).contains(&connections), "{connections} connections");
    let levels = verdicts(&server, &stalling);
    assert!(
        levels
            .iter()
            .all(|v| v.is_none_or(|(_, level)| level == TrustLevel::Unknown)),
        "{levels:?}"
    );
    let metrics = server.service.metrics.render(&[]);
    assert_eq!(
        gauge(
            &metrics,
            "trustpool_challenger_hosts{standing=\"answering\"}"
        ),
        4
    );
    let backing_off = gauge(
        &metrics,
        "trustpool_challenger_hosts{standing=\"backing_off\"}",
    );
    let unproven = gauge(
        &metrics,
        "trustpool_challenger_hosts{standing=\"unproven\"}",
    );
    assert_eq!(backing_off + unproven, 100);
    assert!(backing_off >= 1, "a stalling host timed out and backs off");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_agent_has_one_challenge_at_a_time() {
    let (server, dir) = start("slow").await;
    // Answers after 2.5 s: two and a half intervals.
    let (url, seen) = agent(&dir, Duration::from_millis(2_500)).await;
    enroll(&server, &dir, "slow-0", &url).await;
    server.service.refresh_cache().await.unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (requests, most) = (
        seen.requests.load(Ordering::SeqCst),
        seen.most.load(Ordering::SeqCst),
    );
    eprintln!("slow agent: {requests} challenges, at most {most} at once");
    assert_eq!(most, 1, "challenged {most} times at once");
    // Challenged again as soon as it answers (its turn came while it was answering).
    assert!(requests >= 3, "only {requests} challenges");
    // It answered, so its verdict is current.
    let v = verdicts(&server, &["slow-0".to_owned()]);
    assert_eq!(v[0].unwrap().1, TrustLevel::Untrusted);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
