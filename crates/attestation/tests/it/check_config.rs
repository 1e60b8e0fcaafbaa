//! `trustpool-attestation check-config`: every file the configuration names is opened and
//! parsed with the server's own loaders, the database is reached, and each problem names
//! its option.

use std::path::{Path, PathBuf};
use std::process::Command;

use trustpool_testkit::pki::TestPki;

fn check(config: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trustpool-attestation"))
        .args(["check-config", "--config", &config.display().to_string()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

struct Setup {
    dir: PathBuf,
    toml: String,
}

fn setup(name: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!(
        "trustpool-check-attestation-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let p = dir.join("pki");
    let pki = TestPki::new(&p, "check-config test CA");
    let _ = pki.issue("server", &["127.0.0.1"]);
    let _ = pki.issue_client("client", "attestation");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{d}/a.db\"\n\
         result_signing_key = \"{d}/ear.p8\"\n\
         [tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/client.crt\"\nclient_key = \"{p}/client.key\"\n\
         [enrollment]\nek_ca = [\"{p}/ca.crt\"]\n",
        d = dir.display(),
        p = p.display(),
    );
    Setup { dir, toml }
}

impl Setup {
    fn write(&self, toml: &str) -> PathBuf {
        let path = self.dir.join("attestation.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    fn pki(&self, name: &str) -> String {
        self.dir.join("pki").join(name).display().to_string()
    }
}

#[test]
fn a_good_configuration_lists_what_it_checked() {
    let s = setup("good");
    let (code, out, err) = check(&s.write(&s.toml));
    assert_eq!(code, 0, "{err}");
    for line in [
        "configuration OK",
        "checked: tls.cert (",
        "checked: agents.ca (",
        "checked: agents.client_cert (",
        "checked: enrollment.ek_ca (",
        "checked: result_signing_key (",
        "checked: database_url: SQLite file",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
}

/// Each broken file fails the check alone, naming its option and the problem.
#[test]
fn each_broken_file_is_named_by_its_option() {
    let s = setup("broken");
    let garbage_key = s.file(
        "garbage.key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let not_pem = s.file("server.der", &[0x30, 0x82, 0x01, 0x00, 0x02, 0x01]);
    let text = s.file("notes.txt", b"hello\n");
    let missing = s.dir.join("nowhere/ca.crt").display().to_string();
    let cases = [
        (
            s.pki("ca.crt\"\nclient_cert"),
            format!("{missing}\"\nclient_cert"),
            format!("agents.ca ({missing}): cannot open: No such file"),
        ),
        (
            s.pki("server.key"),
            garbage_key.clone(),
            format!("tls.key ({garbage_key}): not a private key"),
        ),
        (
            s.pki("server.crt"),
            not_pem.clone(),
            format!("tls.cert ({not_pem}): holds no PEM certificate"),
        ),
        (
            s.pki("client.key"),
            s.pki("server.key"),
            format!(
                "agents.client_key ({}): cannot be used with agents.client_cert",
                s.pki("server.key")
            ),
        ),
        (
            s.pki("ca.crt\"\nclient_cert"),
            format!("{}\"\nclient_cert", s.pki("server.crt")),
            format!(
                "agents.ca ({}): certificate 1 (CN=127.0.0.1) is not a CA certificate",
                s.pki("server.crt")
            ),
        ),
        (
            format!("ek_ca = [\"{}\"]", s.pki("ca.crt")),
            format!("ek_ca = [\"{}\", \"{text}\"]", s.pki("ca.crt")),
            format!("enrollment.ek_ca ({text}): "),
        ),
        (
            "[enrollment]\n".to_owned(),
            format!("[enrollment]\nek_crl = [\"{text}\"]\n"),
            format!("enrollment.ek_crl ({text}): "),
        ),
        (
            format!("sqlite://{}/a.db", s.dir.display()),
            format!("sqlite://{}/nowhere/a.db", s.dir.display()),
            format!(
                "database_url ({}/nowhere/a.db): the database's directory",
                s.dir.display()
            ),
        ),
    ];
    for (from, to, want) in cases {
        assert!(s.toml.contains(&from), "{from}");
        let (code, out, err) = check(&s.write(&s.toml.replacen(&from, &to, 1)));
        assert_eq!(code, 1, "{want}: {out}");
        assert!(err.contains(&want), "want {want}\n got {err}");
        assert_eq!(err.lines().count(), 1, "only the broken file: {err}");
    }
    // A signing key that is not one.
    let key = s.file("ear.p8", b"not a key");
    let (code, _, err) = check(&s.write(&s.toml));
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("result_signing_key ({key}): not a PKCS#8")),
        "{err}"
    );
}

#[test]
fn a_silent_postgresql_is_named_within_seconds() {
    let s = setup("pg");
    let port = trustpool_testkit::ports::free_port();
    let toml = s.toml.replacen(
        &format!("sqlite://{}/a.db", s.dir.display()),
        &format!("postgres://u:secret@127.0.0.1:{port}/x"),
        1,
    );
    let started = std::time::Instant::now();
    let (code, _, err) = check(&s.write(&toml));
    assert_eq!(code, 1);
    assert!(err.contains("database_url: "), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
