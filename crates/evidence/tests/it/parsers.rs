//! Every parser of untrusted bytes: well-formed input parses, every prefix is `Truncated`,
//! a lying length is caught, a trailing byte is `TrailingData`, and byte flips or random
//! bytes never panic.

use trustpool_evidence::spki::{parse_spki_der, to_spki_der};
use trustpool_evidence::tpm2_tools::parse_pcr_file;
use trustpool_evidence::{Attest, EventLog, ParseError, Public, Signature};
use trustpool_testkit::fixtures::{QUOTES, QuoteFixture};

use crate::Rng;

type Parser = fn(&[u8]) -> Result<(), ParseError>;

fn parsers() -> Vec<(&'static str, Parser, Vec<Vec<u8>>)> {
    let fixtures: Vec<QuoteFixture> = QUOTES.iter().map(|n| QuoteFixture::load(n)).collect();
    let attest: Parser = |b| Attest::parse(b).map(|_| ());
    let signature: Parser = |b| Signature::parse(b).map(|_| ());
    let public: Parser = |b| Public::parse_tpm2b(b).map(|_| ());
    let tpmt_public: Parser = |b| Public::parse(b).map(|_| ());
    let spki: Parser = |b| parse_spki_der(b).map(|_| ());
    vec![
        (
            "TPMS_ATTEST",
            attest,
            fixtures.iter().map(|f| f.message.clone()).collect(),
        ),
        (
            "TPMT_SIGNATURE",
            signature,
            fixtures.iter().map(|f| f.signature.clone()).collect(),
        ),
        (
            "TPM2B_PUBLIC",
            public,
            fixtures.iter().map(|f| f.ak_pub.clone()).collect(),
        ),
        (
            "TPMT_PUBLIC",
            tpmt_public,
            fixtures.iter().map(|f| f.ak_pub[2..].to_vec()).collect(),
        ),
        (
            "SubjectPublicKeyInfo",
            spki,
            fixtures
                .iter()
                .map(|f| to_spki_der(&Public::parse_tpm2b(&f.ak_pub).unwrap().key))
                .collect(),
        ),
    ]
}

#[test]
fn well_formed_inputs_parse() {
    for (what, parse, inputs) in parsers() {
        for input in &inputs {
            parse(input).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    for (what, parse, inputs) in parsers() {
        for input in &inputs {
            for len in 0..input.len() {
                let err = parse(&input[..len]).unwrap_err();
                assert!(
                    matches!(err, ParseError::Truncated { .. }),
                    "{what}: prefix of {len} bytes gave {err}"
                );
            }
        }
    }
}

#[test]
fn a_trailing_byte_is_an_error() {
    for (what, parse, inputs) in parsers() {
        for input in &inputs {
            let mut longer = input.clone();
            longer.push(0);
            let err = parse(&longer).unwrap_err();
            assert!(
                matches!(err, ParseError::TrailingData { .. }),
                "{what}: {err}"
            );
        }
    }
}

#[test]
fn a_lying_length_is_caught() {
    let f = QuoteFixture::load("quote/rsa2048-sha256");
    // TPMS_ATTEST: magic(4) type(2) qualifiedSigner.size at offset 6.
    let mut m = f.message.clone();
    m[6..8].copy_from_slice(&0x0100u16.to_be_bytes());
    assert!(matches!(
        Attest::parse(&m),
        Err(ParseError::TooLarge {
            what: "TPMS_ATTEST.qualifiedSigner",
            ..
        })
    ));
    m[6..8].copy_from_slice(&0x0040u16.to_be_bytes());
    assert!(Attest::parse(&m).is_err());
    // TPMT_SIGNATURE (RSASSA): sigAlg(2) hash(2) sig.size at offset 4.
    let mut s = f.signature.clone();
    s[4..6].copy_from_slice(&0x0101u16.to_be_bytes());
    assert!(matches!(
        Signature::parse(&s),
        Err(ParseError::Truncated { .. })
    ));
    s[4..6].copy_from_slice(&0xffffu16.to_be_bytes());
    assert!(matches!(
        Signature::parse(&s),
        Err(ParseError::TooLarge { .. })
    ));
    // TPM2B_PUBLIC's outer size larger than the data.
    let mut p = f.ak_pub;
    let too_long = u16::try_from(p.len()).unwrap();
    p[0..2].copy_from_slice(&too_long.to_be_bytes());
    assert!(matches!(
        Public::parse_tpm2b(&p),
        Err(ParseError::Truncated { .. })
    ));
}

#[test]
fn byte_flips_never_panic() {
    for (_, parse, inputs) in parsers() {
        for input in &inputs {
            for i in 0..input.len() {
                for bit in 0..8 {
                    let mut b = input.clone();
                    b[i] ^= 1 << bit;
                    let _ = parse(&b);
                }
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x7275_7374_706f_6f6c);
    let all: Vec<Parser> = parsers().into_iter().map(|(_, p, _)| p).collect();
    for _ in 0..20_000 {
        let len = (rng.next() % 600) as usize;
        let bytes = rng.bytes(len);
        for parse in &all {
            let _ = parse(&bytes);
        }
        let _ = EventLog::parse(&bytes);
        let _ = parse_pcr_file(&bytes, None);
    }
}

#[test]
fn pcr_files_truncated_or_flipped_never_panic() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        // A prefix exactly as long as the raw values would be read as the `values` format;
        // that is the format's ambiguity, and the quote's digest still decides.
        let values_len: usize = f
            .pcrs
            .algs()
            .map(|a| a.size() * f.pcrs.bank(a).count())
            .sum();
        for len in (0..f.pcr_file.len()).filter(|l| *l != values_len) {
            assert!(
                parse_pcr_file(&f.pcr_file[..len], Some(&f.selection)).is_err(),
                "{name}: {len}"
            );
        }
        for i in 0..f.pcr_file.len() {
            let mut b = f.pcr_file.clone();
            b[i] ^= 0x80;
            let _ = parse_pcr_file(&b, Some(&f.selection));
        }
    }
}

/// Found by `cargo fuzz run public`: a TPMT_PUBLIC whose 256-byte RSA modulus starts with
/// a zero byte (a 2040-bit key declared as 2048) parsed, and its SPKI re-encoding differed.
/// Such a key is now refused.
#[test]
fn fuzz_public_rsa_modulus_leading_zero() {
    let bytes = std::fs::read(
        trustpool_testkit::fixtures::testdata().join("fuzz/public-rsa-modulus-leading-zero.bin"),
    )
    .unwrap();
    let err = Public::parse(&bytes)
        .map(|_| ())
        .or_else(|_| Public::parse_tpm2b(&bytes).map(|_| ()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::UnexpectedValue { .. }
                | ParseError::TrailingData { .. }
                | ParseError::Truncated { .. }
        ),
        "{err}"
    );
    assert!(Public::parse(&bytes).is_err() && Public::parse_tpm2b(&bytes).is_err());
}

#[test]
fn written_pcr_files_are_what_tpm2_tools_writes() {
    for name in QUOTES {
        let f = QuoteFixture::load(name);
        let written =
            trustpool_evidence::tpm2_tools::write_pcr_file(&f.selection, &f.pcrs).unwrap();
        assert_eq!(
            written, f.pcr_file,
            "{name}: byte-identical to tpm2_quote -o"
        );
    }
}
