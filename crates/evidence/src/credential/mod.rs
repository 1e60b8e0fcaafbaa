//! `make_credential`: the verifier's half of `TPM2_MakeCredential` / `TPM2_ActivateCredential`
//! (TPM 2.0 Library Part 1, rev. 1.59, §24 "Credential Protection"; Part 3, §12.6), done
//! in software with the EK's public key. Only the TPM holding both the EK and the key
//! named `ak_name` can recover the secret, which proves the AK lives beside the EK.
//!
//! - seed: RSA EKs — a random seed of the nameAlg's digest size, RSA-OAEP encrypted
//!   with label `"IDENTITY\0"` (Part 1, Annex B.10.3); ECC EKs — ECDH with an ephemeral key
//!   on the EK's curve and `seed = KDFe(nameAlg, Z, "IDENTITY", Qe.x, Qek.x)` (Annex C.6.4).
//! - `symKey = KDFa(nameAlg, seed, "STORAGE", name, ∅, keyBits)`; the credential
//!   (`TPM2B_DIGEST`) is encrypted with the EK's symmetric cipher (AES-CFB, IV 0).
//! - `HMACkey = KDFa(nameAlg, seed, "INTEGRITY", ∅, ∅, digest bits)`;
//!   `outerHMAC = HMAC(HMACkey, encIdentity ‖ name)`.

mod kdf;

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepPublicEncryptingKey, PublicEncryptingKey,
};
use thiserror::Error;

use crate::alg::{EccCurve, HashAlg, alg_id};
use crate::codec::Writer;
use crate::spki::to_spki_der;
use crate::tpm::public::{ObjectAttributes, Public, PublicKey, SymDef};

/// The `tpm2_makecredential` output file's magic and version (tpm2-tools `files.c`).
const TPM2_TOOLS_CREDENTIAL_MAGIC: u32 = 0xBADC_C0DE;

/// Why a credential could not be made for this EK.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The EK is not a restricted decryption (storage) key.
    #[error("endorsement key is not a restricted decryption key (attributes {0})")]
    EkNotStorageKey(ObjectAttributes),
    /// The EK's symmetric algorithm is not AES-128/256-CFB.
    #[error("endorsement key's symmetric algorithm is not AES-CFB")]
    UnsupportedSymmetric,
    /// The secret is empty or longer than the EK nameAlg's digest.
    #[error("credential secret is {len} bytes; 1 to {max} are allowed")]
    SecretSize {
        /// Its length.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// The AK name is not `nameAlg ‖ digest`.
    #[error("AK name is malformed")]
    BadName,
    /// The crypto library refused an operation (a malformed EK key, typically).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

/// A credential blob for `TPM2_ActivateCredential`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The body of `TPM2B_ID_OBJECT`: `TPM2B_DIGEST outerHMAC ‖ encIdentity`.
    pub id_object: Vec<u8>,
    /// The body of `TPM2B_ENCRYPTED_SECRET`: the OAEP-encrypted seed (RSA) or the
    /// marshalled ephemeral `TPMS_ECC_POINT` (ECC).
    pub encrypted_secret: Vec<u8>,
}

impl Credential {
    /// The file `tpm2_makecredential -o` writes and `tpm2_activatecredential -i` reads:
    /// magic `0xBADCC0DE`, version 1, `TPM2B_ID_OBJECT`, `TPM2B_ENCRYPTED_SECRET`.
    #[must_use]
    pub fn to_tpm2_tools_file(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32_be(TPM2_TOOLS_CREDENTIAL_MAGIC).u32_be(1);
        // Both bodies are bounded by make_credential far below u16::MAX.
        let _ = w.tpm2b(&self.id_object, "TPM2B_ID_OBJECT");
        let _ = w.tpm2b(&self.encrypted_secret, "TPM2B_ENCRYPTED_SECRET");
        w.into_bytes()
    }
}

