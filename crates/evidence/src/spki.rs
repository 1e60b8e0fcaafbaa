//! X.509 `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) in DER and PEM, for interoperability
//! with tools that write keys that way (`tpm2_createak -f pem`, `openssl`), and the DER
//! `ECDSA-Sig-Value` (RFC 3279 §2.2.3). Only the two key types TPMs use are accepted:
//! `rsaEncryption` (RFC 3279 §2.3.1) and `id-ecPublicKey` on P-256/P-384 (RFC 5480).
//! DER is read strictly: definite minimal lengths, minimal positive integers, no trailing
//! bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::alg::EccCurve;
use crate::codec::{ParseError, Reader};
use crate::tpm::public::{MAX_RSA_KEY_BYTES, PublicKey};

/// Largest DER SubjectPublicKeyInfo accepted (a 4096-bit RSA key is ~550 bytes).
pub const MAX_SPKI_SIZE: usize = 2048;

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// 1.2.840.113549.1.1.1
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.10045.2.1
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7 (prime256v1)
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 1.3.132.0.34 (secp384r1)
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

fn read_tlv<'a>(r: &mut Reader<'a>, tag: u8, what: &'static str) -> Result<&'a [u8], ParseError> {
    let at = r.offset();
    let got = r.u8(what)?;
    if got != tag {
        return Err(Reader::unexpected(what, at, got));
    }
    let len_at = r.offset();
    let first = r.u8(what)?;
    let len = match first {
        0..=0x7f => usize::from(first),
        0x81 => match r.u8(what)? {
            n @ 0x80..=0xff => usize::from(n),
            n => return Err(Reader::unexpected("DER length (not minimal)", len_at, n)),
        },
        0x82 => match r.u16_be(what)? {
            n @ 0x0100..=0xffff => usize::from(n),
            n => return Err(Reader::unexpected("DER length (not minimal)", len_at, n)),
        },
        other => return Err(Reader::unexpected("DER length", len_at, other)),
    };
    r.take(len, what)
}

/// A DER INTEGER that must be positive and minimally encoded; returns its magnitude.
fn read_uint<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<&'a [u8], ParseError> {
    let at = r.offset();
    let bytes = read_tlv(r, TAG_INTEGER, what)?;
    match bytes {
        [] => Err(Reader::unexpected(what, at, 0u8)),
        [first, ..] if first & 0x80 != 0 => {
            Err(Reader::unexpected("DER INTEGER (negative)", at, *first))
        }
        [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => Ok(rest),
        [0, _, ..] => Err(Reader::unexpected("DER INTEGER (not minimal)", at, 0u8)),
        _ => Ok(bytes),
    }
}

