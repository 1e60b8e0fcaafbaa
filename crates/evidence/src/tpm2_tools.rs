//! The PCR file `tpm2_quote -o` and `tpm2_pcrread -o` write (tpm2-tools 5.x), so that
//! tpm2-tools output can be verified without tpm2-tools.
//!
//! Two formats exist (`-F`):
//! - `serialized` (the default): the C structures as they sit in memory on the machine
//!   that ran the tool (little-endian, x86-64 padding): a `TPML_PCR_SELECTION` (u32 count,
//!   then 16 × 8-byte `TPMS_PCR_SELECTION` `{u16 hash, u8 sizeofSelect, u8 pcrSelect[4], pad}`),
//!   a u32 count of `TPML_DIGEST`s, then that many `TPML_DIGEST` (u32 count + 8 × 66-byte
//!   `TPM2B_DIGEST` `{u16 size, u8 buffer[64]}`). Values fill the digests in selection
//!   order, eight per list.
//! - `values`: the PCR values concatenated in selection order; the selection must come
//!   from elsewhere (the quote or `--pcr-list`).
//!
//! [`write_pcr_file`] writes the serialized format, for handing our values to tpm2-tools.

use crate::alg::{Digest, HashAlg, MAX_DIGEST_SIZE};
use crate::codec::{ParseError, Reader, Writer};
use crate::tpm::pcr::{PcrSelection, PcrSet, PcrValues};

/// `HASH_COUNT` slots of `TPML_PCR_SELECTION` in tpm2-tss (`TPM2_NUM_PCR_BANKS`).
const SELECTION_SLOTS: usize = 16;
/// Size of one in-memory `TPMS_PCR_SELECTION` (7 bytes + 1 padding).
const SELECTION_SLOT_SIZE: usize = 8;
/// Digests per `TPML_DIGEST` (`TPM2_PCR_SELECT_MAX`·8 in tpm2-tss is 8 for PCR reads).
const DIGESTS_PER_LIST: usize = 8;
/// Most `TPML_DIGEST` lists a file may hold (24 PCRs × 4 banks / 8).
const MAX_LISTS: u32 = 16;

/// Parses a PCR file in either format. `selection` (from the quote or the command line)
/// is needed for the `values` format and, when given, must match a serialized file's.
///
/// # Errors
/// A `ParseError` when the file is neither format, or a serialized file's selection
/// differs from `selection`.
pub fn parse_pcr_file(
    bytes: &[u8],
    selection: Option<&PcrSelection>,
) -> Result<PcrValues, ParseError> {
    match parse_serialized(bytes) {
        Ok((file_selection, values)) => {
            if let Some(expected) = selection
                && *expected != file_selection
            {
                return Err(ParseError::BadEncoding {
                    what: "PCR file",
                    reason: "selection in file differs from the quote's",
                });
            }
            Ok(values)
        }
        Err(serialized_error) => match selection {
            Some(sel) if bytes.len() == values_size(sel) => parse_values(bytes, sel),
            _ => Err(serialized_error),
        },
    }
}

/// Writes the `serialized` format (what `tpm2_quote -o` writes by default) for `values`
/// over `selection`, so tools that take it (`tpm2_checkquote -f`) can read our PCRs.
/// `None` when a selected value is missing or the selection has more than 16 banks.
#[must_use]
pub fn write_pcr_file(selection: &PcrSelection, values: &PcrValues) -> Option<Vec<u8>> {
    let banks = selection.banks();
    if banks.len() > SELECTION_SLOTS {
        return None;
    }
    let mut out = Writer::new();
    out.u32_le(u32::try_from(banks.len()).ok()?);
    for slot in 0..SELECTION_SLOTS {
        match banks.get(slot) {
            Some((alg, set)) => {
                let mut bitmap = [0u8; 4];
                for index in set.iter() {
                    let byte = bitmap.get_mut(usize::from(index.get() / 8))?;
                    *byte |= 1 << (index.get() % 8);
                }
                out.u16_le(alg.tpm_id()).u8(3).bytes(&bitmap).u8(0);
            }
            None => {
                out.bytes(&[0u8; SELECTION_SLOT_SIZE]);
            }
        }
    }
    let mut digests = Vec::new();
    for (alg, set) in banks {
        for index in set.iter() {
            digests.push(values.get(*alg, index)?);
        }
    }
    let chunks: Vec<&[&Digest]> = digests.chunks(DIGESTS_PER_LIST).collect();
    out.u32_le(u32::try_from(chunks.len()).ok()?);
    for chunk in chunks {
        out.u32_le(u32::try_from(chunk.len()).ok()?);
        for slot in 0..DIGESTS_PER_LIST {
            let mut buffer = [0u8; MAX_DIGEST_SIZE];
            let size = match chunk.get(slot) {
                Some(d) => {
                    buffer
                        .get_mut(..d.as_bytes().len())?
                        .copy_from_slice(d.as_bytes());
                    d.as_bytes().len()
                }
                None => 0,
            };
            out.u16_le(u16::try_from(size).ok()?).bytes(&buffer);
        }
    }
    Some(out.into_bytes())
}

