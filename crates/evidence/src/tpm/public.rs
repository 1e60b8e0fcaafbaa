//! `TPMT_PUBLIC` / `TPM2B_PUBLIC` — TPM 2.0 Library Part 2, rev. 1.59, §12.2.4 and
//! §12.2.5 — for RSA and ECC keys, their object attributes (§8.3) and their TPM Name
//! (Part 1, §16: `nameAlg ‖ H_nameAlg(TPMT_PUBLIC)`).

use core::fmt;

use crate::alg::{EccCurve, HashAlg, MAX_DIGEST_SIZE, alg_id};
use crate::codec::{ParseError, Reader, Writer};

/// Largest RSA modulus accepted: 4096 bits (`MAX_RSA_KEY_BYTES` of TPMs that have it).
pub const MAX_RSA_KEY_BYTES: usize = 512;

/// Largest ECC coordinate accepted on the wire (`MAX_ECC_KEY_BYTES` for P-521); the curve
/// decides the exact size later.
pub const MAX_ECC_KEY_BYTES: usize = 66;

/// Largest `TPMT_PUBLIC` accepted (`sizeof(TPMT_PUBLIC)` with a 4096-bit key and a
/// SHA-512 policy is ~600 bytes).
pub const MAX_PUBLIC_SIZE: usize = 1024;

/// `TPMA_OBJECT` (Part 2, §8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectAttributes(pub u32);

impl ObjectAttributes {
    /// fixedTPM (bit 1): the key cannot leave this TPM.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// stClear (bit 2).
    pub const ST_CLEAR: u32 = 1 << 2;
    /// fixedParent (bit 4): the key cannot be re-parented.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// sensitiveDataOrigin (bit 5): the TPM generated the private part.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// userWithAuth (bit 6).
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// adminWithPolicy (bit 7).
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// noDA (bit 10).
    pub const NO_DA: u32 = 1 << 10;
    /// encryptedDuplication (bit 11).
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    /// restricted (bit 16): signs only TPM-generated structures (or decrypts only
    /// TPM-formatted data).
    pub const RESTRICTED: u32 = 1 << 16;
    /// decrypt (bit 17).
    pub const DECRYPT: u32 = 1 << 17;
    /// sign / encrypt (bit 18).
    pub const SIGN: u32 = 1 << 18;

    /// True when every bit of `mask` is set.
    #[must_use]
    pub fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// Names of the set attributes, in bit order (for humans).
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [(u32, &str); 11] = [
            (ObjectAttributes::FIXED_TPM, "fixedtpm"),
            (ObjectAttributes::ST_CLEAR, "stclear"),
            (ObjectAttributes::FIXED_PARENT, "fixedparent"),
            (
                ObjectAttributes::SENSITIVE_DATA_ORIGIN,
                "sensitivedataorigin",
            ),
            (ObjectAttributes::USER_WITH_AUTH, "userwithauth"),
            (ObjectAttributes::ADMIN_WITH_POLICY, "adminwithpolicy"),
            (ObjectAttributes::NO_DA, "noda"),
            (
                ObjectAttributes::ENCRYPTED_DUPLICATION,
                "encryptedduplication",
            ),
            (ObjectAttributes::RESTRICTED, "restricted"),
            (ObjectAttributes::DECRYPT, "decrypt"),
            (ObjectAttributes::SIGN, "sign"),
        ];
        NAMES
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl fmt::Display for ObjectAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x} ({})", self.0, self.names().join("|"))
    }
}

/// `TPMT_SYM_DEF_OBJECT` (Part 2, §11.1.7): the symmetric algorithm of a storage key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymDef {
    /// TPM_ALG_NULL (signing keys).
    Null,
    /// A block cipher with key size and mode, e.g. AES-128-CFB for EKs.
    Cipher {
        /// `TPMI_ALG_SYM_OBJECT`.
        alg: u16,
        /// Key size in bits.
        key_bits: u16,
        /// `TPMI_ALG_SYM_MODE`.
        mode: u16,
    },
}

