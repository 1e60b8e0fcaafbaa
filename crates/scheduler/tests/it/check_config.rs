//! `trustpool-scheduler --config-file FILE --check-config`, like `nginx -t`: the shipped
//! example passes and prints what will run; a bad file fails naming the option.

use std::process::Command;

fn check(path: &std::path::Path) -> (i32, String, String) {
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

#[test]
fn the_packaged_nova_conf_checks_and_a_typo_does_not() {
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/nova.conf");
    let (code, out, err) = check(&shipped);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"), "{out}");
    assert!(out.contains("filters (in order): RetryFilter, AvailabilityZoneFilter, RamFilter, DiskFilter, ComputeFilter, TrustedFilter"), "{out}");
    assert!(
        out.contains("weighers: RAMWeigher (multiplier 1), DiskWeigher (multiplier 1)"),
        "{out}"
    );
    assert!(out.contains("attestation: POST https://attestation.example.com:8443/AttestationService/resources/PollHosts"), "{out}");

    let dir = std::env::temp_dir().join(format!("trustpool-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("nova.conf");
    let text = std::fs::read_to_string(&shipped)
        .unwrap()
        .replace("ComputeFilter,TrustedFilter", "ComputeFilter,TrustFilter");
    std::fs::write(&bad, text).unwrap();
    let (code, out, err) = check(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(
            "[DEFAULT] scheduler_default_filters (line 10): unknown filter \"TrustFilter\""
        ),
        "{err}"
    );
    let (code, _, err) = check(&dir.join("missing.conf"));
    assert_eq!(code, 1);
    assert!(err.contains("missing.conf"), "{err}");
}
