//! The one cursor every untrusted byte in this crate is read through, and the writer
//! used for the few structures we produce (SubjectPublicKeyInfo, credential blobs).
//!
//! TPM 2.0 structures are big-endian (TPM 2.0 Library Part 1, §11.1.1 "byte order");
//! TCG PC Client event logs are little-endian (TCG PC Client Platform Firmware Profile,
//! §10.2). Every method says which byte order it reads, so the two cannot be mixed up.

use thiserror::Error;

/// Why a structure could not be parsed. `what` uses the specification's field names
/// (`TPMS_ATTEST.extraData`), `offset` is where the field starts in the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input ended before the field did.
    #[error("{what}: truncated at offset {offset} (need {need} bytes, {left} left)")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        left: usize,
    },
    /// Bytes remain after a complete structure.
    #[error("{what}: {len} trailing bytes at offset {offset}")]
    TrailingData {
        /// The structure that was complete.
        what: &'static str,
        /// Where the extra bytes start.
        offset: usize,
        /// How many extra bytes there are.
        len: usize,
    },
    /// A size field exceeds the limit the specification (or this crate) allows.
    #[error("{what}: size {len} at offset {offset} exceeds the limit of {max}")]
    TooLarge {
        /// The field whose size is too big.
        what: &'static str,
        /// Where the size field starts.
        offset: usize,
        /// The size the input declared.
        len: u64,
        /// The largest size accepted.
        max: u64,
    },
    /// A field holds a value this crate does not accept (unknown algorithm, bad tag …).
    #[error("{what}: unexpected value {value:#x} at offset {offset}")]
    UnexpectedValue {
        /// The field.
        what: &'static str,
        /// Where the field starts.
        offset: usize,
        /// The value found.
        value: u64,
    },
    /// Text that is not what the format says it is (PEM armour, base64).
    #[error("{what}: {reason}")]
    BadEncoding {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A cursor over untrusted bytes. Every read is bounds-checked and returns
/// `Err(ParseError)`; nothing in this crate indexes a buffer directly.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, starting at offset 0.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            offset: 0,
        }
    }

    /// A reader over `bytes` whose offsets in errors start at `offset` (for nested structures).
    #[must_use]
    pub fn at(bytes: &'a [u8], offset: usize) -> Self {
        Self {
            rest: bytes,
            offset,
        }
    }

    /// Offset of the next byte to be read.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// True when everything has been read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes the next `len` bytes.
    ///
    /// # Errors
    /// `Truncated` when fewer than `len` bytes are left.
    pub fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let Some((head, tail)) = self.rest.split_at_checked(len) else {
            return Err(self.truncated(what, len));
        };
        self.rest = tail;
        self.offset = self.offset.saturating_add(len);
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    ///
    /// # Errors
    /// `Truncated` when fewer than `N` bytes are left.
    pub fn take_array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<&'a [u8; N], ParseError> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(self.truncated(what, N));
        };
        self.rest = tail;
        self.offset = self.offset.saturating_add(N);
        Ok(head)
    }

    /// Takes everything that is left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest;
        self.offset = self.offset.saturating_add(rest.len());
        self.rest = &[];
        rest
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// `Truncated` at the end of input.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        self.take_array::<1>(what).map(|b| b[0])
    }

    /// Reads a big-endian u16 (TPM byte order).
    ///
    /// # Errors
    /// `Truncated` at the end of input.
    pub fn u16_be(&mut self, what: &'static str) -> Result<u16, ParseError> {
        self.take_array(what).map(|b| u16::from_be_bytes(*b))
    }

    /// Reads a big-endian u32 (TPM byte order).
    ///
    /// # Errors
    /// `Truncated` at the end of input.
    pub fn u32_be(&mut self, what: &'static str) -> Result<u32, ParseError> {
        self.take_array(what).map(|b| u32::from_be_bytes(*b))
    }

    /// Reads a big-endian u64 (TPM byte order).
    ///
    /// # Errors
    /// `Truncated` at the end of input.
    pub fn u64_be(&mut self, what: &'static str) -> Result<u64, ParseError> {
        self.take_array(what).map(|b| u64::from_be_bytes(*b))
    }

    /// Reads a little-endian u16 (event log byte order).
    ///
    /// # Errors
    /// `Truncated` at the end of input.
    pub fn u16_le(&mut self, what: &'static str) -> Result<u16, ParseError> {
        self.take_array(what).map(|b| u16::from_le_bytes(*b))
    }

    /// Reads a little-endian u32 (event log byte order).
    ///
    /// # Errors
    /// `Truncated` at the end of input.
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, ParseError> {
        self.take_array(what).map(|b| u32::from_le_bytes(*b))
    }

    /// Reads a little-endian u64 (event log byte order).
    ///
    /// # Errors
    /// `Truncated` at the end of input.
    pub fn u64_le(&mut self, what: &'static str) -> Result<u64, ParseError> {
        self.take_array(what).map(|b| u64::from_le_bytes(*b))
    }

    /// Reads a `TPM2B_*`: a big-endian u16 size, then that many bytes.
    /// The size is checked against `max` before anything else is read.
    ///
    /// # Errors
    /// `TooLarge` when the size exceeds `max`, `Truncated` when the input is shorter.
    pub fn tpm2b(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let at = self.offset;
        let len = usize::from(self.u16_be(what)?);
        check_len(len, max, what, at)?;
        self.take(len, what)
    }

    /// Reads a little-endian u32 length then that many bytes, bounded by `max`.
    ///
    /// # Errors
    /// `TooLarge` when the length exceeds `max`, `Truncated` when the input is shorter.
    pub fn sized_le32(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let at = self.offset;
        let len = self.u32_le(what)?;
        let len = usize::try_from(len).map_err(|_| too_large(u64::from(len), max, what, at))?;
        check_len(len, max, what, at)?;
        self.take(len, what)
    }

    /// Fails with `TrailingData` unless everything has been read.
    ///
    /// # Errors
    /// `TrailingData` when bytes remain.
    pub fn finish(self, what: &'static str) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::TrailingData {
                what,
                offset: self.offset,
                len: self.rest.len(),
            })
        }
    }

    /// An `UnexpectedValue` error for a field that started at `offset`.
    #[must_use]
    pub fn unexpected(what: &'static str, offset: usize, value: impl Into<u64>) -> ParseError {
        ParseError::UnexpectedValue {
            what,
            offset,
            value: value.into(),
        }
    }

    fn truncated(&self, what: &'static str, need: usize) -> ParseError {
        ParseError::Truncated {
            what,
            offset: self.offset,
            need,
            left: self.rest.len(),
        }
    }
}