fn values_size(selection: &PcrSelection) -> usize {
    selection
        .banks()
        .iter()
        .map(|(alg, set)| alg.size().saturating_mul(set.len()))
        .sum()
}

fn parse_values(bytes: &[u8], selection: &PcrSelection) -> Result<PcrValues, ParseError> {
    let mut r = Reader::new(bytes);
    let mut values = PcrValues::new();
    for (alg, set) in selection.banks() {
        for index in set.iter() {
            values.insert(index, Digest::read(&mut r, *alg, "PCR value")?);
        }
    }
    r.finish("PCR values file")?;
    Ok(values)
}

fn parse_serialized(bytes: &[u8]) -> Result<(PcrSelection, PcrValues), ParseError> {
    let mut r = Reader::new(bytes);
    let count_at = r.offset();
    let count = r.u32_le("TPML_PCR_SELECTION.count")?;
    let count = usize::try_from(count)
        .ok()
        .filter(|c| *c <= SELECTION_SLOTS)
        .ok_or_else(|| Reader::unexpected("TPML_PCR_SELECTION.count", count_at, count))?;
    let mut banks = Vec::with_capacity(count);
    for slot in 0..SELECTION_SLOTS {
        let raw = r.take(SELECTION_SLOT_SIZE, "TPMS_PCR_SELECTION")?;
        if slot >= count {
            continue;
        }
        let mut s = Reader::new(raw);
        let alg = HashAlg::read_le(&mut s, "TPMS_PCR_SELECTION.hash")?;
        let size_at = s.offset();
        let size = s.u8("TPMS_PCR_SELECTION.sizeofSelect")?;
        if size > 4 {
            return Err(Reader::unexpected(
                "TPMS_PCR_SELECTION.sizeofSelect",
                size_at,
                size,
            ));
        }
        let bitmap = s.take(4, "TPMS_PCR_SELECTION.pcrSelect")?;
        let mut set = PcrSet::empty();
        for (byte_index, byte) in bitmap.iter().take(usize::from(size)).enumerate() {
            for bit in 0..8u8 {
                if byte & (1 << bit) != 0 {
                    let index = u8::try_from(byte_index)
                        .ok()
                        .and_then(|b| b.checked_mul(8))
                        .and_then(|b| b.checked_add(bit));
                    let index = index.and_then(crate::tpm::pcr::PcrIndex::new).ok_or(
                        ParseError::BadEncoding {
                            what: "TPMS_PCR_SELECTION.pcrSelect",
                            reason: "selects a PCR above 23",
                        },
                    )?;
                    set = set.with(index);
                }
            }
        }
        banks.push((alg, set));
    }
    let selection = PcrSelection::new(banks).map_err(|_| ParseError::BadEncoding {
        what: "TPML_PCR_SELECTION",
        reason: "bank listed twice",
    })?;
    let lists_at = r.offset();
    let lists = r.u32_le("TPML_DIGEST count")?;
    if lists > MAX_LISTS {
        return Err(Reader::unexpected("TPML_DIGEST count", lists_at, lists));
    }
    let mut digests: Vec<&[u8]> = Vec::new();
    for _ in 0..lists {
        let n_at = r.offset();
        let n = r.u32_le("TPML_DIGEST.count")?;
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= DIGESTS_PER_LIST)
            .ok_or_else(|| Reader::unexpected("TPML_DIGEST.count", n_at, n))?;
        for slot in 0..DIGESTS_PER_LIST {
            let size_at = r.offset();
            let size = usize::from(r.u16_le("TPM2B_DIGEST.size")?);
            let buffer = r.take(MAX_DIGEST_SIZE, "TPM2B_DIGEST.buffer")?;
            if slot < n {
                let value = buffer.get(..size).ok_or_else(|| {
                    Reader::unexpected(
                        "TPM2B_DIGEST.size",
                        size_at,
                        u64::try_from(size).unwrap_or(u64::MAX),
                    )
                })?;
                digests.push(value);
            }
        }
    }
    r.finish("tpm2-tools PCR file")?;
    if digests.len() != selection.value_count() {
        return Err(ParseError::BadEncoding {
            what: "tpm2-tools PCR file",
            reason: "number of values differs from the selection",
        });
    }
    let mut values = PcrValues::new();
    let mut iter = digests.into_iter();
    for (alg, set) in selection.banks() {
        for index in set.iter() {
            let raw = iter.next().unwrap_or(&[]);
            let digest = Digest::new(*alg, raw).ok_or(ParseError::BadEncoding {
                what: "TPM2B_DIGEST",
                reason: "size does not match its bank",
            })?;
            values.insert(index, digest);
        }
    }
    Ok((selection, values))
}
