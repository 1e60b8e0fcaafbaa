//! The TPM's key derivation functions — TPM 2.0 Library Part 1, rev. 1.59, §11.4.10.2
//! (KDFa, SP 800-108 counter mode with HMAC) and §11.4.10.3 (KDFe, SP 800-56A
//! concatenation KDF).

use aws_lc_rs::hmac;

use crate::alg::HashAlg;

pub(crate) fn hmac_alg(alg: HashAlg) -> hmac::Algorithm {
    match alg {
        HashAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => hmac::HMAC_SHA256,
        HashAlg::Sha384 => hmac::HMAC_SHA384,
        HashAlg::Sha512 => hmac::HMAC_SHA512,
    }
}

/// `KDFa(hashAlg, key, label, contextU, contextV, bits)` for a whole number of bytes:
/// `HMAC(key, [i]₃₂ ‖ label ‖ 00 ‖ contextU ‖ contextV ‖ [bits]₃₂)` for i = 1, 2, …
/// `label` is given without its terminating zero, which this function adds.
pub(crate) fn kdfa(
    alg: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bytes: usize,
) -> Vec<u8> {
    let key = hmac::Key::new(hmac_alg(alg), key);
    let bits = u32::try_from(bytes.saturating_mul(8)).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(bytes.saturating_add(alg.size()));
    let mut counter: u32 = 0;
    while out.len() < bytes {
        counter = counter.saturating_add(1);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label);
        ctx.update(&[0]);
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
    }
    out.truncate(bytes);
    out
}

/// `KDFe(hashAlg, Z, use, partyUInfo, partyVInfo, bits)` for a whole number of bytes:
/// `H([i]₃₂ ‖ Z ‖ use ‖ 00 ‖ partyU ‖ partyV)` for i = 1, 2, …
pub(crate) fn kdfe(
    alg: HashAlg,
    z: &[u8],
    label: &[u8],
    party_u: &[u8],
    party_v: &[u8],
    bytes: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.saturating_add(alg.size()));
    let mut counter: u32 = 0;
    while out.len() < bytes {
        counter = counter.saturating_add(1);
        let d = alg.hash_parts(&[&counter.to_be_bytes(), z, label, &[0], party_u, party_v]);
        out.extend_from_slice(d.as_bytes());
    }
    out.truncate(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdfa_output_length_and_determinism() {
        let a = kdfa(HashAlg::Sha256, b"seed", b"STORAGE", b"name", b"", 16);
        let b = kdfa(HashAlg::Sha256, b"seed", b"STORAGE", b"name", b"", 16);
        assert_eq!(a.len(), 16);
        assert_eq!(a, b);
        let long = kdfa(HashAlg::Sha256, b"seed", b"STORAGE", b"name", b"", 48);
        assert_eq!(long.len(), 48);
        // A different requested size changes every block ([bits] is hashed in).
        assert_ne!(long.get(..16), Some(a.as_slice()));
        assert_ne!(
            kdfa(HashAlg::Sha256, b"seed", b"INTEGRITY", b"name", b"", 16),
            a
        );
    }

    #[test]
    fn kdfe_first_block_is_hash_of_inputs() {
        let out = kdfe(HashAlg::Sha256, b"Z", b"IDENTITY", b"U", b"V", 32);
        let want = HashAlg::Sha256.hash(b"\x00\x00\x00\x01ZIDENTITY\x00UV");
        assert_eq!(out, want.as_bytes());
    }
}