fn too_large(len: u64, max: usize, what: &'static str, offset: usize) -> ParseError {
    ParseError::TooLarge {
        what,
        offset,
        len,
        max: u64::try_from(max).unwrap_or(u64::MAX),
    }
}

fn check_len(len: usize, max: usize, what: &'static str, offset: usize) -> Result<(), ParseError> {
    if len > max {
        return Err(too_large(
            u64::try_from(len).unwrap_or(u64::MAX),
            max,
            what,
            offset,
        ));
    }
    Ok(())
}

/// Appends TPM (big-endian) encodings to a buffer. Used only for structures this crate
/// produces, never for re-encoding what it received (evidence is verified as sent).
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian u16.
    pub fn u16_be(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian u32.
    pub fn u32_be(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian u64.
    pub fn u64_be(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a little-endian u16.
    pub fn u16_le(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian u32.
    pub fn u32_le(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian u64.
    pub fn u64_le(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a `TPM2B_*` (u16 big-endian size, then the bytes).
    ///
    /// # Errors
    /// `TooLarge` when `bytes` is longer than a u16 can say.
    pub fn tpm2b(&mut self, bytes: &[u8], what: &'static str) -> Result<&mut Self, ParseError> {
        let len = u16::try_from(bytes.len()).map_err(|_| {
            too_large(
                u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                usize::from(u16::MAX),
                what,
                self.buf.len(),
            )
        })?;
        Ok(self.u16_be(len).bytes(bytes))
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded bytes.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_byte_orders() {
        let mut r = Reader::new(&[0x01, 0x02, 0x01, 0x02]);
        assert_eq!(r.u16_be("a").unwrap(), 0x0102);
        assert_eq!(r.u16_le("b").unwrap(), 0x0201);
        r.finish("x").unwrap();
    }

    #[test]
    fn tpm2b_checks_max_before_reading() {
        let mut r = Reader::new(&[0x00, 0x05, 1, 2, 3, 4, 5]);
        assert!(matches!(
            r.tpm2b(4, "f"),
            Err(ParseError::TooLarge {
                len: 5,
                max: 4,
                offset: 0,
                ..
            })
        ));
    }

    #[test]
    fn lying_length_is_truncated() {
        let mut r = Reader::new(&[0x00, 0x05, 1, 2]);
        assert!(matches!(
            r.tpm2b(64, "f"),
            Err(ParseError::Truncated {
                need: 5,
                left: 2,
                offset: 2,
                ..
            })
        ));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u16_be("a").unwrap();
        assert_eq!(
            r.finish("s"),
            Err(ParseError::TrailingData {
                what: "s",
                offset: 2,
                len: 1
            })
        );
    }

    #[test]
    fn sized_le32_bounds_huge_lengths() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            r.sized_le32(1024, "e"),
            Err(ParseError::TooLarge { .. })
        ));
    }
}
