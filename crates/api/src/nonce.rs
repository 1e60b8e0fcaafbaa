//! The verifier-issued nonce of a challenge.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::bytes::{from_hex, to_hex};

/// Shortest nonce accepted (the attestation server issues 32 bytes).
pub const MIN_NONCE: usize = 16;
/// Longest nonce: `TPM2B_DATA` holds at most `sizeof(TPMU_HA)` = 64 bytes.
pub const MAX_NONCE: usize = 64;

/// A nonce of 16..=64 bytes, hex in JSON.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nonce(Vec<u8>);

/// Why a nonce is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not hex.
    #[error("nonce is not hex")]
    NotHex,
    /// Wrong length.
    #[error("nonce is {0} bytes; {MIN_NONCE} to {MAX_NONCE} are allowed")]
    BadLength(usize),
}

impl Nonce {
    /// A nonce from bytes.
    ///
    /// # Errors
    /// `BadLength` outside 16..=64 bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, NonceError> {
        if (MIN_NONCE..=MAX_NONCE).contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(NonceError::BadLength(bytes.len()))
        }
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<String> for Nonce {
    type Error = NonceError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::new(from_hex(&text).ok_or(NonceError::NotHex)?)
    }
}

impl From<Nonce> for String {
    fn from(nonce: Nonce) -> Self {
        to_hex(&nonce.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", to_hex(&self.0))
    }
}
