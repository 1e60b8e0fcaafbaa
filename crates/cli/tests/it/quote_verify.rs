//! `trustpool quote verify`: 0 and a summary when valid, 1 with the failed check named on
//! stderr, 2 for unusable input.

use std::path::PathBuf;
use std::process::Command;

use trustpool_testkit::fixtures::testdata;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn trustpool(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_trustpool"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn file(dir: &str, name: &str) -> String {
    testdata().join(dir).join(name).display().to_string()
}

fn nonce(dir: &str) -> String {
    std::fs::read_to_string(testdata().join(dir).join("nonce.hex"))
        .unwrap()
        .trim()
        .to_owned()
}

fn verify_args(dir: &str) -> Vec<String> {
    vec![
        "quote".into(),
        "verify".into(),
        "--public".into(),
        file(dir, "ak.pub"),
        "--message".into(),
        file(dir, "quote.msg"),
        "--signature".into(),
        file(dir, "quote.sig"),
        "--pcrs".into(),
        file(dir, "quote.pcrs"),
        "--nonce".into(),
        nonce(dir),
    ]
}

fn run(args: &[String]) -> Run {
    trustpool(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trustpool-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn set(args: &mut [String], flag: &str, value: &str) {
    let i = args.iter().position(|a| a == flag).unwrap();
    args[i + 1] = value.to_owned();
}

#[test]
fn valid_quotes_exit_0_with_a_summary() {
    for dir in [
        "quote/rsa2048-sha256",
        "quote/ecc-p256-sha256",
        "quote/rsa2048-pss-sha256",
        "quote/ecc-p384-sha384",
    ] {
        let r = run(&verify_args(dir));
        assert_eq!(r.code, 0, "{dir}: {}", r.stderr);
        assert!(r.stdout.starts_with("quote OK: "), "{dir}: {}", r.stdout);
        assert_eq!(r.stdout.lines().count(), 1);
    }
}

#[test]
fn event_log_is_replayed_against_the_quote() {
    let dir = "eventlog/ovmf-qemu";
    let mut args = verify_args(dir);
    args.extend(["--eventlog".into(), file(dir, "eventlog.bin")]);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("event log (25 events) replays to every quoted PCR"),
        "{}",
        r.stdout
    );

    // The log of another boot (one digest changed) does not replay to this quote.
    let mut log = std::fs::read(file(dir, "eventlog.bin")).unwrap();
    let last = log.len() - 10;
    log[last - 60] ^= 1;
    let tmp = scratch("log");
    std::fs::write(tmp.join("other.bin"), &log).unwrap();
    set(
        &mut args,
        "--eventlog",
        &tmp.join("other.bin").display().to_string(),
    );
    let r = run(&args);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("event log rejected: event log replays PCR"),
        "{}",
        r.stderr
    );
}

#[test]
fn wrong_nonce_exits_1_naming_the_nonce() {
    let mut args = verify_args("quote/rsa2048-sha256");
    set(&mut args, "--nonce", "00112233445566778899aabbccddeeff");
    let r = run(&args);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "trustpool: quote rejected: quote nonce (extraData) does not match the issued challenge"
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn tampered_pcr_value_exits_1_naming_the_digest() {
    let dir = "quote/rsa2048-sha256";
    let mut pcrs = std::fs::read(file(dir, "quote.pcrs")).unwrap();
    // Serialized file: 132-byte selection, u32 list count, u32 digest count, u16 size, value.
    pcrs[132 + 4 + 4 + 2] ^= 0x01;
    let tmp = scratch("pcrs");
    std::fs::write(tmp.join("pcrs"), &pcrs).unwrap();
    let mut args = verify_args(dir);
    set(&mut args, "--pcrs", &tmp.join("pcrs").display().to_string());
    let r = run(&args);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("PCR values hash to"), "{}", r.stderr);
}

#[test]
fn a_different_pcr_list_exits_1() {
    let mut args = verify_args("quote/rsa2048-sha256");
    args.extend(["--pcr-list".into(), "sha256:0,1,2".into()]);
    let r = run(&args);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("but sha256:0,1,2 were asked for"),
        "{}",
        r.stderr
    );
}

#[test]
fn pem_keys_work_with_a_warning() {
    let dir = "quote/ecc-p256-sha256";
    let mut args = verify_args(dir);
    set(&mut args, "--public", &file(dir, "ak.pem"));
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("were not checked"), "{}", r.stderr);
}

#[test]
fn unusable_inputs_exit_2() {
    let tmp = scratch("garbage");
    std::fs::write(tmp.join("garbage"), b"not a quote").unwrap();
    let garbage = tmp.join("garbage").display().to_string();
    for (flag, needle) in [
        ("--message", "is not a TPMS_ATTEST"),
        ("--signature", "is not a TPMT_SIGNATURE"),
        ("--pcrs", "is not a tpm2-tools PCR file"),
        (
            "--public",
            "not a TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER public key",
        ),
    ] {
        let mut args = verify_args("quote/rsa2048-sha256");
        set(&mut args, flag, &garbage);
        let r = run(&args);
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{flag}: {}", r.stderr);
    }
    let mut args = verify_args("quote/rsa2048-sha256");
    set(&mut args, "--message", "/nonexistent/quote.msg");
    let r = run(&args);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read /nonexistent/quote.msg"),
        "{}",
        r.stderr
    );
    let mut args = verify_args("quote/rsa2048-sha256");
    set(&mut args, "--nonce", "xyz");
    assert_eq!(run(&args).code, 2);
}

#[test]
fn json_output_has_the_decoded_quote() {
    let dir = "quote/rsa2048-sha256";
    let mut args = verify_args(dir);
    args.extend(["--output".into(), "json".into()]);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["ak_attributes_checked"], true);
    assert_eq!(v["quote"]["magic"], "0xff544347");
    assert_eq!(v["quote"]["extra_data"], nonce(dir));
    assert_eq!(v["quote"]["pcr_select"], "sha256:0,1,2,3,4,5,6,7,16");
    assert_eq!(v["signature"]["scheme"], "rsassa");
    assert_eq!(v["pcrs"]["sha256"].as_object().unwrap().len(), 9);

    set(&mut args, "--nonce", "00");
    let r = run(&args);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("nonce"));
}

#[test]
fn eventlog_show_decodes_and_replays() {
    let r = trustpool(&[
        "eventlog",
        "show",
        &file("eventlog/ovmf-qemu", "eventlog.bin"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("CryptoAgile event log, 25 events, banks sha1, sha256, sha384")
    );
    assert!(r.stdout.contains("EV_EFI_ACTION"));
    assert!(
        r.stdout
            .contains("Calling EFI Application from Boot Option")
    );
    assert!(
        r.stdout.contains(
            "sha256:0  = eaa650ae9b6b9c6d0ef4fab4dda3af9769f23c839ca3c98307a7a84831cbb472"
        )
    );
    let r = trustpool(&[
        "eventlog",
        "show",
        "--output",
        "json",
        &file("eventlog/ovmf-qemu", "eventlog.bin"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 25);
    assert_eq!(v["replayed"]["sha384"].as_object().unwrap().len(), 24);
}
