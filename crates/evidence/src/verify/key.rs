//! The attestation key a verifier trusts: taken from the enrolment record, checked once,
//! prepared once for fast signature checks.

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};

use crate::alg::{EccCurve, HashAlg};
use crate::spki;
use crate::tpm::public::{ObjectAttributes, Public, PublicKey, Scheme};
use crate::tpm::signature::{SigScheme, Signature, SignatureValue};
use crate::verify::VerifyError;

/// Which algorithms a verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyOptions {
    /// Accept SHA-1 for the AK's scheme (and so for the quote's signature and PCR
    /// digest). Off by default: SHA-1 is broken for collision resistance.
    pub allow_sha1: bool,
}

/// Where the key's properties come from, and so what was checked about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProvenance {
    /// A `TPMT_PUBLIC`: attributes (restricted, sign, fixedTPM, fixedParent,
    /// sensitiveDataOrigin, not decrypt) and the signing scheme were checked.
    TpmPublic,
    /// A bare key (PEM/DER): nothing about where it lives is known. Only for tools that
    /// check tpm2-tools output; the attestation server never builds one.
    BareKey,
}

/// An attestation key ready to verify quotes.
pub struct AttestationKey {
    key: PublicKey,
    public: Option<Public>,
    scheme: Option<(SigScheme, HashAlg)>,
    prepared: Option<ParsedPublicKey>,
    options: VerifyOptions,
}

impl core::fmt::Debug for AttestationKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AttestationKey")
            .field("key", &self.key)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

const AK_REQUIRED: [(u32, &str); 5] = [
    (ObjectAttributes::RESTRICTED, "restricted"),
    (ObjectAttributes::SIGN, "sign"),
    (ObjectAttributes::FIXED_TPM, "fixedTPM"),
    (ObjectAttributes::FIXED_PARENT, "fixedParent"),
    (
        ObjectAttributes::SENSITIVE_DATA_ORIGIN,
        "sensitiveDataOrigin",
    ),
];

impl AttestationKey {
    /// Checks an AK's public area and prepares it. The `TPMT_PUBLIC` must come from the
    /// enrolment record (bound to the EK by credential activation), never from the
    /// evidence being verified.
    ///
    /// # Errors
    /// `AkAttributeMissing`/`AkAttributeForbidden` for wrong attributes,
    /// `AkSchemeNotFixed` without an RSASSA/RSAPSS/ECDSA scheme, `HashNotAllowed` for
    /// SHA-1 unless allowed, `AkNameAlgNotAllowed` for a SHA-1 Name unless allowed,
    /// `AkKeyTooSmall` below RSA-2048.
    pub fn new(public: Public, options: VerifyOptions) -> Result<Self, VerifyError> {
        for (bit, name) in AK_REQUIRED {
            if !public.attributes.has(bit) {
                return Err(VerifyError::AkAttributeMissing(name));
            }
        }
        if public.attributes.has(ObjectAttributes::DECRYPT) {
            return Err(VerifyError::AkAttributeForbidden("decrypt"));
        }
        // The credential binds the EK to the AK's Name (TPM 2.0 Part 1 §24: MakeCredential
        // over `objectName`); a SHA-1 Name leaves that binding to a broken hash.
        if public.name_alg == HashAlg::Sha1 && !options.allow_sha1 {
            return Err(VerifyError::AkNameAlgNotAllowed(public.name_alg));
        }
        let scheme = match (public.scheme, &public.key) {
            (Scheme::Hashed { scheme, hash }, PublicKey::Rsa { .. })
                if scheme == SigScheme::RsaSsa.tpm_id() =>
            {
                (SigScheme::RsaSsa, hash)
            }
            (Scheme::Hashed { scheme, hash }, PublicKey::Rsa { .. })
                if scheme == SigScheme::RsaPss.tpm_id() =>
            {
                (SigScheme::RsaPss, hash)
            }
            (Scheme::Hashed { scheme, hash }, PublicKey::Ecc { .. })
                if scheme == SigScheme::Ecdsa.tpm_id() =>
            {
                (SigScheme::Ecdsa, hash)
            }
            _ => return Err(VerifyError::AkSchemeNotFixed),
        };
        let hash = HashAlg::from_tpm(scheme.1).ok_or(VerifyError::AkSchemeNotFixed)?;
        let key = public.key.clone();
        let mut ak = Self {
            key,
            public: Some(public),
            scheme: Some((scheme.0, hash)),
            prepared: None,
            options,
        };
        let alg = ak.algorithm(scheme.0, hash)?;
        ak.prepared = Some(
            ParsedPublicKey::new(alg, ak.key_bytes()).map_err(|_| VerifyError::SignatureInvalid)?,
        );
        Ok(ak)
    }

    /// A bare key from PEM/DER. Its attributes are unknown ([`KeyProvenance::BareKey`]);
    /// the signature's own scheme is used.
    #[must_use]
    pub fn from_bare_key(key: PublicKey, options: VerifyOptions) -> Self {
        Self {
            key,
            public: None,
            scheme: None,
            prepared: None,
            options,
        }
    }

