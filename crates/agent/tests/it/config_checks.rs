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