/// A signing or encryption scheme with its hash (`TPMT_RSA_SCHEME`, `TPMT_ECC_SCHEME`,
/// `TPMT_KDF_SCHEME`; Part 2, §11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TPM_ALG_NULL: the key has no fixed scheme.
    Null,
    /// A scheme without parameters (RSAES).
    Bare(u16),
    /// A scheme with a hash (RSASSA, RSAPSS, OAEP, ECDSA, ECDH, MGF1, KDF…).
    Hashed {
        /// The scheme's `TPM_ALG_ID`.
        scheme: u16,
        /// Its hash, as the raw `TPMI_ALG_HASH` (may be one we do not support).
        hash: u16,
    },
    /// ECDAA, which also has a commit count.
    Ecdaa {
        /// The hash.
        hash: u16,
        /// The commit counter.
        count: u16,
    },
}

impl Scheme {
    fn read(r: &mut Reader<'_>, what: &'static str, allowed: &[u16]) -> Result<Self, ParseError> {
        let at = r.offset();
        let scheme = r.u16_be(what)?;
        if scheme == alg_id::NULL {
            return Ok(Self::Null);
        }
        if !allowed.contains(&scheme) {
            return Err(Reader::unexpected(what, at, scheme));
        }
        match scheme {
            alg_id::RSAES => Ok(Self::Bare(scheme)),
            alg_id::ECDAA => {
                let hash = r.u16_be("TPMS_SCHEME_ECDAA.hashAlg")?;
                let count = r.u16_be("TPMS_SCHEME_ECDAA.count")?;
                Ok(Self::Ecdaa { hash, count })
            }
            _ => Ok(Self::Hashed {
                scheme,
                hash: r.u16_be("TPMS_SCHEME_HASH.hashAlg")?,
            }),
        }
    }
}

/// The public key material.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// RSA modulus and public exponent.
    Rsa {
        /// Big-endian modulus without leading zeros beyond the key size.
        modulus: Vec<u8>,
        /// Public exponent (TPM's 0 already mapped to 65537).
        exponent: u32,
    },
    /// An ECC point on a NIST curve.
    Ecc {
        /// The curve.
        curve: EccCurve,
        /// X coordinate, `curve.coordinate_size()` bytes.
        x: Vec<u8>,
        /// Y coordinate, `curve.coordinate_size()` bytes.
        y: Vec<u8>,
    },
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { modulus, exponent } => write!(
                f,
                "Rsa({} bits, e={exponent})",
                modulus.len().saturating_mul(8)
            ),
            Self::Ecc { curve, .. } => write!(f, "Ecc({})", curve.name()),
        }
    }
}

impl PublicKey {
    /// Uncompressed SEC1 point `04 ‖ x ‖ y` (ECC only).
    #[must_use]
    pub fn ec_point(&self) -> Option<Vec<u8>> {
        match self {
            Self::Ecc { x, y, .. } => {
                let mut point =
                    Vec::with_capacity(x.len().saturating_add(y.len()).saturating_add(1));
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Some(point)
            }
            Self::Rsa { .. } => None,
        }
    }

    /// A short description: `RSA-2048` or `ECC NIST P-256`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa { modulus, .. } => format!("RSA-{}", modulus.len().saturating_mul(8)),
            Self::Ecc { curve, .. } => format!("ECC {}", curve.name()),
        }
    }
}

/// A parsed `TPMT_PUBLIC` for an RSA or ECC key. Owned: it is stored in enrolment records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Public {
    /// `nameAlg`.
    pub name_alg: HashAlg,
    /// `objectAttributes`.
    pub attributes: ObjectAttributes,
    /// `authPolicy`.
    pub auth_policy: Vec<u8>,
    /// `parameters.symmetric`.
    pub symmetric: SymDef,
    /// `parameters.scheme`.
    pub scheme: Scheme,
    /// ECC only: `parameters.kdf`.
    pub kdf: Scheme,
    /// The key.
    pub key: PublicKey,
    raw: Vec<u8>,
}