/// Parses a DER SubjectPublicKeyInfo.
///
/// # Errors
/// A `ParseError` for malformed DER, unknown algorithms or curves, or trailing bytes.
pub fn parse_spki_der(der: &[u8]) -> Result<PublicKey, ParseError> {
    if der.len() > MAX_SPKI_SIZE {
        return Err(ParseError::TooLarge {
            what: "SubjectPublicKeyInfo",
            offset: 0,
            len: u64::try_from(der.len()).unwrap_or(u64::MAX),
            max: u64::try_from(MAX_SPKI_SIZE).unwrap_or(u64::MAX),
        });
    }
    let mut outer = Reader::new(der);
    let spki = read_tlv(&mut outer, TAG_SEQUENCE, "SubjectPublicKeyInfo")?;
    outer.finish("SubjectPublicKeyInfo")?;
    let mut r = Reader::at(spki, 2);
    let alg_id = read_tlv(&mut r, TAG_SEQUENCE, "AlgorithmIdentifier")?;
    let bits = read_tlv(&mut r, TAG_BIT_STRING, "subjectPublicKey")?;
    r.finish("SubjectPublicKeyInfo")?;
    let mut alg = Reader::new(alg_id);
    let oid_at = alg.offset();
    let oid = read_tlv(&mut alg, TAG_OID, "AlgorithmIdentifier.algorithm")?;
    let mut bits = Reader::new(bits);
    let unused = bits.u8("subjectPublicKey (unused bits)")?;
    if unused != 0 {
        return Err(Reader::unexpected(
            "subjectPublicKey (unused bits)",
            0,
            unused,
        ));
    }
    let key = bits.take_rest();
    if oid == OID_RSA_ENCRYPTION {
        // RFC 3279 §2.3.1: parameters MUST be NULL.
        let null_at = alg.offset();
        let null = read_tlv(&mut alg, TAG_NULL, "AlgorithmIdentifier.parameters")?;
        if !null.is_empty() {
            return Err(Reader::unexpected(
                "AlgorithmIdentifier.parameters (NULL with content)",
                null_at,
                u64::try_from(null.len()).unwrap_or(0),
            ));
        }
        alg.finish("AlgorithmIdentifier")?;
        let mut k = Reader::new(key);
        let seq = read_tlv(&mut k, TAG_SEQUENCE, "RSAPublicKey")?;
        k.finish("RSAPublicKey")?;
        let mut k = Reader::new(seq);
        let modulus = read_uint(&mut k, "RSAPublicKey.modulus")?;
        let exp_at = k.offset();
        let exponent = read_uint(&mut k, "RSAPublicKey.publicExponent")?;
        k.finish("RSAPublicKey")?;
        if modulus.len() > MAX_RSA_KEY_BYTES || modulus.len() < 128 {
            return Err(Reader::unexpected(
                "RSAPublicKey.modulus (size)",
                0,
                u64::try_from(modulus.len()).unwrap_or(u64::MAX),
            ));
        }
        if exponent.len() > 4 {
            return Err(Reader::unexpected(
                "RSAPublicKey.publicExponent (over 32 bits)",
                exp_at,
                u64::try_from(exponent.len()).unwrap_or(u64::MAX),
            ));
        }
        let exponent = exponent
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        Ok(PublicKey::Rsa {
            modulus: modulus.to_vec(),
            exponent,
        })
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve_at = alg.offset();
        let curve_oid = read_tlv(&mut alg, TAG_OID, "ECParameters.namedCurve")?;
        alg.finish("AlgorithmIdentifier")?;
        let curve = match curve_oid {
            OID_P256 => EccCurve::P256,
            OID_P384 => EccCurve::P384,
            _ => {
                return Err(Reader::unexpected(
                    "ECParameters.namedCurve",
                    curve_at,
                    u64::try_from(curve_oid.len()).unwrap_or(0),
                ));
            }
        };
        let size = curve.coordinate_size();
        let mut p = Reader::new(key);
        let form = p.u8("ECPoint (form)")?;
        if form != 0x04 {
            return Err(Reader::unexpected(
                "ECPoint (only uncompressed points)",
                0,
                form,
            ));
        }
        let x = p.take(size, "ECPoint.x")?.to_vec();
        let y = p.take(size, "ECPoint.y")?.to_vec();
        p.finish("ECPoint")?;
        Ok(PublicKey::Ecc { curve, x, y })
    } else {
        Err(Reader::unexpected(
            "AlgorithmIdentifier.algorithm",
            oid_at,
            u64::try_from(oid.len()).unwrap_or(0),
        ))
    }
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else if len <= 0xff {
        out.push(0x81);
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        out.push(0x82);
        out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    }
    out.extend_from_slice(body);
}

fn push_uint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let trimmed = magnitude.get(start..).unwrap_or(&[]);
    let mut body = Vec::with_capacity(trimmed.len().saturating_add(1));
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    push_tlv(out, TAG_INTEGER, &body);
}

/// Encodes a key as a DER SubjectPublicKeyInfo.
#[must_use]
pub fn to_spki_der(key: &PublicKey) -> Vec<u8> {
    let mut alg = Vec::new();
    let mut bits = vec![0u8];
    match key {
        PublicKey::Rsa { modulus, exponent } => {
            push_tlv(&mut alg, TAG_OID, OID_RSA_ENCRYPTION);
            push_tlv(&mut alg, TAG_NULL, &[]);
            let mut ints = Vec::new();
            push_uint(&mut ints, modulus);
            push_uint(&mut ints, &exponent.to_be_bytes());
            push_tlv(&mut bits, TAG_SEQUENCE, &ints);
        }
        PublicKey::Ecc { curve, x, y } => {
            push_tlv(&mut alg, TAG_OID, OID_EC_PUBLIC_KEY);
            let curve_oid = match curve {
                EccCurve::P256 => OID_P256,
                EccCurve::P384 => OID_P384,
            };
            push_tlv(&mut alg, TAG_OID, curve_oid);
            bits.push(0x04);
            bits.extend_from_slice(x);
            bits.extend_from_slice(y);
        }
    }
    let mut body = Vec::new();
    push_tlv(&mut body, TAG_SEQUENCE, &alg);
    push_tlv(&mut body, TAG_BIT_STRING, &bits);
    let mut out = Vec::new();
    push_tlv(&mut out, TAG_SEQUENCE, &body);
    out
}