/// Makes a credential that only the TPM holding `ek` and the object named `ak_name` can
/// activate to recover `secret`.
///
/// # Errors
/// A `CredentialError` when the EK is not a storage key with AES-CFB, the secret size is
/// wrong, or the EK's key is malformed.
pub fn make_credential(
    ek: &Public,
    ak_name: &[u8],
    secret: &[u8],
) -> Result<Credential, CredentialError> {
    let name_alg = ek.name_alg;
    let storage = ObjectAttributes::RESTRICTED | ObjectAttributes::DECRYPT;
    if !ek.attributes.has(storage) || ek.attributes.has(ObjectAttributes::SIGN) {
        return Err(CredentialError::EkNotStorageKey(ek.attributes));
    }
    let sym_bytes = match ek.symmetric {
        SymDef::Cipher {
            alg: alg_id::AES,
            key_bits: 128,
            mode: alg_id::CFB,
        } => 16,
        SymDef::Cipher {
            alg: alg_id::AES,
            key_bits: 256,
            mode: alg_id::CFB,
        } => 32,
        _ => return Err(CredentialError::UnsupportedSymmetric),
    };
    if secret.is_empty() || secret.len() > name_alg.size() {
        return Err(CredentialError::SecretSize {
            len: secret.len(),
            max: name_alg.size(),
        });
    }
    if ak_name.len() < 2 {
        return Err(CredentialError::BadName);
    }
    let (seed, encrypted_secret) = match &ek.key {
        PublicKey::Rsa { .. } => rsa_seed(ek, name_alg)?,
        PublicKey::Ecc { curve, .. } => ecc_seed(ek, *curve, name_alg)?,
    };

    let sym_key = kdf::kdfa(name_alg, &seed, b"STORAGE", ak_name, &[], sym_bytes);
    let mut enc_identity = Writer::new();
    enc_identity
        .tpm2b(secret, "TPM2B_DIGEST")
        .map_err(|_| CredentialError::SecretSize {
            len: secret.len(),
            max: name_alg.size(),
        })?;
    let mut enc_identity = enc_identity.into_bytes();
    let cipher = if sym_bytes == 16 { &AES_128 } else { &AES_256 };
    let key =
        UnboundCipherKey::new(cipher, &sym_key).map_err(|_| CredentialError::Crypto("AES key"))?;
    let key = EncryptingKey::cfb128(key).map_err(|_| CredentialError::Crypto("AES-CFB key"))?;
    key.less_safe_encrypt(
        &mut enc_identity,
        EncryptionContext::Iv128(FixedLength::from([0u8; 16])),
    )
    .map_err(|_| CredentialError::Crypto("AES-CFB encrypt"))?;

    let hmac_key = kdf::kdfa(name_alg, &seed, b"INTEGRITY", &[], &[], name_alg.size());
    let mut mac = hmac::Context::with_key(&hmac::Key::new(kdf::hmac_alg(name_alg), &hmac_key));
    mac.update(&enc_identity);
    mac.update(ak_name);
    let outer_hmac = mac.sign();

    let mut id_object = Writer::new();
    id_object
        .tpm2b(outer_hmac.as_ref(), "TPM2B_DIGEST")
        .map_err(|_| CredentialError::Crypto("HMAC size"))?;
    id_object.bytes(&enc_identity);
    Ok(Credential {
        id_object: id_object.into_bytes(),
        encrypted_secret,
    })
}

fn rsa_seed(ek: &Public, name_alg: HashAlg) -> Result<(Vec<u8>, Vec<u8>), CredentialError> {
    let mut seed = vec![0u8; name_alg.size()];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| CredentialError::Crypto("random seed"))?;
    let key = PublicEncryptingKey::from_der(&to_spki_der(&ek.key))
        .map_err(|_| CredentialError::Crypto("RSA EK public key"))?;
    let key =
        OaepPublicEncryptingKey::new(key).map_err(|_| CredentialError::Crypto("RSA-OAEP key"))?;
    let oaep = match name_alg {
        HashAlg::Sha1 => &OAEP_SHA1_MGF1SHA1,
        HashAlg::Sha256 => &OAEP_SHA256_MGF1SHA256,
        HashAlg::Sha384 => &OAEP_SHA384_MGF1SHA384,
        HashAlg::Sha512 => &OAEP_SHA512_MGF1SHA512,
    };
    let mut out = vec![0u8; key.ciphertext_size()];
    let encrypted = key
        .encrypt(oaep, &seed, &mut out, Some(b"IDENTITY\0"))
        .map_err(|_| CredentialError::Crypto("RSA-OAEP encrypt"))?;
    let encrypted = encrypted.to_vec();
    Ok((seed, encrypted))
}

fn ecc_seed(
    ek: &Public,
    curve: EccCurve,
    name_alg: HashAlg,
) -> Result<(Vec<u8>, Vec<u8>), CredentialError> {
    let alg = match curve {
        EccCurve::P256 => &agreement::ECDH_P256,
        EccCurve::P384 => &agreement::ECDH_P384,
    };
    let ek_point = ek
        .key
        .ec_point()
        .ok_or(CredentialError::Crypto("ECC EK point"))?;
    let PublicKey::Ecc { x: ek_x, .. } = &ek.key else {
        return Err(CredentialError::Crypto("ECC EK point"));
    };
    let rng = SystemRandom::new();
    let ephemeral = EphemeralPrivateKey::generate(alg, &rng)
        .map_err(|_| CredentialError::Crypto("ephemeral ECC key"))?;
    let public = ephemeral
        .compute_public_key()
        .map_err(|_| CredentialError::Crypto("ephemeral ECC public key"))?;
    let size = curve.coordinate_size();
    // Uncompressed SEC1: 04 ‖ x ‖ y.
    let point = public.as_ref();
    let (e_x, e_y) = point
        .get(1..)
        .and_then(|xy| xy.split_at_checked(size))
        .ok_or(CredentialError::Crypto("ephemeral ECC public key"))?;
    let z = agreement::agree_ephemeral(
        ephemeral,
        UnparsedPublicKey::new(alg, &ek_point),
        CredentialError::Crypto("ECDH with the EK"),
        |z| Ok(z.to_vec()),
    )?;
    let seed = kdf::kdfe(name_alg, &z, b"IDENTITY", e_x, ek_x, name_alg.size());
    let mut secret = Writer::new();
    secret
        .tpm2b(e_x, "TPMS_ECC_POINT.x")
        .map_err(|_| CredentialError::Crypto("point size"))?;
    secret
        .tpm2b(e_y, "TPMS_ECC_POINT.y")
        .map_err(|_| CredentialError::Crypto("point size"))?;
    Ok((seed, secret.into_bytes()))
}
