//! PCR banks, selections and values on the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bytes::HexBytes;

/// Number of PCRs of a PC Client TPM.
pub const PCR_COUNT: u8 = 24;

/// Most banks one request may select (sha1, sha256, sha384, sha512).
pub const MAX_BANKS: usize = 4;

/// A PCR bank's hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Digest size in bytes.
    #[must_use]
    pub fn digest_size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The name used on the wire and in tpm2-tools (`sha256`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
}

/// One bank of a PCR selection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcrBankSelection {
    /// The bank.
    pub bank: HashAlgorithm,
    /// PCR indices, ascending, each 0..=23, no repeats.
    pub pcrs: Vec<u8>,
}

/// A PCR selection: banks in order (the quote's digest concatenates them in this order),
/// validated on deserialisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<PcrBankSelection>", into = "Vec<PcrBankSelection>")]
pub struct PcrSelection(Vec<PcrBankSelection>);

/// Why a PCR selection is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcrSelectionError {
    /// No bank, or a bank with no PCR.
    #[error("a PCR selection needs at least one bank with at least one PCR")]
    Empty,
    /// More banks than exist.
    #[error("at most {MAX_BANKS} banks may be selected")]
    TooManyBanks,
    /// A bank appears twice.
    #[error("bank {0} is selected twice")]
    DuplicateBank(&'static str),
    /// A PCR index above 23.
    #[error("PCR {0} does not exist (0-23)")]
    NoSuchPcr(u8),
    /// PCR indices not strictly ascending.
    #[error("PCR indices must be ascending without repeats")]
    NotAscending,
}

impl PcrSelection {
    /// A validated selection.
    ///
    /// # Errors
    /// A `PcrSelectionError` naming the problem.
    pub fn new(banks: Vec<PcrBankSelection>) -> Result<Self, PcrSelectionError> {
        if banks.is_empty() {
            return Err(PcrSelectionError::Empty);
        }
        if banks.len() > MAX_BANKS {
            return Err(PcrSelectionError::TooManyBanks);
        }
        for (i, bank) in banks.iter().enumerate() {
            if banks
                .iter()
                .skip(i.saturating_add(1))
                .any(|b| b.bank == bank.bank)
            {
                return Err(PcrSelectionError::DuplicateBank(bank.bank.name()));
            }
            if bank.pcrs.is_empty() {
                return Err(PcrSelectionError::Empty);
            }
            if let Some(bad) = bank.pcrs.iter().find(|p| **p >= PCR_COUNT) {
                return Err(PcrSelectionError::NoSuchPcr(*bad));
            }
            if bank.pcrs.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
                return Err(PcrSelectionError::NotAscending);
            }
        }
        Ok(Self(banks))
    }

    /// The banks.
    #[must_use]
    pub fn banks(&self) -> &[PcrBankSelection] {
        &self.0
    }
}

impl TryFrom<Vec<PcrBankSelection>> for PcrSelection {
    type Error = PcrSelectionError;
    fn try_from(banks: Vec<PcrBankSelection>) -> Result<Self, Self::Error> {
        Self::new(banks)
    }
}

impl From<PcrSelection> for Vec<PcrBankSelection> {
    fn from(selection: PcrSelection) -> Self {
        selection.0
    }
}

/// PCR values of one bank: index → digest (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcrBankValues {
    /// The bank.
    pub bank: HashAlgorithm,
    /// Values by PCR index.
    pub values: BTreeMap<u8, HexBytes>,
}
