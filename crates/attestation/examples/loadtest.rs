//! Load test of the attestation server (results in BENCHMARKS.md). A TEST TOOL: the
//! "agents" are simulated — software P-256 keys (trustpool-testkit's SoftAk) making real
//! TPM 2.0 quote structures and signatures over a real event log, served by one HTTPS
//! listener at `/sim/{i}/v1/quote` — and the hosts are inserted into the database directly
//! (enrollment is exercised by the end-to-end tests, not here). The server is the real one,
//! in this process, doing the full work per attestation: HTTPS challenge, signature,
//! nonce, PCR digest, event-log replay, policy appraisal, verdict insert.
//!
//! The simulator runs in a child process of its own (this program with `--simulator DIR`),
//! so the server's attestations/s and memory are measured apart from it.
//!
//! `cargo run --release -p trustpool-attestation --example loadtest -- [HOSTS] [SECONDS] [INTERVAL_SECS]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use trustpool_api::agent::{QuoteRequest, QuoteResponse};
use trustpool_api::{Base64Bytes, HexBytes, PcrBankValues};
use trustpool_attestation::store::{HostRecord, HostState, now_ms};
use trustpool_evidence::event_log::writer::EventLogWriter;
use trustpool_evidence::{
    EventLog, EventType, HashAlg, PcrIndex, PcrSelection, PcrSet, PcrValues, replay,
};
use trustpool_policy::{ImportOptions, PolicyDocument, from_values};
use trustpool_testkit::attest::AttestBuilder;
use trustpool_testkit::pki::TestPki;
use trustpool_testkit::soft_ak::SoftAk;

struct Fleet {
    keys: Vec<SoftAk>,
    values: PcrValues,
    log: Vec<u8>,
}

fn pcr(i: u8) -> PcrIndex {
    PcrIndex::new(i).unwrap()
}

fn boot() -> (PcrValues, Vec<u8>) {
    let mut w = EventLogWriter::new(&[HashAlg::Sha256]);
    w.measure(pcr(0), EventType::EV_S_CRTM_VERSION, b"sim BIOS 1.0\0");
    w.measure(
        pcr(0),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
        b"BIOS image",
    );
    w.measure(pcr(1), EventType::EV_PLATFORM_CONFIG_FLAGS, b"SMT=on");
    for i in 0..8 {
        w.measure(pcr(i), EventType::EV_SEPARATOR, &[0, 0, 0, 0]);
    }
    w.measure(pcr(4), EventType::EV_EFI_BOOT_SERVICES_APPLICATION, b"grub");
    w.event(
        pcr(17),
        EventType::EV_TXT_HASH_START,
        &[HashAlg::Sha256.hash(b"ACM")],
        b"SINIT ACM",
    );
    w.measure(pcr(17), EventType::EV_TXT_MLE_HASH, b"tboot");
    w.measure(pcr(18), EventType::EV_IPL, b"vmlinuz");
    w.measure(pcr(19), EventType::EV_IPL, b"initrd");
    let log = w.to_bytes();
    let values = replay(&EventLog::parse(&log).unwrap()).unwrap().values();
    (values, log)
}

async fn quote(
    State(fleet): State<Arc<Fleet>>,
    Path(i): Path<usize>,
    Json(req): Json<QuoteRequest>,
) -> Json<QuoteResponse> {
    let banks: Vec<(HashAlg, PcrSet)> = req
        .selection
        .banks()
        .iter()
        .map(|b| {
            (
                HashAlg::from_name(b.bank.name()).unwrap(),
                PcrSet::from_indices(b.pcrs.iter().map(|p| pcr(*p))),
            )
        })
        .collect();
    let selection = PcrSelection::new(banks).unwrap();
    let message = AttestBuilder::quote_selection(
        req.nonce.as_bytes(),
        &selection,
        &fleet.values,
        HashAlg::Sha256,
    )
    .build();
    let key = &fleet.keys[i % fleet.keys.len()];
    let signature = key.sign(&message);
    let pcrs = selection
        .banks()
        .iter()
        .map(|(alg, set)| PcrBankValues {
            bank: serde_json::from_value(serde_json::json!(alg.name())).unwrap(),
            values: set
                .iter()
                .map(|p| {
                    (
                        p.get(),
                        HexBytes(fleet.values.get(*alg, p).unwrap().as_bytes().to_vec()),
                    )
                })
                .collect(),
        })
        .collect();
    Json(QuoteResponse {
        attest: Base64Bytes(message),
        signature: Base64Bytes(signature),
        pcrs,
        event_log: Some(Base64Bytes(fleet.log.clone())),
    })
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `field` of /proc/PID/status in MiB: `VmRSS` (now) or `VmHWM` (the peak).
fn status_mib(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The simulated agents: one HTTPS listener with the PKI's server certificate; writes its
/// port and its AK public areas (hex `TPM2B_PUBLIC`) to `DIR/sim.json`, then serves.
async fn simulator(dir: &std::path::Path) {
    let (values, log) = boot();
    let fleet = Arc::new(Fleet {
        keys: (0..8).map(|_| SoftAk::p256()).collect(),
        values,
        log,
    });
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        dir.join("pki/server.crt"),
        dir.join("pki/server.key"),
    )
    .await
    .unwrap();
    let app = Router::new()
        .route("/sim/{i}/v1/quote", post(quote))
        .with_state(fleet.clone());
    let handle: axum_server::Handle<std::net::SocketAddr> = axum_server::Handle::new();
    let serving = tokio::spawn(
        axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls)
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );
    let addr = handle.listening().await.unwrap();
    let keys: Vec<String> = fleet
        .keys
        .iter()
        .map(|k| trustpool_api::bytes::to_hex(&k.public().to_tpm2b()))
        .collect();
    let state = serde_json::json!({"port": addr.port(), "keys": keys});
    std::fs::write(dir.join("sim.json.tmp"), state.to_string()).unwrap();
    std::fs::rename(dir.join("sim.json.tmp"), dir.join("sim.json")).unwrap();
    let _ = serving.await;
}

