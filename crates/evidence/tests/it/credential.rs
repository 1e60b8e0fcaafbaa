//! `make_credential` against a real TPM: swtpm's ActivateCredential (through
//! tpm2-tools) recovers the secret for RSA-2048, ECC P-256 and ECC P-384 EKs; a wrong AK
//! name or a different TPM cannot. Needs swtpm + tpm2-tools (feature `swtpm`).

use trustpool_evidence::{Public, make_credential};

#[test]
fn refuses_secrets_longer_than_the_digest() {
    let f = trustpool_testkit::fixtures::QuoteFixture::load("quote/rsa2048-sha256");
    let ek = Public::parse_tpm2b(&std::fs::read(f.path("ek.pub")).unwrap()).unwrap();
    let name = Public::parse_tpm2b(&f.ak_pub).unwrap().name();
    assert!(make_credential(&ek, &name, &[7; 33]).is_err());
    assert!(make_credential(&ek, &name, &[]).is_err());
    // An AK is not a storage key: a credential cannot be made to it.
    assert!(make_credential(&Public::parse_tpm2b(&f.ak_pub).unwrap(), &name, &[7; 16]).is_err());
}

#[cfg(feature = "swtpm")]
mod on_swtpm {
    use trustpool_evidence::{Public, make_credential};
    use trustpool_testkit::swtpm::Swtpm;

    /// Creates an EK (`ek_alg` for tpm2_createek) and an AK on `tpm`; returns (EK, AK name).
    fn keys(tpm: &Swtpm, ek_alg: &str) -> (Public, Vec<u8>) {
        tpm.tpm2_ok("createek", &["-c", "ek.ctx", "-G", ek_alg, "-u", "ek.pub"]);
        tpm.tpm2_ok(
            "createak",
            &[
                "-C", "ek.ctx", "-c", "ak.ctx", "-G", "ecc", "-g", "sha256", "-s", "ecdsa", "-u",
                "ak.pub", "-n", "ak.name",
            ],
        );
        let ek = Public::parse_tpm2b(&std::fs::read(tpm.dir().join("ek.pub")).unwrap()).unwrap();
        let name = std::fs::read(tpm.dir().join("ak.name")).unwrap();
        assert_eq!(
            Public::parse_tpm2b(&std::fs::read(tpm.dir().join("ak.pub")).unwrap())
                .unwrap()
                .name(),
            name
        );
        (ek, name)
    }

    /// Runs TPM2_ActivateCredential. The EK (keyHandle, USER role) is authorised with
    /// PolicySecret(endorsement) for the classic templates (userWithAuth clear), and with
    /// its empty password for the high-range templates that set userWithAuth (the P-384
    /// one: TCG EK Credential Profile 2.5, Annex B.4).
    fn activate(tpm: &Swtpm, credential_file: &[u8]) -> Option<Vec<u8>> {
        use trustpool_evidence::ObjectAttributes;
        std::fs::write(tpm.dir().join("cred.bin"), credential_file).unwrap();
        let _ = std::fs::remove_file(tpm.dir().join("out.bin"));
        let ek = Public::parse_tpm2b(&std::fs::read(tpm.dir().join("ek.pub")).unwrap()).unwrap();
        let policy = !ek.attributes.has(ObjectAttributes::USER_WITH_AUTH);
        let mut args = vec![
            "-c", "ak.ctx", "-C", "ek.ctx", "-i", "cred.bin", "-o", "out.bin",
        ];
        if policy {
            tpm.tpm2_ok(
                "startauthsession",
                &["--policy-session", "-S", "session.ctx"],
            );
            tpm.tpm2_ok("policysecret", &["-S", "session.ctx", "-c", "e"]);
            args.extend(["-P", "session:session.ctx"]);
        }
        let out = tpm.tpm2("activatecredential", &args);
        if policy {
            let _ = tpm.tpm2("flushcontext", &["session.ctx"]);
        }
        out.status
            .success()
            .then(|| std::fs::read(tpm.dir().join("out.bin")).unwrap())
    }

