//! Refusals that need no TPM.

use std::path::Path;

use trustpool_agent::config::Config;
use trustpool_agent::measure::{Manifest, measure_boot};

fn packaging(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

#[test]
fn the_shipped_config_and_manifests_parse() {
    let text = std::fs::read_to_string(packaging("agent.toml")).unwrap();
    let config = Config::parse(&text, Path::new("agent.toml")).unwrap();
    assert_eq!(config.tcti, "device:/dev/tpmrm0");
    assert_eq!(
        config.event_log,
        Path::new("/sys/kernel/security/tpm0/binary_bios_measurements")
    );
    for m in ["boot/known-good.toml", "boot/tampered-bios.toml"] {
        let manifest = Manifest::load(&packaging(m)).unwrap();
        assert!(manifest.txt.is_some(), "{m}");
    }
}

#[test]
fn measured_boot_emulation_refuses_hardware_tpms() {
    let manifest = Manifest::load(&packaging("boot/known-good.toml")).unwrap();
    let err = measure_boot(
        "device:/dev/tpmrm0",
        &manifest,
        Path::new("/nonexistent/log"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("never runs on a hardware TPM"), "{err}");
    let text = std::fs::read_to_string(packaging("agent.toml"))
        .unwrap()
        .replace("#boot_manifest", "boot_manifest");
    let err = Config::parse(&text, Path::new("agent.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("tpm.boot_manifest"), "{err}");
}

#[test]
fn manifest_entries_are_checked() {
    let dir = std::env::temp_dir().join(format!("trustpool-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.toml");
    std::fs::write(
        &path,
        "[bios]\nversion = \"x\"\nimage = { sha256 = \"00\" }\n",
    )
    .unwrap();
    let manifest = Manifest::load(&path).unwrap();
    let err = manifest
        .digests(
            "bios.image",
            &manifest.bios.image,
            &[trustpool_evidence::HashAlg::Sha256],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bios.image") && err.contains("32 hex bytes"),
        "{err}"
    );
    let err = manifest
        .digests(
            "bios.image",
            &manifest.bios.image,
            &[trustpool_evidence::HashAlg::Sha384],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("no sha384 digest declared"), "{err}");
    std::fs::write(
        &path,
        "[bios]\nversion = \"x\"\nimage = { text = \"a\" }\nsurprise = 1\n",
    )
    .unwrap();
    assert!(
        Manifest::load(&path)
            .unwrap_err()
            .to_string()
            .contains("surprise")
    );
    std::fs::write(&path, "[bios]\nversion = \"x\"\nimage = { text = \"a\" }\n[txt]\nsinit_acm = { text = \"acm\" }\nmle = { text = \"m\" }\nhypervisor = { pcr = 20, text = \"k\" }\n").unwrap();
    let manifest = Manifest::load(&path).unwrap();
    let (_, pcr) = manifest.txt.as_ref().unwrap().hypervisor.parts(18);
    assert_eq!(pcr, 20);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `trustpool-agent check-config --config FILE`: exit code, stdout, stderr.
fn check_config(config: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trustpool-agent"))
        .args(["check-config", "--config", &config.display().to_string()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A configuration naming usable files in a fresh directory: (dir, TOML).
fn checkable(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "trustpool-agent-check-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let p = dir.join("pki");
    let pki = trustpool_testkit::pki::TestPki::new(&p, "agent check-config test CA");
    let _ = pki.issue_server("agent", &["compute-1"]);
    let _ = pki.issue_client("attestation-client", "attestation");
    std::fs::write(dir.join("eventlog.bin"), [0u8; 16]).unwrap();
    std::fs::write(dir.join("scheduler.token"), "tok\n").unwrap();
    let toml = format!(
        "host_name = \"compute-1\"\nstate_dir = \"{d}\"\n\
         [tpm]\ntcti = \"swtpm:path={d}/sock\"\nevent_log = \"{d}/eventlog.bin\"\n\
         [listen]\naddress = \"127.0.0.1:9443\"\ncert = \"{p}/agent.crt\"\nkey = \"{p}/agent.key\"\n\
         client_ca = \"{p}/ca.crt\"\nserver_certificate = \"{p}/attestation-client.crt\"\n\
         [server]\nurl = \"https://127.0.0.1:8443\"\nca = \"{p}/ca.crt\"\nenrollment_token_file = \"{d}/enrollment.token\"\n\
         [scheduler]\nurl = \"https://127.0.0.1:8774\"\nca = \"{p}/ca.crt\"\ntoken_file = \"{d}/scheduler.token\"\n",
        d = dir.display(),
        p = p.display(),
    );
    (dir, toml)
}

/// Every file the configuration names is opened and parsed; a missing enrollment token is
/// fine (it is needed only to enroll).
#[test]
fn check_config_opens_every_file_it_names() {
    let (dir, toml) = checkable("good");
    let config = dir.join("agent.toml");
    std::fs::write(&config, &toml).unwrap();
    let (code, out, err) = check_config(&config);
    assert_eq!(code, 0, "{err}");
    for line in [
        "configuration OK",
        "checked: listen.cert (",
        "checked: listen.client_ca (",
        "checked: listen.server_certificate (",
        "checked: server.ca (",
        "checked: server.enrollment_token_file (",
        "absent (needed only to enroll)",
        "checked: scheduler.token_file (",
        "checked: tpm.event_log (",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
}

/// Each broken file fails the check alone, naming its option and the problem.
#[test]
fn check_config_names_the_option_of_each_broken_file() {
    let (dir, toml) = checkable("broken");
    let p = dir.join("pki");
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let garbage = file(
        "garbage.key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let not_pem = file("agent.der", &[0x30, 0x82, 0x01, 0x00, 0x02, 0x01]);
    let empty = file("empty.token", b"\n");
    let missing = dir
        .join("nowhere/attestation-client.crt")
        .display()
        .to_string();
    let pki = |name: &str| p.join(name).display().to_string();
    let cases = [
        (
            pki("attestation-client.crt"),
            missing.clone(),
            format!("listen.server_certificate ({missing}): cannot open: No such file"),
        ),
        (
            pki("agent.key"),
            garbage.clone(),
            format!("listen.key ({garbage}): not a private key"),
        ),
        (
            pki("agent.crt"),
            not_pem.clone(),
            format!("listen.cert ({not_pem}): holds no PEM certificate"),
        ),
        (
            format!("client_ca = \"{}\"", pki("ca.crt")),
            format!("client_ca = \"{}\"", pki("agent.crt")),
            format!(
                "listen.client_ca ({}): certificate 1 (CN=compute-1) is not a CA certificate",
                pki("agent.crt")
            ),
        ),
        (
            format!("token_file = \"{}/scheduler.token\"", dir.display()),
            format!("token_file = \"{}/nowhere.token\"", dir.display()),
            format!(
                "scheduler.token_file ({}/nowhere.token): cannot open",
                dir.display()
            ),
        ),
        (
            format!("{}/enrollment.token", dir.display()),
            empty.clone(),
            format!("server.enrollment_token_file ({empty}): empty"),
        ),
        (
            format!("{}/eventlog.bin", dir.display()),
            format!("{}/nowhere.bin", dir.display()),
            format!("tpm.event_log ({}/nowhere.bin): cannot open", dir.display()),
        ),
    ];
    let config = dir.join("agent.toml");
    for (from, to, want) in cases {
        assert!(toml.contains(&from), "{from}");
        std::fs::write(&config, toml.replacen(&from, &to, 1)).unwrap();
        let (code, out, err) = check_config(&config);
        assert_eq!(code, 1, "{want}: {out}");
        assert!(err.contains(&want), "want {want}\n got {err}");
        assert_eq!(
            err.lines().filter(|l| l.contains(" (")).count(),
            1,
            "only the broken file: {err}"
        );
    }
    // A boot manifest that is not one.
    let manifest = file("boot.toml", b"[bios]\nversion = 3\n");
    std::fs::write(
        &config,
        toml.replacen(
            "[tpm]\n",
            &format!("[tpm]\nboot_manifest = \"{manifest}\"\n"),
            1,
        ),
    )
    .unwrap();
    let (code, _, err) = check_config(&config);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("tpm.boot_manifest ({manifest}): ")),
        "{err}"
    );
}
