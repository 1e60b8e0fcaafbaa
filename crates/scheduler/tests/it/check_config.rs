//! `trustpool-scheduler --config-file FILE --check-config`, like `nginx -t`: a file that
//! names usable certificates, key, CA bundle and database passes and prints what will run;
//! a typo, a missing file, a key that is not a key, a certificate that is not PEM or a CA
//! file holding a leaf fails naming the option. And the seed's block alone, no `[ssl]`:
//! plain HTTP on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Harness;

/// The seed's block, byte for byte (as in `conf/tests.rs`), and nothing else: no `[ssl]`.
const SEED: &str = "[DEFAULT]
compute_scheduler_driver=nova.scheduler.filter_scheduler.FilterScheduler
scheduler_available_filters=nova.scheduler.filters.all_filters
scheduler_default_filters=AvailabilityZoneFilter,RamFilter,ComputeFilter,TrustedFilter
[trusted_computing]
server=10.1.71.206
port=8443
server_ca_file=/etc/nova/ssl.10.1.71.206.crt
# If using OAT v1.5, use this api_url:
api_url=/AttestationService/resources
# If using OAT pre-v1.5, use this api_url:
#api_url=/OpenAttestationWebServices/V1.0
auth_blob=i-am-openstack
";

fn check(path: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trustpool-scheduler"))
        .args([
            "--config-file",
            &path.display().to_string(),
            "--check-config",
        ])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/nova.conf")
}

/// The packaged nova.conf with its files pointed at the harness's.
fn packaged_here(h: &Harness) -> String {
    let p = h.dir.join("pki");
    std::fs::read_to_string(shipped())
        .unwrap()
        .replace(
            "/etc/trustpool/ca.crt",
            &h.pki.ca_cert().display().to_string(),
        )
        .replace(
            "/etc/trustpool/scheduler.crt",
            &p.join("server.crt").display().to_string(),
        )
        .replace(
            "/etc/trustpool/scheduler.key",
            &p.join("server.key").display().to_string(),
        )
        .replace("sqlite:////var/lib/trustpool/scheduler.db", &h.sqlite())
}

#[test]
fn the_packaged_nova_conf_checks_and_a_typo_does_not() {
    let h = Harness::new("check");
    let good = h.dir.join("nova.conf");
    std::fs::write(&good, packaged_here(&h)).unwrap();
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"), "{out}");
    assert!(out.contains("filters (in order): RetryFilter, AvailabilityZoneFilter, RamFilter, DiskFilter, ComputeFilter, TrustedFilter"), "{out}");
    assert!(
        out.contains("weighers: RAMWeigher (multiplier 1), DiskWeigher (multiplier 1)"),
        "{out}"
    );
    assert!(out.contains("attestation: POST https://attestation.example.com:8443/AttestationService/resources/PollHosts"), "{out}");
    for checked in [
        "checked: [ssl] cert_file (",
        "[ssl] key_file (",
        "checked: [trusted_computing] server_ca_file (",
        "checked: [database] connection: SQLite file",
    ] {
        assert!(out.contains(checked), "{checked}: {out}");
    }

    let bad = h.dir.join("typo.conf");
    let text =
        packaged_here(&h).replace("ComputeFilter,TrustedFilter", "ComputeFilter,TrustFilter");
    std::fs::write(&bad, text).unwrap();
    let (code, out, err) = check(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(
            "[DEFAULT] scheduler_default_filters (line 10): unknown filter \"TrustFilter\""
        ),
        "{err}"
    );
    let (code, _, err) = check(&h.dir.join("missing.conf"));
    assert_eq!(code, 1);
    assert!(err.contains("missing.conf"), "{err}");
}