    fn round_trip(ek_alg: &str) {
        assert!(
            trustpool_testkit::swtpm::available(),
            "swtpm and tpm2-tools must be installed (make test installs them)"
        );
        let tpm = Swtpm::start();
        let (ek, name) = keys(&tpm, ek_alg);
        let secret = b"trustpool enrolment secret 32b!!";
        let credential = make_credential(&ek, &name, secret).unwrap();
        assert_eq!(
            activate(&tpm, &credential.to_tpm2_tools_file()).as_deref(),
            Some(&secret[..]),
            "{ek_alg}"
        );

        // The oracle agrees on the format: tpm2_makecredential -T none output activates too.
        std::fs::write(tpm.dir().join("secret.bin"), secret).unwrap();
        let name_hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
        tpm.tpm2_ok(
            "makecredential",
            &[
                "-T",
                "none",
                "-e",
                "ek.pub",
                "-s",
                "secret.bin",
                "-n",
                &name_hex,
                "-o",
                "tools-cred.bin",
            ],
        );
        let tools = std::fs::read(tpm.dir().join("tools-cred.bin")).unwrap();
        assert_eq!(activate(&tpm, &tools).as_deref(), Some(&secret[..]));

        // Bound to the AK's name: a credential for another name does not activate.
        let mut other = name;
        *other.last_mut().unwrap() ^= 1;
        let wrong = make_credential(&ek, &other, secret).unwrap();
        assert_eq!(
            activate(&tpm, &wrong.to_tpm2_tools_file()),
            None,
            "{ek_alg}: other name"
        );
    }

    #[test]
    fn rsa2048_ek() {
        round_trip("rsa");
    }

    #[test]
    fn ecc_p256_ek() {
        round_trip("ecc256");
    }

    #[test]
    fn ecc_p384_ek() {
        round_trip("ecc384");
    }

    #[test]
    fn another_tpm_cannot_activate() {
        let a = Swtpm::start();
        let b = Swtpm::start();
        let (ek_a, name_a) = keys(&a, "rsa");
        let (_, _) = keys(&b, "rsa");
        let credential = make_credential(&ek_a, &name_a, b"secret for TPM a").unwrap();
        assert_eq!(activate(&b, &credential.to_tpm2_tools_file()), None);
    }

    /// A quote made by our side (the software AK and the builders) verifies under
    /// tpm2_checkquote too.
    #[test]
    fn tpm2_checkquote_accepts_our_quotes() {
        use trustpool_evidence::{HashAlg, PcrIndex, PcrValues};
        use trustpool_testkit::attest::AttestBuilder;
        use trustpool_testkit::soft_ak::SoftAk;
        let dir = std::env::temp_dir().join(format!("trustpool-checkquote-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (label, ak) in [("rsa", SoftAk::rsa2048()), ("ecc", SoftAk::p256())] {
            let mut values = PcrValues::new();
            let mut raw = Vec::new();
            for i in [0u8, 7, 16] {
                let d = HashAlg::Sha256.hash(&[i, 1, 2]);
                raw.extend_from_slice(d.as_bytes());
                values.insert(PcrIndex::new(i).unwrap(), d);
            }
            let nonce = [0x42u8; 20];
            let message = AttestBuilder::quote(&nonce, &values, HashAlg::Sha256).build();
            let signature = ak.sign(&message);
            let public = ak.public().to_tpm2b();
            for (file, bytes) in [
                ("ak.pub", &public),
                ("quote.msg", &message),
                ("quote.sig", &signature),
                ("pcrs.bin", &raw),
            ] {
                std::fs::write(dir.join(file), bytes).unwrap();
            }
            let status = std::process::Command::new("tpm2_checkquote")
                .current_dir(&dir)
                .args([
                    "-u",
                    "ak.pub",
                    "-m",
                    "quote.msg",
                    "-s",
                    "quote.sig",
                    "-f",
                    "pcrs.bin",
                    "-l",
                    "sha256:0,7,16",
                    "-g",
                    "sha256",
                    "-q",
                    &"42".repeat(20),
                ])
                .output()
                .unwrap();
            assert!(
                status.status.success(),
                "{label}: {}",
                String::from_utf8_lossy(&status.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
