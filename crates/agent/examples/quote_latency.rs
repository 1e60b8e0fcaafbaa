//! Quote latency on swtpm (results in BENCHMARKS.md):
//! `cargo run --release -p trustpool-agent --example quote_latency -- 200`
//!
//! Starts a private swtpm (trustpool-testkit), the agent with the known-good emulated boot,
//! and measures N quotes of 11 SHA-256 PCRs: through the TPM task directly, and end to end
//! over mutual-TLS HTTPS with the event log, as the attestation server will call it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use trustpool_api::agent::QuoteRequest;
use trustpool_api::{Nonce, PcrSelection};
use trustpool_client::{AgentClient, Identity, TlsOptions};
use trustpool_testkit::pki::TestPki;
use trustpool_testkit::swtpm::Swtpm;

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap();
    println!(
        "{label:<32} n={:<4} mean={:>7.2?} p50={:>7.2?} p99={:>7.2?} max={:>7.2?}",
        samples.len(),
        mean,
        pct(50),
        pct(99),
        samples[samples.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).map_or(200, |a| a.parse().unwrap());
    let tpm = Swtpm::start();
    let dir = tpm.dir().join("agent");
    let pki = TestPki::new(&dir.join("pki"), "latency CA");
    let _ = pki.issue("agent", &["127.0.0.1"]);
    let server = pki.issue("server", &["attestation.test"]);
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/boot/known-good.toml");
    let text = format!(
        "host_name = \"bench\"\nstate_dir = \"{}\"\n[tpm]\ntcti = \"{}\"\nboot_manifest = \"{}\"\n[listen]\naddress = \"127.0.0.1:0\"\nurl = \"https://127.0.0.1:1\"\ncert = \"{p}/agent.crt\"\nkey = \"{p}/agent.key\"\nclient_ca = \"{p}/ca.crt\"\n",
        dir.join("state").display(),
        tpm.tcti(),
        manifest.display(),
        p = dir.join("pki").display()
    );
    let config = trustpool_agent::config::Config::parse(&text, Path::new("bench.toml")).unwrap();
    for (label, alg) in [("rsa", "rsa"), ("ecc", "ecc")] {
        let mut config = config.clone();
        config.ak_algorithm = if alg == "rsa" {
            trustpool_agent::config::KeyAlgorithm::Rsa
        } else {
            trustpool_agent::config::KeyAlgorithm::Ecc
        };
        let started = Instant::now();
        let agent = trustpool_agent::start(config).await.unwrap();
        println!(
            "{label}: agent start (emulated boot + EK + AK load/create) {:.2?}",
            started.elapsed()
        );
        let selection: PcrSelection =
            serde_json::from_str(r#"[{"bank":"sha256","pcrs":[0,1,2,3,4,5,6,7,17,18,19]}]"#)
                .unwrap();
        let mut direct = Vec::with_capacity(n);
        for i in 0..n {
            let nonce = Nonce::new(u32::try_from(i).unwrap().to_be_bytes().repeat(8)).unwrap();
            let t = Instant::now();
            agent.tpm.quote(nonce, selection.clone()).await.unwrap();
            direct.push(t.elapsed());
        }
        summary(&format!("{label}: TPM task quote + PCR read"), direct);
        let tls = TlsOptions {
            ca_pem: Some(pki.ca_pem()),
            identity: Some(Identity {
                cert_chain_pem: server.cert_pem(),
                key_pem: server.key_pem(),
            }),
        };
        let client = AgentClient::new(
            &format!("https://127.0.0.1:{}", agent.address.port()),
            &tls,
            Duration::from_secs(30),
        )
        .unwrap();
        let mut https = Vec::with_capacity(n);
        for i in 0..n {
            let nonce = Nonce::new(u32::try_from(i).unwrap().to_be_bytes().repeat(8)).unwrap();
            let t = Instant::now();
            client
                .quote(&QuoteRequest {
                    nonce,
                    selection: selection.clone(),
                    include_event_log: true,
                })
                .await
                .unwrap();
            https.push(t.elapsed());
        }
        summary(&format!("{label}: HTTPS /v1/quote + event log"), https);
        agent.stop().await;
    }
}
