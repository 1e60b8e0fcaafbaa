//! `TCG_EfiSpecIDEvent` — TCG PC Client Platform Firmware Profile rev. 1.05, §10.4.5.1:
//! the first event of a crypto-agile log, declaring its hash algorithms and their digest
//! sizes.

use crate::alg::HashAlg;
use crate::codec::{ParseError, Reader};

/// The signature of a crypto-agile (TPM 2.0) log's first event.
pub const SPEC_ID_EVENT03: &[u8; 16] = b"Spec ID Event03\0";

/// Most algorithms a header may declare (`HASH_COUNT` of any real TPM is far smaller).
const MAX_ALGORITHMS: u32 = 16;

/// Largest digest size a header may declare (`sizeof(TPMU_HA)` with SM3/SHA3 included).
const MAX_DECLARED_DIGEST: u16 = 64;

/// One algorithm of the header: a bank we replay, or one we skip (declared size only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAlgorithm {
    /// A hash we support; its declared size was checked against the algorithm's.
    Known(HashAlg),
    /// An algorithm we do not implement (e.g. SM3_256); its digests are skipped by
    /// their declared size and its bank is not replayed.
    Other {
        /// `TPM_ALG_ID`.
        id: u16,
        /// Declared digest size.
        size: u16,
    },
}

impl LogAlgorithm {
    /// The algorithm id.
    #[must_use]
    pub fn id(self) -> u16 {
        match self {
            Self::Known(alg) => alg.tpm_id(),
            Self::Other { id, .. } => id,
        }
    }

    /// The digest size.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            Self::Known(alg) => alg.size(),
            Self::Other { size, .. } => usize::from(size),
        }
    }
}

/// The parsed Spec ID event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIdEvent {
    /// `platformClass` (0 = client, 1 = server).
    pub platform_class: u32,
    /// `specVersionMajor`.`specVersionMinor`, errata `specErrata`.
    pub spec_version: (u8, u8, u8),
    /// `uintnSize`: 1 for 32-bit UINTN, 2 for 64-bit.
    pub uintn_size: u8,
    /// The algorithms, in header order.
    pub algorithms: Vec<LogAlgorithm>,
    /// `vendorInfo`.
    pub vendor_info: Vec<u8>,
}

impl SpecIdEvent {
    /// Parses the event data of the first event (after checking it starts with
    /// [`SPEC_ID_EVENT03`]).
    ///
    /// # Errors
    /// A `ParseError` for wrong sizes, duplicate algorithms, or trailing bytes.
    pub fn parse(data: &[u8], base_offset: usize) -> Result<Self, ParseError> {
        let mut r = Reader::at(data, base_offset);
        let sig_at = r.offset();
        let signature = r.take_array::<16>("TCG_EfiSpecIDEvent.signature")?;
        if signature != SPEC_ID_EVENT03 {
            return Err(Reader::unexpected(
                "TCG_EfiSpecIDEvent.signature",
                sig_at,
                0u8,
            ));
        }
        let platform_class = r.u32_le("TCG_EfiSpecIDEvent.platformClass")?;
        let minor = r.u8("TCG_EfiSpecIDEvent.specVersionMinor")?;
        let major = r.u8("TCG_EfiSpecIDEvent.specVersionMajor")?;
        let errata = r.u8("TCG_EfiSpecIDEvent.specErrata")?;
        let uintn_at = r.offset();
        let uintn_size = r.u8("TCG_EfiSpecIDEvent.uintnSize")?;
        if !matches!(uintn_size, 1 | 2) {
            return Err(Reader::unexpected(
                "TCG_EfiSpecIDEvent.uintnSize",
                uintn_at,
                uintn_size,
            ));
        }
        let count_at = r.offset();
        let count = r.u32_le("TCG_EfiSpecIDEvent.numberOfAlgorithms")?;
        if count == 0 || count > MAX_ALGORITHMS {
            return Err(ParseError::TooLarge {
                what: "TCG_EfiSpecIDEvent.numberOfAlgorithms",
                offset: count_at,
                len: u64::from(count),
                max: u64::from(MAX_ALGORITHMS),
            });
        }
        let mut algorithms: Vec<LogAlgorithm> = Vec::new();
        for _ in 0..count {
            let at = r.offset();
            let id = r.u16_le("TCG_EfiSpecIdEventAlgorithmSize.algorithmId")?;
            let size_at = r.offset();
            let size = r.u16_le("TCG_EfiSpecIdEventAlgorithmSize.digestSize")?;
            let alg = match HashAlg::from_tpm(id) {
                Some(known) if usize::from(size) == known.size() => LogAlgorithm::Known(known),
                Some(_) => {
                    return Err(Reader::unexpected(
                        "TCG_EfiSpecIdEventAlgorithmSize.digestSize",
                        size_at,
                        size,
                    ));
                }
                None if size == 0 || size > MAX_DECLARED_DIGEST => {
                    return Err(Reader::unexpected(
                        "TCG_EfiSpecIdEventAlgorithmSize.digestSize",
                        size_at,
                        size,
                    ));
                }
                None => LogAlgorithm::Other { id, size },
            };
            if algorithms.iter().any(|a| a.id() == id) {
                return Err(Reader::unexpected(
                    "TCG_EfiSpecIdEventAlgorithmSize.algorithmId (listed twice)",
                    at,
                    id,
                ));
            }
            algorithms.push(alg);
        }
        let vendor_len = r.u8("TCG_EfiSpecIDEvent.vendorInfoSize")?;
        let vendor_info = r
            .take(usize::from(vendor_len), "TCG_EfiSpecIDEvent.vendorInfo")?
            .to_vec();
        r.finish("TCG_EfiSpecIDEvent")?;
        Ok(Self {
            platform_class,
            spec_version: (major, minor, errata),
            uintn_size,
            algorithms,
            vendor_info,
        })
    }

    /// The banks this log can be replayed into.
    pub fn banks(&self) -> impl Iterator<Item = HashAlg> + '_ {
        self.algorithms.iter().filter_map(|a| match a {
            LogAlgorithm::Known(alg) => Some(*alg),
            LogAlgorithm::Other { .. } => None,
        })
    }
}
