//! A software "attestation key": its `TPMT_PUBLIC` is laid out exactly like a TPM AK's and
//! it signs `TPMS_ATTEST` bodies with the TPM's signature encodings. It exists so tests
//! can sign quotes a real TPM would refuse to produce (wrong magic, wrong type) and so a
//! load test can simulate a fleet. It is labelled as software everywhere it is used.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use trustpool_evidence::alg::alg_id;
use trustpool_evidence::{HashAlg, ObjectAttributes, Public, Writer};

/// The attributes `tpm2_createak` gives an AK: fixedTPM, fixedParent,
/// sensitiveDataOrigin, userWithAuth, restricted, sign (0x00050072).
pub const AK_ATTRIBUTES: u32 = ObjectAttributes::FIXED_TPM
    | ObjectAttributes::FIXED_PARENT
    | ObjectAttributes::SENSITIVE_DATA_ORIGIN
    | ObjectAttributes::USER_WITH_AUTH
    | ObjectAttributes::RESTRICTED
    | ObjectAttributes::SIGN;

enum Pair {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
}

/// A software signing key with a TPM-shaped public area.
pub struct SoftAk {
    pair: Pair,
    /// `objectAttributes` written into the public area (change to test attribute checks).
    pub attributes: u32,
    /// Scheme hash written into the public area and used to sign.
    pub hash: HashAlg,
}

impl SoftAk {
    /// A fresh RSA-2048 RSASSA-SHA256 key.
    #[must_use]
    pub fn rsa2048() -> Self {
        Self {
            pair: Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA keygen")),
            attributes: AK_ATTRIBUTES,
            hash: HashAlg::Sha256,
        }
    }

    /// A fresh ECC P-256 ECDSA-SHA256 key.
    #[must_use]
    pub fn p256() -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("ECDSA keygen");
        Self {
            pair: Pair::P256(pair),
            attributes: AK_ATTRIBUTES,
            hash: HashAlg::Sha256,
        }
    }

    /// The marshalled `TPMT_PUBLIC` (TPM 2.0 Library Part 2, §12.2.4).
    #[must_use]
    pub fn public_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let modulus = pair
                    .public_key()
                    .modulus()
                    .big_endian_without_leading_zero()
                    .to_vec();
                w.u16_be(alg_id::RSA)
                    .u16_be(alg_id::SHA256)
                    .u32_be(self.attributes);
                w.tpm2b(&[], "authPolicy").expect("empty");
                w.u16_be(alg_id::NULL); // symmetric
                w.u16_be(alg_id::RSASSA).u16_be(self.hash.tpm_id()); // scheme
                w.u16_be(2048).u32_be(0); // keyBits, exponent (0 = 65537)
                w.tpm2b(&modulus, "unique.rsa").expect("256 bytes");
            }
            Pair::P256(pair) => {
                let point = pair.public_key().as_ref();
                let (x, y) = point[1..].split_at(32);
                w.u16_be(alg_id::ECC)
                    .u16_be(alg_id::SHA256)
                    .u32_be(self.attributes);
                w.tpm2b(&[], "authPolicy").expect("empty");
                w.u16_be(alg_id::NULL); // symmetric
                w.u16_be(alg_id::ECDSA).u16_be(self.hash.tpm_id()); // scheme
                w.u16_be(0x0003); // NIST P-256
                w.u16_be(alg_id::NULL); // kdf
                w.tpm2b(x, "x").expect("32").tpm2b(y, "y").expect("32");
            }
        }
        w.into_bytes()
    }

    /// The parsed public area.
    #[must_use]
    pub fn public(&self) -> Public {
        Public::parse(&self.public_bytes()).expect("our own TPMT_PUBLIC parses")
    }

    /// Signs `message` and returns a marshalled `TPMT_SIGNATURE` (Part 2, §11.3.4).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let enc = match self.hash {
                    HashAlg::Sha384 => &signature::RSA_PKCS1_SHA384,
                    HashAlg::Sha512 => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(enc, &SystemRandom::new(), message, &mut sig)
                    .expect("RSA sign");
                w.u16_be(alg_id::RSASSA).u16_be(self.hash.tpm_id());
                w.tpm2b(&sig, "sig").expect("256 bytes");
            }
            Pair::P256(pair) => {
                let sig = pair
                    .sign(&SystemRandom::new(), message)
                    .expect("ECDSA sign");
                let (r, s) = sig.as_ref().split_at(32);
                w.u16_be(alg_id::ECDSA).u16_be(self.hash.tpm_id());
                w.tpm2b(r, "r").expect("32").tpm2b(s, "s").expect("32");
            }
        }
        w.into_bytes()
    }
}
