//! `TPMT_SIGNATURE` — TPM 2.0 Library Part 2, rev. 1.59, §11.3.4 — for RSASSA, RSAPSS and
//! ECDSA, the schemes attestation keys use.

use crate::alg::{HashAlg, alg_id};
use crate::codec::{ParseError, Reader};
use crate::tpm::public::{MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES};

/// The signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigScheme {
    /// RSASSA-PKCS1-v1_5 (TPM_ALG_RSASSA).
    RsaSsa,
    /// RSASSA-PSS (TPM_ALG_RSAPSS).
    RsaPss,
    /// ECDSA (TPM_ALG_ECDSA).
    Ecdsa,
}

impl SigScheme {
    /// The scheme's `TPM_ALG_ID`.
    #[must_use]
    pub fn tpm_id(self) -> u16 {
        match self {
            Self::RsaSsa => alg_id::RSASSA,
            Self::RsaPss => alg_id::RSAPSS,
            Self::Ecdsa => alg_id::ECDSA,
        }
    }

    /// Name for humans (`rsassa`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RsaSsa => "rsassa",
            Self::RsaPss => "rsapss",
            Self::Ecdsa => "ecdsa",
        }
    }
}

/// The signature value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureValue<'a> {
    /// `TPM2B_PUBLIC_KEY_RSA`: the signature, as long as the modulus.
    Rsa(&'a [u8]),
    /// `TPMS_SIGNATURE_ECC.signatureR` and `signatureS`, big-endian, possibly shorter than
    /// the curve size (leading zeros may be stripped).
    Ecdsa {
        /// r.
        r: &'a [u8],
        /// s.
        s: &'a [u8],
    },
}

/// A parsed `TPMT_SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature<'a> {
    /// `sigAlg`.
    pub scheme: SigScheme,
    /// The scheme's `hash`.
    pub hash: HashAlg,
    /// The value.
    pub value: SignatureValue<'a>,
}

impl<'a> Signature<'a> {
    /// Parses a `TPMT_SIGNATURE`; trailing bytes are an error.
    ///
    /// # Errors
    /// A `ParseError` naming the malformed field. Schemes other than RSASSA, RSAPSS and
    /// ECDSA (NULL, HMAC, ECDAA, SM2, ECSCHNORR) are `UnexpectedValue`: no AK uses them.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let at = r.offset();
        let sig_alg = r.u16_be("TPMT_SIGNATURE.sigAlg")?;
        let scheme = match sig_alg {
            alg_id::RSASSA => SigScheme::RsaSsa,
            alg_id::RSAPSS => SigScheme::RsaPss,
            alg_id::ECDSA => SigScheme::Ecdsa,
            other => return Err(Reader::unexpected("TPMT_SIGNATURE.sigAlg", at, other)),
        };
        let hash = HashAlg::read_be(&mut r, "TPMS_SIGNATURE_*.hash")?;
        let value = match scheme {
            SigScheme::RsaSsa | SigScheme::RsaPss => {
                SignatureValue::Rsa(r.tpm2b(MAX_RSA_KEY_BYTES, "TPMS_SIGNATURE_RSA.sig")?)
            }
            SigScheme::Ecdsa => {
                let r_value = r.tpm2b(MAX_ECC_KEY_BYTES, "TPMS_SIGNATURE_ECC.signatureR")?;
                let s_value = r.tpm2b(MAX_ECC_KEY_BYTES, "TPMS_SIGNATURE_ECC.signatureS")?;
                SignatureValue::Ecdsa {
                    r: r_value,
                    s: s_value,
                }
            }
        };
        r.finish("TPMT_SIGNATURE")?;
        Ok(Self {
            scheme,
            hash,
            value,
        })
    }
}
