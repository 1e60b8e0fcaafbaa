//! The negative matrix: for each check, a quote in which only that check fails, asserting
//! the exact error. Quotes are signed by a software key laid out like a TPM AK, because a
//! real TPM will not sign a structure with the wrong magic or type.

use trustpool_evidence::{
    AttestationKey, Challenge, Digest, HashAlg, ObjectAttributes, ParseError, PcrIndex,
    PcrSelection, PcrSet, PcrValues, PublicKey, QuoteEvidence, Scheme, VerifiedQuote, VerifyError,
    VerifyOptions, verify_quote,
};
use trustpool_testkit::attest::AttestBuilder;
use trustpool_testkit::soft_ak::SoftAk;

fn pcr(i: u8) -> PcrIndex {
    PcrIndex::new(i).unwrap()
}

fn values() -> PcrValues {
    let mut v = PcrValues::new();
    for i in 0..8 {
        v.insert(pcr(i), HashAlg::Sha256.hash(&[i]));
    }
    v
}

const NONCE: [u8; 32] = [0x5a; 32];

/// Signs `attest` with `signer` and verifies it against `ak` with the given challenge.
fn run(
    ak: &SoftAk,
    signer: &SoftAk,
    attest: &AttestBuilder,
    asked: &PcrSelection,
    nonce: &[u8],
    pcrs: &PcrValues,
) -> Result<VerifiedQuote, VerifyError> {
    let key = AttestationKey::new(ak.public(), VerifyOptions::default())?;
    let message = attest.build();
    let signature = signer.sign(&message);
    verify_quote(
        &key,
        &Challenge {
            nonce,
            selection: asked,
        },
        &QuoteEvidence {
            attest: &message,
            signature: &signature,
            pcrs,
        },
    )
}

fn good(ak: &SoftAk) -> Result<VerifiedQuote, VerifyError> {
    let v = values();
    run(
        ak,
        ak,
        &AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256),
        &v.selection(),
        &NONCE,
        &v,
    )
}

#[test]
fn well_formed_quotes_verify_rsa_and_ecc() {
    for ak in [SoftAk::rsa2048(), SoftAk::p256()] {
        let q = good(&ak).unwrap();
        assert_eq!(q.pcrs(), &values());
        assert_eq!(q.hash(), HashAlg::Sha256);
    }
}

#[test]
fn ak_attributes_each_required() {
    for (bit, name) in [
        (ObjectAttributes::RESTRICTED, "restricted"),
        (ObjectAttributes::SIGN, "sign"),
        (ObjectAttributes::FIXED_TPM, "fixedTPM"),
        (ObjectAttributes::FIXED_PARENT, "fixedParent"),
        (
            ObjectAttributes::SENSITIVE_DATA_ORIGIN,
            "sensitiveDataOrigin",
        ),
    ] {
        let mut ak = SoftAk::p256();
        ak.attributes &= !bit;
        assert_eq!(
            good(&ak).unwrap_err(),
            VerifyError::AkAttributeMissing(name)
        );
    }
}

#[test]
fn ak_name_alg_must_be_sha256_or_stronger() {
    let mut public = SoftAk::p256().public();
    public.name_alg = HashAlg::Sha1;
    assert_eq!(
        AttestationKey::new(public.clone(), VerifyOptions::default()).unwrap_err(),
        VerifyError::AkNameAlgNotAllowed(HashAlg::Sha1)
    );
    let allowed = VerifyOptions { allow_sha1: true };
    assert!(AttestationKey::new(public, allowed).is_ok());
}

#[test]
fn ak_must_not_decrypt() {
    let mut ak = SoftAk::p256();
    ak.attributes |= ObjectAttributes::DECRYPT;
    assert_eq!(
        good(&ak).unwrap_err(),
        VerifyError::AkAttributeForbidden("decrypt")
    );
}

#[test]
fn ak_must_have_a_fixed_scheme() {
    let mut public = SoftAk::rsa2048().public();
    public.scheme = Scheme::Null;
    assert_eq!(
        AttestationKey::new(public, VerifyOptions::default()).unwrap_err(),
        VerifyError::AkSchemeNotFixed
    );
}

#[test]
fn ak_rsa_below_2048_is_refused() {
    let mut public = SoftAk::rsa2048().public();
    public.key = PublicKey::Rsa {
        modulus: vec![0xc5; 128],
        exponent: 65_537,
    };
    assert_eq!(
        AttestationKey::new(public, VerifyOptions::default()).unwrap_err(),
        VerifyError::AkKeyTooSmall { bits: 1024 }
    );
}

#[test]
fn sha1_needs_explicit_permission() {
    let mut ak = SoftAk::rsa2048();
    ak.hash = HashAlg::Sha1;
    assert_eq!(
        AttestationKey::new(ak.public(), VerifyOptions::default()).unwrap_err(),
        VerifyError::HashNotAllowed(HashAlg::Sha1)
    );
    assert!(AttestationKey::new(ak.public(), VerifyOptions { allow_sha1: true }).is_ok());
}

#[test]
fn signature_scheme_must_be_the_aks() {
    let ak = SoftAk::rsa2048();
    let v = values();
    let message = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256).build();
    let mut signature = ak.sign(&message);
    signature[2..4].copy_from_slice(&HashAlg::Sha384.tpm_id().to_be_bytes());
    let key = AttestationKey::new(ak.public(), VerifyOptions::default()).unwrap();
    let err = verify_quote(
        &key,
        &Challenge {
            nonce: &NONCE,
            selection: &v.selection(),
        },
        &QuoteEvidence {
            attest: &message,
            signature: &signature,
            pcrs: &v,
        },
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::SchemeMismatch { .. }), "{err}");
}