/// Each broken file fails the check alone, naming its option and the problem.
#[test]
fn every_file_the_configuration_names_is_opened_and_parsed() {
    let h = Harness::new("check-files");
    let p = h.dir.join("pki");
    let garbage = h.dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let der = h.dir.join("server.der");
    std::fs::write(&der, [0x30, 0x82, 0x01, 0x00, 0x02, 0x01]).unwrap();
    let missing = h.dir.join("nowhere/ca.crt");
    let server_crt = p.join("server.crt").display().to_string();
    let server_key = p.join("server.key").display().to_string();
    let ca = h.pki.ca_cert().display().to_string();
    for (from, to, want) in [
        (
            ca.clone(),
            missing.display().to_string(),
            format!(
                "[trusted_computing] server_ca_file ({}): cannot open: No such file",
                missing.display()
            ),
        ),
        (
            server_key.clone(),
            garbage.display().to_string(),
            format!("[ssl] key_file ({}): not a private key", garbage.display()),
        ),
        (
            server_crt.clone(),
            der.display().to_string(),
            format!(
                "[ssl] cert_file ({}): holds no PEM certificate",
                der.display()
            ),
        ),
        (
            server_key,
            server_crt.clone(),
            format!("[ssl] key_file ({server_crt}): not a private key"),
        ),
        (
            ca,
            server_crt.clone(),
            format!(
                "[trusted_computing] server_ca_file ({server_crt}): certificate 1 (CN=localhost) is not a CA certificate"
            ),
        ),
    ] {
        let conf = h.dir.join("broken.conf");
        std::fs::write(&conf, packaged_here(&h).replace(&from, &to)).unwrap();
        let (code, out, err) = check(&conf);
        assert_eq!(code, 1, "{want}: {out}");
        assert!(err.contains(&want), "want {want}\n got {err}");
        assert_eq!(err.lines().count(), 1, "only the broken file: {err}");
    }
    // A database directory that does not exist.
    let conf = h.dir.join("db.conf");
    let db = h.dir.join("nowhere/scheduler.db");
    std::fs::write(
        &conf,
        format!(
            "{}[database]\nconnection = sqlite:///{}\n",
            packaged_here(&h),
            db.display()
        ),
    )
    .unwrap();
    let (code, _, err) = check(&conf);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "[database] connection ({}): the database's directory",
            db.display()
        )),
        "{err}"
    );
    // PostgreSQL that does not answer: named, within the short timeout.
    let port = crate::free_port();
    std::fs::write(
        &conf,
        format!(
            "{}[database]\nconnection = postgresql://u:p@127.0.0.1:{port}/x\n",
            packaged_here(&h)
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (code, _, err) = check(&conf);
    assert_eq!(code, 1);
    assert!(err.contains("[database] connection: "), "{err}");
    assert!(
        !err.contains("u:p@"),
        "the password is never printed: {err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// The seed's block as the seed prints it, no `[ssl]`: the only complaints are the files
/// it names that this machine lacks; pointed at real files it passes, and says plain
/// HTTP on loopback.
#[test]
fn the_seed_block_checks_without_ssl() {
    let h = Harness::new("check-seed");
    let conf = h.dir.join("seed.conf");
    std::fs::write(&conf, SEED).unwrap();
    let (code, out, err) = check(&conf);
    if code != 0 {
        assert!(
            err.lines().all(|l| l
                .contains("[trusted_computing] server_ca_file (/etc/nova/ssl.10.1.71.206.crt)")
                || l.contains("[database] connection")),
            "only files this machine lacks: {err}"
        );
    } else {
        assert!(
            out.contains("compute API: http://127.0.0.1:8774/v2.1"),
            "{out}"
        );
    }
    assert!(
        !err.contains("[ssl]") && !err.contains("osapi_compute_listen"),
        "{err}"
    );
    // The same block, then this machine's CA file and database (later lines win, as in
    // oslo.config).
    std::fs::write(
        &conf,
        format!(
            "{SEED}server_ca_file={}\n[database]\nconnection = {}\n",
            h.pki.ca_cert().display(),
            h.sqlite()
        ),
    )
    .unwrap();
    let (code, out, err) = check(&conf);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("compute API: http://127.0.0.1:8774/v2.1"),
        "{out}"
    );
    assert!(out.contains("TLS-terminating proxy"), "{out}");

    // A non-loopback address without [ssl] is refused, naming the option.
    std::fs::write(
        &conf,
        format!("{SEED}[DEFAULT]\nosapi_compute_listen = 0.0.0.0\n"),
    )
    .unwrap();
    let (code, _, err) = check(&conf);
    assert_eq!(code, 1);
    assert!(
        err.contains("[DEFAULT] osapi_compute_listen (line 15): 0.0.0.0 is not a loopback address"),
        "{err}"
    );
}

/// The seed's block started: the compute API answers plain HTTP on 127.0.0.1.
#[tokio::test]
async fn the_seed_block_serves_plain_http_on_loopback() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let h = Harness::new("seed-http");
    let mut config = trustpool_scheduler::conf::Config::parse(SEED).unwrap();
    assert_eq!(config.listen, "127.0.0.1:8774".parse().unwrap());
    // Port 0 and this machine's files: what the test may not take from the machine.
    config.listen.set_port(0);
    config.database_url = h.sqlite().replacen("sqlite:///", "sqlite://", 1);
    if let Some(a) = config.attestation.as_mut() {
        a.ca_file = h.pki.ca_cert();
    }
    let s = trustpool_scheduler::start(config).await.unwrap();
    assert!(s.address.ip().is_loopback());
    let mut tcp = tokio::net::TcpStream::connect(s.address).await.unwrap();
    tcp.write_all(b"GET /v2.1/flavors HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    s.stop().await;
}
