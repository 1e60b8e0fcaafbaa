//! The dashboard in a real browser: headless Chromium loads `/dashboard` over HTTPS with
//! Basic auth, and the DOM it built is checked — hosts listed problems first, text from
//! agents shown as text, no injected element, no script run (the page title would say).
//! `make test` installs Chromium and requires this test (`TRUSTPOOL_REQUIRE_BROWSER`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use trustpool_api::oat::TrustLevel;
use trustpool_attestation::store::VerdictRecord;

use super::fixtures::{READ_TOKEN, after_first_round, host, server_config, verdict};

const HOSTILE_NAME: &str = "evil<img src=x onerror=\"document.title='pwned'\">";
const HOSTILE_REASON: &str = "event \"<script>document.title='pwned'</script>\" not allowed";

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// `--ignore-certificate-errors-spki-list` wants base64(SHA-256(SubjectPublicKeyInfo)):
/// Chromium then accepts exactly this server's key, and nothing else.
fn spki_pin(cert_pem: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        cert.tbs_certificate.subject_pki.raw,
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_renders_in_chromium_and_runs_nothing_it_was_sent() {
    let Some(browser) = chromium() else {
        eprintln!("chromium not installed: browser test skipped (make test installs and runs it)");
        assert!(
            std::env::var("TRUSTPOOL_REQUIRE_BROWSER").is_err(),
            "TRUSTPOOL_REQUIRE_BROWSER is set but chromium is not installed"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("trustpool-browser-{}", std::process::id()));
    let server = trustpool_attestation::start(server_config(&dir))
        .await
        .unwrap();
    let service = &server.service;
    for (id, name) in [("a", "good-1"), ("b", "tampered-1"), ("c", HOSTILE_NAME)] {
        service.store.put_host(&host(id, name, &[])).await.unwrap();
    }
    after_first_round(service, 3).await;
    let with = |mut v: VerdictRecord, policy: Option<&str>, reason: &str| {
        v.policy = policy.map(str::to_owned);
        v.reasons = (!reason.is_empty())
            .then(|| reason.to_owned())
            .into_iter()
            .collect();
        v
    };
    for v in [
        with(verdict("a", TrustLevel::Trusted), Some("golden@1"), ""),
        with(verdict("b", TrustLevel::Untrusted), None, HOSTILE_REASON),
        with(
            verdict("c", TrustLevel::Unknown),
            None,
            "agent did not answer the challenge in time",
        ),
    ] {
        // As the attestation path does: stored, then recorded in memory.
        service.store.insert_verdict(&v).await.unwrap();
        service.cache.record(&v);
    }

    let profile = dir.join("chromium-profile");
    let url = format!(
        "https://viewer:{READ_TOKEN}@127.0.0.1:{}/dashboard",
        server.address.port()
    );
    let pin = spki_pin(&std::fs::read_to_string(dir.join("pki/server.crt")).unwrap());
    let run = tokio::task::spawn_blocking(move || {
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=3000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--ignore-certificate-errors-spki-list={pin}"))
            .arg("--dump-dom")
            .arg(url)
            .output()
            .unwrap()
    });
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium did not finish in 2 minutes")
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);

    assert!(
        dom.contains("<title>trustpool — trusted compute pool</title>"),
        "no script ran (it would have set the title); stderr: {}\n{dom}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dom.contains("pwned</title>"), "{dom}");
    // The hostile strings are text in the DOM, never elements.
    assert!(!dom.contains("<img"), "{dom}");
    assert!(!dom.contains("<script>"), "{dom}");
    assert!(dom.contains("evil&lt;img src=x onerror="), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "{dom}"
    );
    // Counts, and problems first: the untrusted host, then the unknown, then the trusted.
    assert!(dom.contains("1 trusted</span>"), "{dom}");
    assert!(dom.contains("1 untrusted</span>"), "{dom}");
    assert!(dom.contains("1 unknown</span>"), "{dom}");
    let at = |needle: &str| dom.find(needle).unwrap_or(usize::MAX);
    assert!(
        at("<td>tampered-1</td>") < at("<td>evil&lt;img")
            && at("<td>evil&lt;img") < at("<td>good-1</td>"),
        "{dom}"
    );
    assert!(at("golden@1") < usize::MAX, "{dom}");
}