#[test]
fn signature_by_another_key_is_invalid() {
    for (ak, other) in [
        (SoftAk::rsa2048(), SoftAk::rsa2048()),
        (SoftAk::p256(), SoftAk::p256()),
    ] {
        let v = values();
        let err = run(
            &ak,
            &other,
            &AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256),
            &v.selection(),
            &NONCE,
            &v,
        )
        .unwrap_err();
        assert_eq!(err, VerifyError::SignatureInvalid);
    }
}

#[test]
fn wrong_magic_is_refused_even_when_signed() {
    let ak = SoftAk::rsa2048();
    let v = values();
    let mut attest = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256);
    attest.magic = 0xff54_4348;
    assert_eq!(
        run(&ak, &ak, &attest, &v.selection(), &NONCE, &v).unwrap_err(),
        VerifyError::WrongMagic { got: 0xff54_4348 }
    );
}

#[test]
fn other_attestation_types_are_not_quotes() {
    let ak = SoftAk::rsa2048();
    let v = values();
    let mut attest = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256);
    attest.tag = 0x8017; // TPM_ST_ATTEST_CERTIFY
    assert_eq!(
        run(&ak, &ak, &attest, &v.selection(), &NONCE, &v).unwrap_err(),
        VerifyError::NotAQuote { got: 0x8017 }
    );
}

#[test]
fn nonce_must_match() {
    let ak = SoftAk::p256();
    let v = values();
    let attest = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256);
    assert_eq!(
        run(&ak, &ak, &attest, &v.selection(), &[0x5b; 32], &v).unwrap_err(),
        VerifyError::NonceMismatch
    );
}

#[test]
fn selection_must_be_what_was_asked() {
    let ak = SoftAk::rsa2048();
    let v = values();
    let attest = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256);
    let asked = PcrSelection::parse_list("sha256:0,1,2,3,4,5,6,7,8").unwrap();
    let err = run(&ak, &ak, &attest, &asked, &NONCE, &v).unwrap_err();
    assert!(
        matches!(err, VerifyError::SelectionMismatch { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "quote covers PCRs sha256:0,1,2,3,4,5,6,7, but sha256:0,1,2,3,4,5,6,7,8 were asked for"
    );
}

#[test]
fn every_quoted_pcr_needs_a_value() {
    let ak = SoftAk::rsa2048();
    let v = values();
    let attest = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256);
    let mut sent = PcrValues::new();
    for (i, d) in v.bank(HashAlg::Sha256).filter(|(i, _)| i.get() != 3) {
        sent.insert(i, *d);
    }
    assert_eq!(
        run(&ak, &ak, &attest, &v.selection(), &NONCE, &sent).unwrap_err(),
        VerifyError::PcrValueMissing {
            bank: HashAlg::Sha256,
            index: pcr(3)
        }
    );
}

#[test]
fn values_outside_the_quote_are_refused() {
    let ak = SoftAk::rsa2048();
    let v = values();
    let attest = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256);
    let mut sent = v.clone();
    sent.insert(pcr(9), HashAlg::Sha256.hash(b"unquoted"));
    assert_eq!(
        run(&ak, &ak, &attest, &v.selection(), &NONCE, &sent).unwrap_err(),
        VerifyError::PcrValueNotQuoted {
            bank: HashAlg::Sha256,
            index: pcr(9)
        }
    );
    let mut other_bank = v.clone();
    other_bank.insert(pcr(0), HashAlg::Sha384.hash(b"unquoted bank"));
    assert_eq!(
        run(&ak, &ak, &attest, &v.selection(), &NONCE, &other_bank).unwrap_err(),
        VerifyError::PcrValueNotQuoted {
            bank: HashAlg::Sha384,
            index: pcr(0)
        }
    );
}

#[test]
fn changed_pcr_value_breaks_the_digest() {
    let ak = SoftAk::p256();
    let v = values();
    let attest = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256);
    let mut sent = v.clone();
    sent.insert(pcr(0), Digest::zero(HashAlg::Sha256));
    let err = run(&ak, &ak, &attest, &v.selection(), &NONCE, &sent).unwrap_err();
    assert!(
        matches!(err, VerifyError::PcrDigestMismatch { .. }),
        "{err}"
    );
}

#[test]
fn trailing_byte_in_a_signed_quote_is_malformed() {
    let ak = SoftAk::rsa2048();
    let v = values();
    let mut message = AttestBuilder::quote(&NONCE, &v, HashAlg::Sha256).build();
    message.push(0);
    let signature = ak.sign(&message);
    let key = AttestationKey::new(ak.public(), VerifyOptions::default()).unwrap();
    let err = verify_quote(
        &key,
        &Challenge {
            nonce: &NONCE,
            selection: &v.selection(),
        },
        &QuoteEvidence {
            attest: &message,
            signature: &signature,
            pcrs: &v,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed(ParseError::TrailingData { .. })),
        "{err}"
    );
}

#[test]
fn digest_over_two_banks_follows_selection_order() {
    let ak = SoftAk::rsa2048();
    let mut v = values();
    for i in [0, 7] {
        v.insert(pcr(i), HashAlg::Sha384.hash(&[i]));
    }
    // Quote lists sha384 first: the digest concatenates banks in the quote's order.
    let selection = PcrSelection::new(vec![
        (HashAlg::Sha384, PcrSet::from_indices([pcr(0), pcr(7)])),
        (HashAlg::Sha256, PcrSet::from_indices((0..8).map(pcr))),
    ])
    .unwrap();
    let attest = AttestBuilder::quote_selection(&NONCE, &selection, &v, HashAlg::Sha256);
    run(&ak, &ak, &attest, &selection, &NONCE, &v).unwrap();
}
