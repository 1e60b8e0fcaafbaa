//! PCR indices, selections (`TPML_PCR_SELECTION`, TPM 2.0 Library Part 2, §10.6.2 and
//! §10.9.7) and PCR values.

use core::fmt;
use std::collections::BTreeMap;

use crate::alg::{Digest, HashAlg};
use crate::codec::{ParseError, Reader, Writer};

/// Number of PCRs of a PC Client TPM (TCG PC Client Platform TPM Profile, §4.6: 24 PCRs).
pub const PCR_COUNT: u8 = 24;

/// `PCR_SELECT_MAX`: bytes of a `TPMS_PCR_SELECTION.pcrSelect` bitmap on a 24-PCR TPM,
/// rounded up to the 32 PCRs a u32 can hold; larger bitmaps are rejected.
const PCR_SELECT_MAX: u8 = 4;

/// `HASH_COUNT` bound for `TPML_PCR_SELECTION.count`: one selection per bank; the
/// specification allows one per implemented hash, and no TPM implements more than 16.
const MAX_BANKS: u32 = 16;

/// A PCR index, 0..=23.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PcrIndex(u8);

impl PcrIndex {
    /// PCR 0 (the S-CRTM and BIOS measurements).
    pub const ZERO: Self = Self(0);

    /// The index if it is below [`PCR_COUNT`].
    #[must_use]
    pub fn new(index: u8) -> Option<Self> {
        (index < PCR_COUNT).then_some(Self(index))
    }

    /// A PCR index from an event log's u32 field.
    #[must_use]
    pub fn from_u32(index: u32) -> Option<Self> {
        u8::try_from(index).ok().and_then(Self::new)
    }

    /// The index as a number.
    #[must_use]
    pub fn get(self) -> u8 {
        self.0
    }

    /// True for the DRTM PCRs 17–22, which start at all-ones until a dynamic launch
    /// (TCG PC Client Platform TPM Profile, §4.6.2, Table "PCR Initial Values").
    #[must_use]
    pub fn is_drtm(self) -> bool {
        (17..=22).contains(&self.0)
    }
}

impl fmt::Display for PcrIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A set of PCR indices (a `pcrSelect` bitmap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PcrSet(u32);

impl PcrSet {
    /// No PCR.
    #[must_use]
    pub fn empty() -> Self {
        Self(0)
    }

    /// All 24 PCRs.
    #[must_use]
    pub fn all() -> Self {
        Self((1u32 << PCR_COUNT).wrapping_sub(1))
    }

    /// A set from indices.
    #[must_use]
    pub fn from_indices(indices: impl IntoIterator<Item = PcrIndex>) -> Self {
        indices.into_iter().fold(Self(0), |set, i| set.with(i))
    }

    /// This set with `index` added.
    #[must_use]
    pub fn with(self, index: PcrIndex) -> Self {
        Self(self.0 | (1u32 << index.0))
    }

    /// True when `index` is in the set.
    #[must_use]
    pub fn contains(self, index: PcrIndex) -> bool {
        self.0 & (1u32 << index.0) != 0
    }

    /// The indices, ascending (the order in which a quote's PCR digest concatenates them,
    /// TPM 2.0 Library Part 1, §18.5.2 / Part 3, §18.4).
    pub fn iter(self) -> impl Iterator<Item = PcrIndex> {
        (0..PCR_COUNT)
            .filter(move |i| self.0 & (1u32 << i) != 0)
            .map(PcrIndex)
    }

    /// Number of PCRs selected.
    #[must_use]
    pub fn len(self) -> usize {
        // count_ones of a u32 is at most 32.
        usize::try_from(self.0.count_ones()).unwrap_or(usize::MAX)
    }

    /// True when no PCR is selected.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses `0,1,2,7` or `0-7,17` (tpm2-tools style).
    #[must_use]
    pub fn parse_list(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("all") {
            return Some(Self::all());
        }
        let mut set = Self::empty();
        for part in text.split(',').map(str::trim) {
            if let Some((lo, hi)) = part.split_once('-') {
                let lo: u8 = lo.trim().parse().ok()?;
                let hi: u8 = hi.trim().parse().ok()?;
                if lo > hi {
                    return None;
                }
                for i in lo..=hi {
                    set = set.with(PcrIndex::new(i)?);
                }
            } else {
                set = set.with(PcrIndex::new(part.parse().ok()?)?);
            }
        }
        Some(set)
    }
}

impl fmt::Display for PcrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for i in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{i}")?;
        }
        Ok(())
    }
}