impl Public {
    /// Parses a bare `TPMT_PUBLIC`; trailing bytes are an error.
    ///
    /// # Errors
    /// A `ParseError` naming the malformed field; key types other than RSA and ECC and
    /// curves other than P-256/P-384 are `UnexpectedValue`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_PUBLIC_SIZE {
            return Err(ParseError::TooLarge {
                what: "TPMT_PUBLIC",
                offset: 0,
                len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                max: u64::try_from(MAX_PUBLIC_SIZE).unwrap_or(u64::MAX),
            });
        }
        let mut r = Reader::new(bytes);
        let public = Self::read(&mut r, bytes)?;
        r.finish("TPMT_PUBLIC")?;
        Ok(public)
    }

    /// Parses a `TPM2B_PUBLIC` (u16 size then `TPMT_PUBLIC`), the format of
    /// `tpm2_createak -u` and `tpm2_readpublic -o`.
    ///
    /// # Errors
    /// A `ParseError` for the size or the structure inside.
    pub fn parse_tpm2b(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let body = r.tpm2b(MAX_PUBLIC_SIZE, "TPM2B_PUBLIC.size")?;
        r.finish("TPM2B_PUBLIC")?;
        let mut inner = Reader::at(body, 2);
        let public = Self::read(&mut inner, body)?;
        inner.finish("TPMT_PUBLIC")?;
        Ok(public)
    }

    fn read(r: &mut Reader<'_>, raw: &[u8]) -> Result<Self, ParseError> {
        let type_at = r.offset();
        let key_type = r.u16_be("TPMT_PUBLIC.type")?;
        let name_alg = HashAlg::read_be(r, "TPMT_PUBLIC.nameAlg")?;
        let attributes = ObjectAttributes(r.u32_be("TPMT_PUBLIC.objectAttributes")?);
        let auth_policy = r.tpm2b(MAX_DIGEST_SIZE, "TPMT_PUBLIC.authPolicy")?.to_vec();
        let symmetric = read_sym_def(r)?;
        let (scheme, kdf, key) = match key_type {
            alg_id::RSA => {
                let scheme = Scheme::read(
                    r,
                    "TPMS_RSA_PARMS.scheme",
                    &[alg_id::RSASSA, alg_id::RSAPSS, alg_id::RSAES, alg_id::OAEP],
                )?;
                let bits_at = r.offset();
                let key_bits = r.u16_be("TPMS_RSA_PARMS.keyBits")?;
                if !matches!(key_bits, 1024 | 2048 | 3072 | 4096) {
                    return Err(Reader::unexpected(
                        "TPMS_RSA_PARMS.keyBits",
                        bits_at,
                        key_bits,
                    ));
                }
                let exp_at = r.offset();
                let exponent = match r.u32_be("TPMS_RSA_PARMS.exponent")? {
                    // Part 2, §12.2.3.5: zero means the default exponent 2^16 + 1.
                    0 => 65_537,
                    e if e % 2 == 1 && e > 1 => e,
                    e => return Err(Reader::unexpected("TPMS_RSA_PARMS.exponent", exp_at, e)),
                };
                let mod_at = r.offset();
                let modulus = r.tpm2b(MAX_RSA_KEY_BYTES, "TPMT_PUBLIC.unique.rsa")?;
                if modulus.len() != usize::from(key_bits / 8) {
                    return Err(Reader::unexpected(
                        "TPMT_PUBLIC.unique.rsa (size ≠ keyBits/8)",
                        mod_at,
                        u64::try_from(modulus.len()).unwrap_or(u64::MAX),
                    ));
                }
                // A keyBits-bit modulus has its top bit set; a smaller top byte means a
                // shorter key than declared (found by the `public` fuzz target).
                if let Some(top) = modulus.first().filter(|b| **b < 0x80) {
                    return Err(Reader::unexpected(
                        "TPMT_PUBLIC.unique.rsa (shorter than keyBits)",
                        mod_at,
                        *top,
                    ));
                }
                (
                    scheme,
                    Scheme::Null,
                    PublicKey::Rsa {
                        modulus: modulus.to_vec(),
                        exponent,
                    },
                )
            }
            alg_id::ECC => {
                let scheme = Scheme::read(
                    r,
                    "TPMS_ECC_PARMS.scheme",
                    &[
                        alg_id::ECDSA,
                        alg_id::ECDH,
                        alg_id::ECDAA,
                        alg_id::SM2,
                        alg_id::ECSCHNORR,
                        alg_id::ECMQV,
                    ],
                )?;
                let curve_at = r.offset();
                let curve_id = r.u16_be("TPMS_ECC_PARMS.curveID")?;
                let curve = EccCurve::from_tpm(curve_id).ok_or_else(|| {
                    Reader::unexpected("TPMS_ECC_PARMS.curveID", curve_at, curve_id)
                })?;
                let kdf = Scheme::read(
                    r,
                    "TPMS_ECC_PARMS.kdf",
                    &[
                        alg_id::MGF1,
                        alg_id::KDF1_SP800_56A,
                        alg_id::KDF2,
                        alg_id::KDF1_SP800_108,
                    ],
                )?;
                let x_at = r.offset();
                let x = r.tpm2b(MAX_ECC_KEY_BYTES, "TPMS_ECC_POINT.x")?;
                let y_at = r.offset();
                let y = r.tpm2b(MAX_ECC_KEY_BYTES, "TPMS_ECC_POINT.y")?;
                let size = curve.coordinate_size();
                // A zero-length point is a template, not a key; other sizes are malformed.
                for (coord, at, what) in
                    [(x, x_at, "TPMS_ECC_POINT.x"), (y, y_at, "TPMS_ECC_POINT.y")]
                {
                    if coord.len() != size {
                        return Err(Reader::unexpected(
                            what,
                            at,
                            u64::try_from(coord.len()).unwrap_or(u64::MAX),
                        ));
                    }
                }
                (
                    scheme,
                    kdf,
                    PublicKey::Ecc {
                        curve,
                        x: x.to_vec(),
                        y: y.to_vec(),
                    },
                )
            }
            other => return Err(Reader::unexpected("TPMT_PUBLIC.type", type_at, other)),
        };
        Ok(Self {
            name_alg,
            attributes,
            auth_policy,
            symmetric,
            scheme,
            kdf,
            key,
            raw: raw.to_vec(),
        })
    }

    /// The marshalled `TPMT_PUBLIC`, exactly as received.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The `TPM2B_PUBLIC` encoding (size prefix + `TPMT_PUBLIC`).
    #[must_use]
    pub fn to_tpm2b(&self) -> Vec<u8> {
        let mut w = Writer::new();
        // `raw` is at most MAX_PUBLIC_SIZE bytes, so it fits a u16.
        let _ = w.tpm2b(&self.raw, "TPM2B_PUBLIC");
        w.into_bytes()
    }

    /// The key's TPM Name: `nameAlg ‖ H_nameAlg(TPMT_PUBLIC)` (Part 1, §16).
    #[must_use]
    pub fn name(&self) -> Vec<u8> {
        let digest = self.name_alg.hash(&self.raw);
        let mut name = Vec::with_capacity(digest.as_bytes().len().saturating_add(2));
        name.extend_from_slice(&self.name_alg.tpm_id().to_be_bytes());
        name.extend_from_slice(digest.as_bytes());
        name
    }
}

fn read_sym_def(r: &mut Reader<'_>) -> Result<SymDef, ParseError> {
    let at = r.offset();
    let alg = r.u16_be("TPMT_SYM_DEF_OBJECT.algorithm")?;
    match alg {
        alg_id::NULL => Ok(SymDef::Null),
        alg_id::AES | alg_id::SM4 | alg_id::CAMELLIA => {
            let key_bits = r.u16_be("TPMT_SYM_DEF_OBJECT.keyBits")?;
            let mode = r.u16_be("TPMT_SYM_DEF_OBJECT.mode")?;
            Ok(SymDef::Cipher {
                alg,
                key_bits,
                mode,
            })
        }
        other => Err(Reader::unexpected(
            "TPMT_SYM_DEF_OBJECT.algorithm",
            at,
            other,
        )),
    }
}