    /// What is known about this key.
    #[must_use]
    pub fn provenance(&self) -> KeyProvenance {
        if self.public.is_some() {
            KeyProvenance::TpmPublic
        } else {
            KeyProvenance::BareKey
        }
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The `TPMT_PUBLIC`, when the key came with one.
    #[must_use]
    pub fn public(&self) -> Option<&Public> {
        self.public.as_ref()
    }

    /// Checks `signature` over `message`; returns the hash the signature used.
    pub(crate) fn check_signature(
        &self,
        message: &[u8],
        signature: &Signature<'_>,
    ) -> Result<HashAlg, VerifyError> {
        if let Some((scheme, hash)) = self.scheme
            && (scheme, hash) != (signature.scheme, signature.hash)
        {
            return Err(VerifyError::SchemeMismatch {
                expected: format!("{}-{}", scheme.name(), hash),
                got: format!("{}-{}", signature.scheme.name(), signature.hash),
            });
        }
        let sig_bytes = match (&signature.value, &self.key) {
            (SignatureValue::Rsa(sig), PublicKey::Rsa { .. }) => sig.to_vec(),
            (SignatureValue::Ecdsa { r, s }, PublicKey::Ecc { curve, .. }) => {
                let size = curve.coordinate_size();
                if r.len() > size || s.len() > size {
                    return Err(VerifyError::SignatureInvalid);
                }
                spki::ecdsa_sig_der(r, s)
            }
            _ => {
                return Err(VerifyError::SchemeMismatch {
                    expected: self.key.describe(),
                    got: format!("{}-{}", signature.scheme.name(), signature.hash),
                });
            }
        };
        let result = if let Some(prepared) = &self.prepared {
            prepared.verify_sig(message, &sig_bytes)
        } else {
            let alg = self.algorithm(signature.scheme, signature.hash)?;
            signature::UnparsedPublicKey::new(alg, self.key_bytes()).verify(message, &sig_bytes)
        };
        result.map_err(|_| VerifyError::SignatureInvalid)?;
        Ok(signature.hash)
    }

    fn key_bytes(&self) -> Vec<u8> {
        match &self.key {
            PublicKey::Rsa { .. } => spki::to_spki_der(&self.key),
            PublicKey::Ecc { .. } => self.key.ec_point().unwrap_or_default(),
        }
    }

    fn algorithm(
        &self,
        scheme: SigScheme,
        hash: HashAlg,
    ) -> Result<&'static dyn VerificationAlgorithm, VerifyError> {
        if hash == HashAlg::Sha1 && !self.options.allow_sha1 {
            return Err(VerifyError::HashNotAllowed(hash));
        }
        if let PublicKey::Rsa { modulus, .. } = &self.key {
            let bits = modulus.len().saturating_mul(8);
            if bits < 2048 {
                return Err(VerifyError::AkKeyTooSmall { bits });
            }
        }
        let mismatch = || VerifyError::SchemeMismatch {
            expected: self.key.describe(),
            got: format!("{}-{}", scheme.name(), hash),
        };
        Ok(match (scheme, hash, &self.key) {
            (SigScheme::RsaSsa, HashAlg::Sha1, PublicKey::Rsa { .. }) => {
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            (SigScheme::RsaSsa, HashAlg::Sha256, PublicKey::Rsa { .. }) => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            (SigScheme::RsaSsa, HashAlg::Sha384, PublicKey::Rsa { .. }) => {
                &signature::RSA_PKCS1_2048_8192_SHA384
            }
            (SigScheme::RsaSsa, HashAlg::Sha512, PublicKey::Rsa { .. }) => {
                &signature::RSA_PKCS1_2048_8192_SHA512
            }
            (SigScheme::RsaPss, HashAlg::Sha256, PublicKey::Rsa { .. }) => {
                &signature::RSA_PSS_2048_8192_SHA256
            }
            (SigScheme::RsaPss, HashAlg::Sha384, PublicKey::Rsa { .. }) => {
                &signature::RSA_PSS_2048_8192_SHA384
            }
            (SigScheme::RsaPss, HashAlg::Sha512, PublicKey::Rsa { .. }) => {
                &signature::RSA_PSS_2048_8192_SHA512
            }
            (
                SigScheme::Ecdsa,
                HashAlg::Sha1,
                PublicKey::Ecc {
                    curve: EccCurve::P256,
                    ..
                },
            ) => &signature::ECDSA_P256_SHA1_ASN1,
            (
                SigScheme::Ecdsa,
                HashAlg::Sha256,
                PublicKey::Ecc {
                    curve: EccCurve::P256,
                    ..
                },
            ) => &signature::ECDSA_P256_SHA256_ASN1,
            (
                SigScheme::Ecdsa,
                HashAlg::Sha384,
                PublicKey::Ecc {
                    curve: EccCurve::P256,
                    ..
                },
            ) => &signature::ECDSA_P256_SHA384_ASN1,
            (
                SigScheme::Ecdsa,
                HashAlg::Sha512,
                PublicKey::Ecc {
                    curve: EccCurve::P256,
                    ..
                },
            ) => &signature::ECDSA_P256_SHA512_ASN1,
            (
                SigScheme::Ecdsa,
                HashAlg::Sha256,
                PublicKey::Ecc {
                    curve: EccCurve::P384,
                    ..
                },
            ) => &signature::ECDSA_P384_SHA256_ASN1,
            (
                SigScheme::Ecdsa,
                HashAlg::Sha384,
                PublicKey::Ecc {
                    curve: EccCurve::P384,
                    ..
                },
            ) => &signature::ECDSA_P384_SHA384_ASN1,
            (
                SigScheme::Ecdsa,
                HashAlg::Sha512,
                PublicKey::Ecc {
                    curve: EccCurve::P384,
                    ..
                },
            ) => &signature::ECDSA_P384_SHA512_ASN1,
            _ => return Err(mismatch()),
        })
    }
}