/// An ordered list of (bank, PCR set), as in `TPML_PCR_SELECTION`. Banks appear at most
/// once; order matters because the quote's PCR digest concatenates banks in this order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PcrSelection {
    banks: Vec<(HashAlg, PcrSet)>,
}

impl PcrSelection {
    /// A selection from (bank, set) pairs.
    ///
    /// # Errors
    /// `DuplicateBank` when a bank appears twice.
    pub fn new(banks: Vec<(HashAlg, PcrSet)>) -> Result<Self, DuplicateBank> {
        for (i, (alg, _)) in banks.iter().enumerate() {
            if banks
                .iter()
                .skip(i.saturating_add(1))
                .any(|(other, _)| other == alg)
            {
                return Err(DuplicateBank(*alg));
            }
        }
        Ok(Self { banks })
    }

    /// Parses a tpm2-tools PCR list: `sha256:0,1,2+sha384:0-7`.
    #[must_use]
    pub fn parse_list(text: &str) -> Option<Self> {
        let mut banks = Vec::new();
        for bank in text.split('+') {
            let (alg, list) = bank.split_once(':')?;
            banks.push((HashAlg::from_name(alg.trim())?, PcrSet::parse_list(list)?));
        }
        Self::new(banks).ok()
    }

    /// The banks in order.
    #[must_use]
    pub fn banks(&self) -> &[(HashAlg, PcrSet)] {
        &self.banks
    }

    /// The set selected in `alg`, if that bank is selected.
    #[must_use]
    pub fn bank(&self, alg: HashAlg) -> Option<PcrSet> {
        self.banks
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, set)| *set)
    }

    /// Total number of PCR values selected.
    #[must_use]
    pub fn value_count(&self) -> usize {
        self.banks.iter().map(|(_, set)| set.len()).sum()
    }

    /// Reads a `TPML_PCR_SELECTION` (big-endian).
    ///
    /// # Errors
    /// A `ParseError` for an unknown hash, a bitmap over `PCR_SELECT_MAX` (4) bytes, a bit
    /// for a PCR ≥ 24, a bank listed twice, or truncation.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let at = r.offset();
        let count = r.u32_be("TPML_PCR_SELECTION.count")?;
        if count > MAX_BANKS {
            return Err(ParseError::TooLarge {
                what: "TPML_PCR_SELECTION.count",
                offset: at,
                len: u64::from(count),
                max: u64::from(MAX_BANKS),
            });
        }
        let mut banks = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            let bank_at = r.offset();
            let alg = HashAlg::read_be(r, "TPMS_PCR_SELECTION.hash")?;
            let size_at = r.offset();
            let size = r.u8("TPMS_PCR_SELECTION.sizeofSelect")?;
            if size > PCR_SELECT_MAX {
                return Err(ParseError::TooLarge {
                    what: "TPMS_PCR_SELECTION.sizeofSelect",
                    offset: size_at,
                    len: u64::from(size),
                    max: u64::from(PCR_SELECT_MAX),
                });
            }
            let bitmap_at = r.offset();
            let bitmap = r.take(usize::from(size), "TPMS_PCR_SELECTION.pcrSelect")?;
            let mut bits = 0u32;
            for (i, byte) in bitmap.iter().enumerate() {
                // i < 4, so the shift stays within a u32.
                bits |= u32::from(*byte) << (i.saturating_mul(8) & 31);
            }
            if bits & !PcrSet::all().0 != 0 {
                return Err(Reader::unexpected(
                    "TPMS_PCR_SELECTION.pcrSelect",
                    bitmap_at,
                    bits,
                ));
            }
            if banks.iter().any(|(a, _)| *a == alg) {
                return Err(Reader::unexpected(
                    "TPMS_PCR_SELECTION.hash (bank listed twice)",
                    bank_at,
                    alg.tpm_id(),
                ));
            }
            banks.push((alg, PcrSet(bits)));
        }
        Ok(Self { banks })
    }

    /// Writes a `TPML_PCR_SELECTION` with 3-byte bitmaps (24 PCRs), as TPMs do.
    pub fn write(&self, w: &mut Writer) {
        w.u32_be(u32::try_from(self.banks.len()).unwrap_or(0));
        for (alg, set) in &self.banks {
            let [b0, b1, b2, _] = set.0.to_le_bytes();
            w.u16_be(alg.tpm_id()).u8(3).u8(b0).u8(b1).u8(b2);
        }
    }
}

