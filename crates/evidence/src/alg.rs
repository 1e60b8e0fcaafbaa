//! Algorithm identifiers (TPM 2.0 Library Part 2, §6.3 `TPM_ALG_ID`, §6.4 `TPM_ECC_CURVE`),
//! the hash algorithms we accept, and digests.

use core::fmt;

use aws_lc_rs::digest;

use crate::codec::{ParseError, Reader};

/// `TPM_ALG_ID` values this crate knows (TPM 2.0 Library Part 2, §6.3, Table 9).
pub mod alg_id {
    /// TPM_ALG_RSA
    pub const RSA: u16 = 0x0001;
    /// TPM_ALG_SHA1
    pub const SHA1: u16 = 0x0004;
    /// TPM_ALG_HMAC
    pub const HMAC: u16 = 0x0005;
    /// TPM_ALG_AES
    pub const AES: u16 = 0x0006;
    /// TPM_ALG_MGF1
    pub const MGF1: u16 = 0x0007;
    /// TPM_ALG_KEYEDHASH
    pub const KEYEDHASH: u16 = 0x0008;
    /// TPM_ALG_XOR
    pub const XOR: u16 = 0x000A;
    /// TPM_ALG_SHA256
    pub const SHA256: u16 = 0x000B;
    /// TPM_ALG_SHA384
    pub const SHA384: u16 = 0x000C;
    /// TPM_ALG_SHA512
    pub const SHA512: u16 = 0x000D;
    /// TPM_ALG_NULL
    pub const NULL: u16 = 0x0010;
    /// TPM_ALG_SM3_256
    pub const SM3_256: u16 = 0x0012;
    /// TPM_ALG_SM4
    pub const SM4: u16 = 0x0013;
    /// TPM_ALG_RSASSA
    pub const RSASSA: u16 = 0x0014;
    /// TPM_ALG_RSAES
    pub const RSAES: u16 = 0x0015;
    /// TPM_ALG_RSAPSS
    pub const RSAPSS: u16 = 0x0016;
    /// TPM_ALG_OAEP
    pub const OAEP: u16 = 0x0017;
    /// TPM_ALG_ECDSA
    pub const ECDSA: u16 = 0x0018;
    /// TPM_ALG_ECDH
    pub const ECDH: u16 = 0x0019;
    /// TPM_ALG_ECDAA
    pub const ECDAA: u16 = 0x001A;
    /// TPM_ALG_SM2
    pub const SM2: u16 = 0x001B;
    /// TPM_ALG_ECSCHNORR
    pub const ECSCHNORR: u16 = 0x001C;
    /// TPM_ALG_ECMQV
    pub const ECMQV: u16 = 0x001D;
    /// TPM_ALG_KDF1_SP800_56A
    pub const KDF1_SP800_56A: u16 = 0x0020;
    /// TPM_ALG_KDF2
    pub const KDF2: u16 = 0x0021;
    /// TPM_ALG_KDF1_SP800_108
    pub const KDF1_SP800_108: u16 = 0x0022;
    /// TPM_ALG_ECC
    pub const ECC: u16 = 0x0023;
    /// TPM_ALG_SYMCIPHER
    pub const SYMCIPHER: u16 = 0x0025;
    /// TPM_ALG_CAMELLIA
    pub const CAMELLIA: u16 = 0x0026;
    /// TPM_ALG_CFB
    pub const CFB: u16 = 0x0043;
}

/// The largest digest any supported bank produces (SHA-512), `sizeof(TPMU_HA)`.
pub const MAX_DIGEST_SIZE: usize = 64;

