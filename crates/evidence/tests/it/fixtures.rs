//! Real quotes made by swtpm + tpm2-tools (testdata/quote, testdata/eventlog/ovmf-qemu):
//! they verify, and every single-bit change in message, signature, PCR values or nonce
//! is rejected.

use trustpool_evidence::spki::{parse_spki_der, parse_spki_pem, to_spki_der, to_spki_pem};
use trustpool_evidence::{
    AttestationKey, Challenge, Digest, PcrValues, Public, QuoteEvidence, VerifyError,
    VerifyOptions, verify_quote,
};
use trustpool_testkit::fixtures::{QUOTES, QuoteFixture};

fn ak(f: &QuoteFixture) -> AttestationKey {
    let public = Public::parse_tpm2b(&f.ak_pub).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    AttestationKey::new(public, VerifyOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", f.name))
}

fn check(
    ak: &AttestationKey,
    f: &QuoteFixture,
    message: &[u8],
    signature: &[u8],
    pcrs: &PcrValues,
    nonce: &[u8],
) -> Result<(), VerifyError> {
    let challenge = Challenge {
        nonce,
        selection: &f.selection,
    };
    verify_quote(
        ak,
        &challenge,
        &QuoteEvidence {
            attest: message,
            signature,
            pcrs,
        },
    )
    .map(|_| ())
}

#[test]
fn every_tpm2_tools_quote_verifies() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        let ak = ak(&f);
        let q = verify_quote(
            &ak,
            &Challenge {
                nonce: &f.nonce,
                selection: &f.selection,
            },
            &QuoteEvidence {
                attest: &f.message,
                signature: &f.signature,
                pcrs: &f.pcrs,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(q.selection(), &f.selection, "{name}");
        assert!(q.clock_info().safe, "{name}");
    }
}

#[test]
fn ak_name_matches_tpm2_createak() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        let public = Public::parse_tpm2b(&f.ak_pub).unwrap();
        let want = std::fs::read(f.path("ak.name")).unwrap();
        assert_eq!(public.name(), want, "{name}");
        assert_eq!(
            Public::parse_tpm2b(&public.to_tpm2b()).unwrap(),
            public,
            "{name}: TPM2B round trip"
        );
    }
}

#[test]
fn pem_from_tpm2_tools_is_the_same_key_and_round_trips() {
    for name in QUOTES.iter().filter(|n| n.starts_with("quote/")) {
        let f = QuoteFixture::load(name);
        let pem = std::fs::read_to_string(f.path("ak.pem")).unwrap();
        let key = parse_spki_pem(&pem).unwrap();
        let public = Public::parse_tpm2b(&f.ak_pub).unwrap();
        assert_eq!(key, public.key, "{name}");
        assert_eq!(parse_spki_pem(&to_spki_pem(&key)).unwrap(), key);
        assert_eq!(parse_spki_der(&to_spki_der(&key)).unwrap(), key);
        // The bare key verifies the quote too (attributes unknown, scheme from the signature).
        let bare = AttestationKey::from_bare_key(key, VerifyOptions::default());
        check(&bare, &f, &f.message, &f.signature, &f.pcrs, &f.nonce).unwrap();
    }
}

#[test]
fn every_bit_flip_in_the_message_is_rejected() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        let ak = ak(&f);
        for byte in 0..f.message.len() {
            for bit in 0..8 {
                let mut m = f.message.clone();
                m[byte] ^= 1 << bit;
                assert!(
                    check(&ak, &f, &m, &f.signature, &f.pcrs, &f.nonce).is_err(),
                    "{name}: byte {byte} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn every_bit_flip_in_the_signature_is_rejected() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        let ak = ak(&f);
        for byte in 0..f.signature.len() {
            for bit in 0..8 {
                let mut s = f.signature.clone();
                s[byte] ^= 1 << bit;
                assert!(
                    check(&ak, &f, &f.message, &s, &f.pcrs, &f.nonce).is_err(),
                    "{name}: byte {byte} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn every_bit_flip_in_a_pcr_value_is_rejected() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        let ak = ak(&f);
        for alg in f.pcrs.algs().collect::<Vec<_>>() {
            for (index, value) in f.pcrs.bank(alg).map(|(i, v)| (i, *v)).collect::<Vec<_>>() {
                for byte in 0..value.as_bytes().len() {
                    for bit in 0..8 {
                        let mut bytes = value.as_bytes().to_vec();
                        bytes[byte] ^= 1 << bit;
                        let mut pcrs = f.pcrs.clone();
                        pcrs.insert(index, Digest::new(alg, &bytes).unwrap());
                        let err =
                            check(&ak, &f, &f.message, &f.signature, &pcrs, &f.nonce).unwrap_err();
                        assert!(
                            matches!(err, VerifyError::PcrDigestMismatch { .. }),
                            "{name}: {alg}:{index} byte {byte}: {err}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_bit_flip_in_the_nonce_is_rejected() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        let ak = ak(&f);
        for byte in 0..f.nonce.len() {
            for bit in 0..8 {
                let mut n = f.nonce.clone();
                n[byte] ^= 1 << bit;
                assert_eq!(
                    check(&ak, &f, &f.message, &f.signature, &f.pcrs, &n),
                    Err(VerifyError::NonceMismatch),
                    "{name}: byte {byte}"
                );
            }
        }
    }
}

#[test]
fn a_quote_does_not_verify_under_another_tpms_ak() {
    let a = QuoteFixture::load("quote/rsa2048-sha256");
    let b = QuoteFixture::load("eventlog/ovmf-qemu");
    let err = check(&ak(&b), &a, &a.message, &a.signature, &a.pcrs, &a.nonce).unwrap_err();
    assert_eq!(err, VerifyError::SignatureInvalid);
}