impl fmt::Display for PcrSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (alg, set)) in self.banks.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{alg}:{set}")?;
        }
        Ok(())
    }
}

/// A bank appears twice in a PCR selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("PCR bank {0} is selected twice")]
pub struct DuplicateBank(pub HashAlg);

/// PCR values per bank, as an agent reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcrValues {
    banks: BTreeMap<HashAlg, BTreeMap<PcrIndex, Digest>>,
}

impl PcrValues {
    /// No values.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one value; the digest's algorithm names the bank.
    pub fn insert(&mut self, index: PcrIndex, value: Digest) {
        self.banks
            .entry(value.alg())
            .or_default()
            .insert(index, value);
    }

    /// The value of one PCR in one bank.
    #[must_use]
    pub fn get(&self, alg: HashAlg, index: PcrIndex) -> Option<&Digest> {
        self.banks.get(&alg).and_then(|bank| bank.get(&index))
    }

    /// Every (index, value) of a bank, ascending.
    pub fn bank(&self, alg: HashAlg) -> impl Iterator<Item = (PcrIndex, &Digest)> {
        self.banks
            .get(&alg)
            .into_iter()
            .flat_map(|bank| bank.iter().map(|(i, d)| (*i, d)))
    }

    /// The banks present.
    pub fn algs(&self) -> impl Iterator<Item = HashAlg> + '_ {
        self.banks.keys().copied()
    }

    /// The selection these values cover, banks in ascending algorithm order.
    #[must_use]
    pub fn selection(&self) -> PcrSelection {
        PcrSelection {
            banks: self
                .banks
                .iter()
                .map(|(alg, bank)| (*alg, PcrSet::from_indices(bank.keys().copied())))
                .collect(),
        }
    }

    /// Total number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.banks.values().map(BTreeMap::len).sum()
    }

    /// True when there are no values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_quote_selection() {
        // From a real swtpm quote: SHA-256, sizeofSelect 3, bitmap 81 00 01 = PCR 0, 7, 16.
        let bytes = [0, 0, 0, 1, 0x00, 0x0b, 3, 0x81, 0x00, 0x01];
        let mut r = Reader::new(&bytes);
        let sel = PcrSelection::read(&mut r).unwrap();
        r.finish("sel").unwrap();
        assert_eq!(sel.to_string(), "sha256:0,7,16");
        let mut w = Writer::new();
        sel.write(&mut w);
        assert_eq!(w.into_bytes(), bytes);
    }

    #[test]
    fn rejects_pcr_above_23() {
        let bytes = [0, 0, 0, 1, 0x00, 0x0b, 4, 0, 0, 0, 0x01];
        assert!(matches!(
            PcrSelection::read(&mut Reader::new(&bytes)),
            Err(ParseError::UnexpectedValue { .. })
        ));
    }

    #[test]
    fn rejects_duplicate_bank() {
        let bytes = [0, 0, 0, 2, 0x00, 0x0b, 3, 1, 0, 0, 0x00, 0x0b, 3, 2, 0, 0];
        assert!(matches!(
            PcrSelection::read(&mut Reader::new(&bytes)),
            Err(ParseError::UnexpectedValue { .. })
        ));
    }

    #[test]
    fn parses_tpm2_tools_lists() {
        let sel = PcrSelection::parse_list("sha256:0-3,7+sha384:all").unwrap();
        assert_eq!(
            sel.to_string(),
            format!("sha256:0,1,2,3,7+sha384:{}", PcrSet::all())
        );
        assert!(PcrSelection::parse_list("sha256:24").is_none());
        assert!(PcrSelection::parse_list("md5:1").is_none());
        assert!(PcrSelection::parse_list("sha256:1+sha256:2").is_none());
    }
}