/// A hash algorithm for PCR banks, quotes and key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// SHA-1: legacy; refused for signatures unless a caller explicitly allows it.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Every supported algorithm, weakest first.
    pub const ALL: [Self; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// The algorithm for a `TPM_ALG_ID`, or `None` if it is not a hash we support.
    #[must_use]
    pub fn from_tpm(id: u16) -> Option<Self> {
        match id {
            alg_id::SHA1 => Some(Self::Sha1),
            alg_id::SHA256 => Some(Self::Sha256),
            alg_id::SHA384 => Some(Self::Sha384),
            alg_id::SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Reads a big-endian `TPMI_ALG_HASH`.
    ///
    /// # Errors
    /// `UnexpectedValue` for anything but SHA-1/256/384/512.
    pub fn read_be(r: &mut Reader<'_>, what: &'static str) -> Result<Self, ParseError> {
        let at = r.offset();
        let id = r.u16_be(what)?;
        Self::from_tpm(id).ok_or_else(|| Reader::unexpected(what, at, id))
    }

    /// Reads a little-endian algorithm id (event logs).
    ///
    /// # Errors
    /// `UnexpectedValue` for anything but SHA-1/256/384/512.
    pub fn read_le(r: &mut Reader<'_>, what: &'static str) -> Result<Self, ParseError> {
        let at = r.offset();
        let id = r.u16_le(what)?;
        Self::from_tpm(id).ok_or_else(|| Reader::unexpected(what, at, id))
    }

    /// The `TPM_ALG_ID`.
    #[must_use]
    pub fn tpm_id(self) -> u16 {
        match self {
            Self::Sha1 => alg_id::SHA1,
            Self::Sha256 => alg_id::SHA256,
            Self::Sha384 => alg_id::SHA384,
            Self::Sha512 => alg_id::SHA512,
        }
    }

    /// Digest size in bytes.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The lowercase name used in tpm2-tools PCR lists and in our APIs (`sha256`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Parses a name as [`HashAlg::name`] writes it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn ring_alg(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    /// Hashes `data`.
    #[must_use]
    pub fn hash(self, data: &[u8]) -> Digest {
        Digest::from_ring(self, &digest::digest(self.ring_alg(), data))
    }

    /// Hashes the concatenation of `parts`.
    #[must_use]
    pub fn hash_parts(self, parts: &[&[u8]]) -> Digest {
        let mut ctx = digest::Context::new(self.ring_alg());
        for part in parts {
            ctx.update(part);
        }
        Digest::from_ring(self, &ctx.finish())
    }

    /// `H(old ‖ new)`: the PCR extend operation (TPM 2.0 Library Part 1, §17.2).
    #[must_use]
    pub fn extend(self, old: &Digest, new: &[u8]) -> Digest {
        self.hash_parts(&[old.as_bytes(), new])
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest of one of the supported hash algorithms; always exactly `alg.size()` bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    alg: HashAlg,
    buf: [u8; MAX_DIGEST_SIZE],
}

impl Digest {
    /// A digest from bytes whose length must be `alg.size()`.
    #[must_use]
    pub fn new(alg: HashAlg, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != alg.size() {
            return None;
        }
        let mut buf = [0u8; MAX_DIGEST_SIZE];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self { alg, buf })
    }

    /// Reads `alg.size()` bytes.
    ///
    /// # Errors
    /// `Truncated` when the input is shorter.
    pub fn read(r: &mut Reader<'_>, alg: HashAlg, what: &'static str) -> Result<Self, ParseError> {
        let bytes = r.take(alg.size(), what)?;
        let mut buf = [0u8; MAX_DIGEST_SIZE];
        if let Some(dst) = buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        Ok(Self { alg, buf })
    }

    /// All zeros: the reset value of most PCRs.
    #[must_use]
    pub fn zero(alg: HashAlg) -> Self {
        Self {
            alg,
            buf: [0u8; MAX_DIGEST_SIZE],
        }
    }

    /// All ones: the value of DRTM PCRs 17–22 before a dynamic launch.
    #[must_use]
    pub fn ones(alg: HashAlg) -> Self {
        let mut d = Self::zero(alg);
        if let Some(dst) = d.buf.get_mut(..alg.size()) {
            dst.fill(0xff);
        }
        d
    }

    /// The hash algorithm.
    #[must_use]
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The digest bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.alg.size()).unwrap_or(&[])
    }

    /// Lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex_string(self.as_bytes())
    }

    /// Parses lowercase or uppercase hex of exactly `alg.size()` bytes.
    #[must_use]
    pub fn from_hex(alg: HashAlg, text: &str) -> Option<Self> {
        let text = text.strip_prefix("0x").unwrap_or(text);
        Self::new(alg, &parse_hex(text)?)
    }

    fn from_ring(alg: HashAlg, d: &digest::Digest) -> Self {
        let mut buf = [0u8; MAX_DIGEST_SIZE];
        let bytes = d.as_ref();
        if let Some(dst) = buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        Self { alg, buf }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg, self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Lowercase hex of `bytes`.
#[must_use]
pub fn hex_string(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            let c = HEX.get(usize::from(nibble)).copied().unwrap_or(b'?');
            out.push(char::from(c));
        }
    }
    out
}

/// Parses hex (either case, even length) into bytes.
#[must_use]
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((hex_val(*hi)? << 4) | hex_val(*lo)?),
            _ => None,
        })
        .collect()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => c.checked_sub(b'0'),
        b'a'..=b'f' => c.checked_sub(b'a' - 10),
        b'A'..=b'F' => c.checked_sub(b'A' - 10),
        _ => None,
    }
}

/// A NIST curve (`TPM_ECC_CURVE`, TPM 2.0 Library Part 2, §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EccCurve {
    /// TPM_ECC_NIST_P256 (0x0003).
    P256,
    /// TPM_ECC_NIST_P384 (0x0004).
    P384,
}

impl EccCurve {
    /// The curve for a `TPM_ECC_CURVE` value.
    #[must_use]
    pub fn from_tpm(id: u16) -> Option<Self> {
        match id {
            0x0003 => Some(Self::P256),
            0x0004 => Some(Self::P384),
            _ => None,
        }
    }

    /// The `TPM_ECC_CURVE` value.
    #[must_use]
    pub fn tpm_id(self) -> u16 {
        match self {
            Self::P256 => 0x0003,
            Self::P384 => 0x0004,
        }
    }

    /// Size of a coordinate or scalar in bytes.
    #[must_use]
    pub fn coordinate_size(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    /// Name used in output (`NIST P-256`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "NIST P-256",
            Self::P384 => "NIST P-384",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(parse_hex("00ffA1").unwrap(), vec![0, 0xff, 0xa1]);
        assert_eq!(hex_string(&[0, 0xff, 0xa1]), "00ffa1");
        assert!(parse_hex("abc").is_none());
        assert!(parse_hex("zz").is_none());
    }

    #[test]
    fn extend_is_hash_of_concatenation() {
        let zero = Digest::zero(HashAlg::Sha256);
        let d = HashAlg::Sha256.extend(&zero, &[1u8; 32]);
        let mut cat = vec![0u8; 32];
        cat.extend_from_slice(&[1u8; 32]);
        assert_eq!(d, HashAlg::Sha256.hash(&cat));
    }

    #[test]
    fn digest_length_is_enforced() {
        assert!(Digest::new(HashAlg::Sha256, &[0u8; 20]).is_none());
        assert!(Digest::new(HashAlg::Sha1, &[0u8; 20]).is_some());
    }
}