/// The DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` for raw r and s.
#[must_use]
pub fn ecdsa_sig_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut ints = Vec::with_capacity(r.len().saturating_add(s.len()).saturating_add(6));
    push_uint(&mut ints, r);
    push_uint(&mut ints, s);
    let mut out = Vec::with_capacity(ints.len().saturating_add(3));
    push_tlv(&mut out, TAG_SEQUENCE, &ints);
    out
}

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// Parses a PEM `PUBLIC KEY` block (text around the block is ignored, as openssl does).
///
/// # Errors
/// `BadEncoding` when there is no block or its base64 is invalid; then as
/// [`parse_spki_der`].
pub fn parse_spki_pem(pem: &str) -> Result<PublicKey, ParseError> {
    let what = "PEM PUBLIC KEY";
    let start = pem.find(PEM_BEGIN).ok_or(ParseError::BadEncoding {
        what,
        reason: "no BEGIN PUBLIC KEY line",
    })?;
    let after = pem
        .get(start.saturating_add(PEM_BEGIN.len())..)
        .unwrap_or("");
    let end = after.find(PEM_END).ok_or(ParseError::BadEncoding {
        what,
        reason: "no END PUBLIC KEY line",
    })?;
    let body: String = after
        .get(..end)
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if body.len() > MAX_SPKI_SIZE.saturating_mul(2) {
        return Err(ParseError::BadEncoding {
            what,
            reason: "too long",
        });
    }
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| ParseError::BadEncoding {
            what,
            reason: "invalid base64",
        })?;
    parse_spki_der(&der)
}

/// Encodes a key as a PEM `PUBLIC KEY` block with 64-character lines.
#[must_use]
pub fn to_spki_pem(key: &PublicKey) -> String {
    let b64 = STANDARD.encode(to_spki_der(key));
    let mut out = String::with_capacity(b64.len().saturating_add(100));
    out.push_str(PEM_BEGIN);
    out.push('\n');
    for line in b64.as_bytes().chunks(64) {
        out.push_str(core::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(PEM_END);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p256_key() -> PublicKey {
        PublicKey::Ecc {
            curve: EccCurve::P256,
            x: vec![0x81; 32],
            y: vec![0x02; 32],
        }
    }

    #[test]
    fn round_trips_both_key_types() {
        let rsa = PublicKey::Rsa {
            modulus: vec![0xc1; 256],
            exponent: 65_537,
        };
        for key in [rsa, p256_key()] {
            assert_eq!(parse_spki_der(&to_spki_der(&key)).unwrap(), key);
            assert_eq!(parse_spki_pem(&to_spki_pem(&key)).unwrap(), key);
        }
    }

    #[test]
    fn integers_get_a_sign_byte_and_lose_leading_zeros() {
        assert_eq!(
            ecdsa_sig_der(&[0x00, 0x80], &[0x01]),
            vec![0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01]
        );
    }

    #[test]
    fn null_parameters_must_be_empty() {
        let der = to_spki_der(&PublicKey::Rsa {
            modulus: vec![0xc1; 256],
            exponent: 3,
        });
        // SEQ(82 len) SEQ(0d) OID(09 …) NULL(05 00): give the NULL one content byte.
        let mut bad = der;
        let null = bad.windows(2).position(|w| w == [0x05, 0x00]).unwrap();
        bad[null + 1] = 0x01;
        bad.insert(null + 2, 0x00);
        bad[5] += 1; // AlgorithmIdentifier length
        bad[3] += 1; // outer SEQUENCE length (0x82 form)
        let err = parse_spki_der(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::UnexpectedValue {
                    what: "AlgorithmIdentifier.parameters (NULL with content)",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn pem_errors_are_named() {
        assert_eq!(
            parse_spki_pem("hello"),
            Err(ParseError::BadEncoding {
                what: "PEM PUBLIC KEY",
                reason: "no BEGIN PUBLIC KEY line"
            })
        );
        let broken = "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            parse_spki_pem(broken),
            Err(ParseError::BadEncoding {
                what: "PEM PUBLIC KEY",
                reason: "invalid base64"
            })
        );
    }
}