/// Samples per PollHosts size (the p99 is the 198th of 200).
const POLLS: usize = 200;

/// The PollHosts client, in a process of its own: `POLLS` requests of 1,000 and of 10,000
/// names over one kept-alive connection, each answer parsed and checked.
async fn poller(url: &str, ca: &std::path::Path, hosts: usize) {
    let tls = trustpool_client::tls::client_config(&trustpool_client::TlsOptions {
        ca_pem: Some(std::fs::read_to_string(ca).unwrap()),
        identity: None,
    })
    .unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let metrics_url = url.replace("/AttestationService/resources/PollHosts", "/metrics");
    let metrics = || async {
        let text = client
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // (le, cumulative count) of the server's PollHosts histogram, plus its sum.
        let buckets: Vec<(String, f64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("trustpool_poll_hosts_seconds_bucket{le=\""))
            .filter_map(|l| {
                let (le, rest) = l.split_once("\"} ")?;
                Some((le.to_owned(), rest.parse().ok()?))
            })
            .collect();
        (buckets, counter(&text, "trustpool_poll_hosts_seconds_sum"))
    };
    for batch in [1000usize, 10_000] {
        let (before, sum_before) = metrics().await;
        let names: Vec<String> = (0..batch)
            .map(|i| format!("sim-{:06}", i % hosts.max(1)))
            .collect();
        let body = serde_json::json!({"count": batch, "hosts": names}).to_string();
        let mut samples = Vec::new();
        for _ in 0..POLLS {
            let t = Instant::now();
            let resp = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let answer: trustpool_api::oat::PollHostsResponse = resp.json().await.unwrap();
            samples.push(t.elapsed());
            assert_eq!(answer.hosts.len(), batch);
        }
        samples.sort();
        let at = |q: f64| samples[((POLLS as f64 * q) as usize).min(POLLS - 1)];
        println!(
            "PollHosts {batch:>6} hosts: p50 {:.2?}  p99 {:.2?}  max {:.2?} ({POLLS} requests)",
            at(0.50),
            at(0.99),
            samples[POLLS - 1]
        );
        // The server's own share (from the body read to the answer serialised): its mean,
        // and the histogram bucket its 99th percentile falls in.
        let (after, sum_after) = metrics().await;
        let delta: Vec<(String, f64)> = after
            .iter()
            .zip(&before)
            .map(|((le, a), (_, b))| (le.clone(), a - b))
            .collect();
        let p99_bucket = delta
            .iter()
            .find(|(_, n)| *n >= POLLS as f64 * 0.99)
            .map_or("?".to_owned(), |(le, _)| le.clone());
        println!(
            "          server-side: mean {:.2} ms, p99 ≤ {p99_bucket} s (histogram bucket)",
            (sum_after - sum_before) / POLLS as f64 * 1000.0
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--simulator") {
        simulator(std::path::Path::new(&args[2])).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("--poller") {
        poller(
            &args[2],
            std::path::Path::new(&args[3]),
            args[4].parse().unwrap(),
        )
        .await;
        return;
    }
    let hosts: usize = args.get(1).map_or(1000, |a| a.parse().unwrap());
    let seconds: u64 = args.get(2).map_or(20, |a| a.parse().unwrap());
    let interval: u64 = args.get(3).map_or(1, |a| a.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("trustpool-loadtest-{}", std::process::id()));
    let pki = TestPki::new(&dir.join("pki"), "loadtest CA");
    let _ = pki.issue("server", &["127.0.0.1"]);
    let (values, _) = boot();

    // The simulated agents, in their own process (one listener, one certificate).
    let mut sim_child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--simulator")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sim_state: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("sim.json")) {
            break serde_json::from_str(&text).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sim_port = sim_state["port"].as_u64().unwrap();
    let sim_keys: Vec<Vec<u8>> = sim_state["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| trustpool_api::bytes::from_hex(k.as_str().unwrap()).unwrap())
        .collect();
    let sim_certificate = std::fs::read_to_string(dir.join("pki/server.crt")).unwrap();

    let p = dir.join("pki");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n[enrollment]\nek_ca = [\"{p}/ca.crt\"]\n\
         [attestation]\ninterval_secs = {interval}\nverdict_ttl_secs = {ttl}\nmax_concurrency = 256\n",
        db = dir.join("load.db").display(),
        p = p.display(),
        ttl = interval * 3,
    );
    let server = trustpool_attestation::start(
        trustpool_attestation::config::Config::parse(&text, "load.toml").unwrap(),
    )
    .await
    .unwrap();
    let service = server.service.clone();
    let options = ImportOptions {
        bank: HashAlg::Sha256,
        bios_pcrs: vec![pcr(0)],
        vmm_pcrs: vec![pcr(17), pcr(18), pcr(19)],
        vmm_events: false,
    };
    let policy = from_values("sim-golden", 1, &values, None, &options).unwrap();
    service
        .create_policy("loadtest", PolicyDocument::from(&policy))
        .await
        .unwrap();
    let started = Instant::now();
    for i in 0..hosts {
        let key = &sim_keys[i % sim_keys.len()];
        service
            .store
            .put_host(&HostRecord {
                agent_id: format!("sim{i:06}"),
                host_name: format!("sim-{i:06}"),
                aliases: vec![],
                agent_url: format!("https://127.0.0.1:{sim_port}/sim/{i}"),
                // The simulator's certificate, pinned as a registration would.
                agent_certificate: sim_certificate.clone(),
                ek_public: vec![],
                ek_certificate: None,
                ak_public: key.clone(),
                state: HostState::Enrolled,
                policies: vec!["sim-golden".to_owned()],
                software_tpm: true,
                created_at: now_ms(),
                updated_at: now_ms(),
                clock_reset_at: None,
            })
            .await
            .unwrap();
    }
    service.refresh_cache().await.unwrap();
    println!(
        "{hosts} simulated hosts inserted in {:.1?}; challenge interval {interval} s (demand {} attestations/s)",
        started.elapsed(),
        hosts as u64 / interval
    );
    // What the challenger's once-a-second sync costs when nothing changed.
    let t = Instant::now();
    service.refresh_cache().await.unwrap();
    println!("sync with nothing changed: {:.1?}", t.elapsed());

    if seconds < interval {
        println!(
            "note: a {seconds} s window is shorter than the {interval} s interval; every host is due within a second of \
             insertion, so attestations/s depends on where the window falls (use SECONDS >= INTERVAL)"
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m0 = service.metrics.render(&[]);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let m1 = service.metrics.render(&[]);
    let elapsed = t0.elapsed().as_secs_f64();
    let done = |m: &str| counter(m, "trustpool_attestation_seconds_count");
    let sum = |m: &str| counter(m, "trustpool_attestation_seconds_sum");
    let trusted = counter(&m1, "trustpool_attestations_total{result=\"trusted\"}")
        - counter(&m0, "trustpool_attestations_total{result=\"trusted\"}");
    let n = done(&m1) - done(&m0);
    // A load test that measured refusals would be measuring the wrong thing. (Counted by
    // result: the histogram and the result counters are updated a moment apart, so their
    // difference is not exact while attestations are in flight.)
    let refused = |m: &str| {
        counter(m, "trustpool_attestations_total{result=\"untrusted\"}")
            + counter(m, "trustpool_attestations_total{result=\"unknown\"}")
    };
    let not_trusted = refused(&m1) - refused(&m0);
    assert!(
        not_trusted < 0.5,
        "{not_trusted} attestations were not trusted: the simulation is broken"
    );
    println!(
        "attestations: {:.0}/s over {elapsed:.1} s ({trusted:.0} trusted of {n:.0}); mean challenge-to-verdict {:.2} ms",
        n / elapsed,
        (sum(&m1) - sum(&m0)) / n * 1000.0
    );

    // PollHosts latency, as Nova calls it: from another process (as nova-scheduler is),
    // while the server goes on attesting at the rate above.
    let url = format!(
        "https://127.0.0.1:{}/AttestationService/resources/PollHosts",
        server.address.port()
    );
    let poller = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--poller")
        .arg(&url)
        .arg(dir.join("pki/ca.crt"))
        .arg(hosts.to_string())
        .output()
        .unwrap();
    assert!(poller.status.success(), "the PollHosts client failed");
    print!("{}", String::from_utf8_lossy(&poller.stdout));
    println!(
        "RSS: server process {:.0} MiB, peak {:.0} MiB (incl. the host inserts and the PollHosts client above); simulator process {:.0} MiB",
        status_mib("self", "VmRSS"),
        status_mib("self", "VmHWM"),
        status_mib(&sim_child.id().to_string(), "VmRSS")
    );
    let _ = sim_child.kill();
    let _ = sim_child.wait();
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
