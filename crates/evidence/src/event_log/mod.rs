//! TCG PC Client event logs: the crypto-agile format (`Spec ID Event03` header then
//! `TCG_PCR_EVENT2` records, every bank the header declares) and the legacy SHA-1 format
//! (`TCG_PCR_EVENT` records) — TCG PC Client Platform Firmware Profile rev. 1.05, §10.2.
//! All integers are little-endian.
//!
//! [`EventLog::parse`] checks structure; [`replay`] computes PCR values; [`decode`] turns
//! event data into something a human can read.

pub mod decode;
pub mod event_type;
pub mod replay;
pub mod spec_id;
pub mod writer;

use crate::alg::{Digest, HashAlg};
use crate::codec::{ParseError, Reader};
use crate::tpm::pcr::PcrIndex;
pub use event_type::EventType;
pub use spec_id::{LogAlgorithm, SPEC_ID_EVENT03, SpecIdEvent};

/// Largest log accepted: 16 MiB. Firmware logs are a few KiB to a few hundred KiB; the
/// bound keeps a hostile agent from making the server allocate without limit.
pub const MAX_LOG_SIZE: usize = 16 << 20;

/// Largest event data accepted: 1 MiB (the largest real events, Secure Boot `db`/`dbx`
/// variables, are tens of KiB).
pub const MAX_EVENT_DATA: usize = 1 << 20;

/// Most events accepted in one log.
pub const MAX_EVENTS: usize = 100_000;

/// Which of the two formats a log is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// TPM 2.0 crypto-agile: several digests per event.
    CryptoAgile,
    /// TPM 1.2 style: one SHA-1 digest per event.
    LegacySha1,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// Position in the log, counting the header event as 0.
    pub number: usize,
    /// Byte offset of the event in the log.
    pub offset: usize,
    /// `pcrIndex`.
    pub pcr: PcrIndex,
    /// `eventType`.
    pub event_type: EventType,
    /// One digest per known bank, in header order (banks with unknown algorithms omitted).
    pub digests: Vec<Digest>,
    /// `event`: the event data.
    pub data: &'a [u8],
}

impl Event<'_> {
    /// The digest of one bank.
    #[must_use]
    pub fn digest(&self, alg: HashAlg) -> Option<&Digest> {
        self.digests.iter().find(|d| d.alg() == alg)
    }
}

/// A parsed event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog<'a> {
    /// The format.
    pub format: LogFormat,
    /// The crypto-agile header, if any.
    pub spec_id: Option<SpecIdEvent>,
    /// Every event, the header event included (as number 0).
    pub events: Vec<Event<'a>>,
}

impl<'a> EventLog<'a> {
    /// Parses a binary log as the kernel exposes it
    /// (`/sys/kernel/security/tpm0/binary_bios_measurements`).
    ///
    /// # Errors
    /// A `ParseError` naming the field of the first malformed event.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_LOG_SIZE {
            return Err(ParseError::TooLarge {
                what: "event log",
                offset: 0,
                len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                max: u64::try_from(MAX_LOG_SIZE).unwrap_or(u64::MAX),
            });
        }
        let mut r = Reader::new(bytes);
        let first = read_legacy_event(&mut r, 0)?;
        let spec_id = if first.event_type == EventType::EV_NO_ACTION
            && first.pcr.get() == 0
            && first.data.starts_with(SPEC_ID_EVENT03)
        {
            let data_offset = r.offset().saturating_sub(first.data.len());
            Some(SpecIdEvent::parse(first.data, data_offset)?)
        } else {
            None
        };
        let mut events = vec![first];
        while !r.is_empty() {
            let number = events.len();
            if number >= MAX_EVENTS {
                return Err(ParseError::TooLarge {
                    what: "event log (events)",
                    offset: r.offset(),
                    len: u64::try_from(number).unwrap_or(u64::MAX),
                    max: u64::try_from(MAX_EVENTS).unwrap_or(u64::MAX),
                });
            }
            let event = match &spec_id {
                Some(spec) => read_event2(&mut r, number, spec)?,
                None => read_legacy_event(&mut r, number)?,
            };
            events.push(event);
        }
        let format = if spec_id.is_some() {
            LogFormat::CryptoAgile
        } else {
            LogFormat::LegacySha1
        };
        Ok(Self {
            format,
            spec_id,
            events,
        })
    }

    /// The banks the log carries digests for (SHA-1 only for a legacy log).
    #[must_use]
    pub fn banks(&self) -> Vec<HashAlg> {
        match &self.spec_id {
            Some(spec) => spec.banks().collect(),
            None => vec![HashAlg::Sha1],
        }
    }
}

fn read_pcr(r: &mut Reader<'_>, what: &'static str) -> Result<PcrIndex, ParseError> {
    let at = r.offset();
    let raw = r.u32_le(what)?;
    PcrIndex::from_u32(raw).ok_or_else(|| Reader::unexpected(what, at, raw))
}

/// `TCG_PCR_EVENT` (PFP §10.2.1): pcrIndex, eventType, SHA-1 digest, eventSize, event.
fn read_legacy_event<'a>(r: &mut Reader<'a>, number: usize) -> Result<Event<'a>, ParseError> {
    let offset = r.offset();
    let pcr = read_pcr(r, "TCG_PCR_EVENT.pcrIndex")?;
    let event_type = EventType(r.u32_le("TCG_PCR_EVENT.eventType")?);
    let digest = Digest::read(r, HashAlg::Sha1, "TCG_PCR_EVENT.digest")?;
    let data = r.sized_le32(MAX_EVENT_DATA, "TCG_PCR_EVENT.event")?;
    Ok(Event {
        number,
        offset,
        pcr,
        event_type,
        digests: vec![digest],
        data,
    })
}

/// `TCG_PCR_EVENT2` (PFP §10.2.2): pcrIndex, eventType, `TPML_DIGEST_VALUES` (count, then
/// {hashAlg, digest} with sizes from the header), eventSize, event. The digest list must
/// carry exactly the header's algorithms, each once.
fn read_event2<'a>(
    r: &mut Reader<'a>,
    number: usize,
    spec: &SpecIdEvent,
) -> Result<Event<'a>, ParseError> {
    let offset = r.offset();
    let pcr = read_pcr(r, "TCG_PCR_EVENT2.pcrIndex")?;
    let event_type = EventType(r.u32_le("TCG_PCR_EVENT2.eventType")?);
    let count_at = r.offset();
    let count = r.u32_le("TPML_DIGEST_VALUES.count")?;
    if usize::try_from(count).ok() != Some(spec.algorithms.len()) {
        return Err(Reader::unexpected(
            "TPML_DIGEST_VALUES.count (≠ Spec ID numberOfAlgorithms)",
            count_at,
            count,
        ));
    }
    let mut digests = Vec::with_capacity(spec.algorithms.len());
    let mut seen: Vec<u16> = Vec::with_capacity(spec.algorithms.len());
    for _ in 0..count {
        let at = r.offset();
        let id = r.u16_le("TPMT_HA.hashAlg")?;
        let alg = spec
            .algorithms
            .iter()
            .find(|a| a.id() == id)
            .ok_or_else(|| Reader::unexpected("TPMT_HA.hashAlg (not in Spec ID header)", at, id))?;
        if seen.contains(&id) {
            return Err(Reader::unexpected("TPMT_HA.hashAlg (listed twice)", at, id));
        }
        seen.push(id);
        match alg {
            LogAlgorithm::Known(known) => digests.push(Digest::read(r, *known, "TPMT_HA.digest")?),
            LogAlgorithm::Other { .. } => {
                r.take(alg.size(), "TPMT_HA.digest")?;
            }
        }
    }
    let data = r.sized_le32(MAX_EVENT_DATA, "TCG_PCR_EVENT2.event")?;
    Ok(Event {
        number,
        offset,
        pcr,
        event_type,
        digests,
        data,
    })
}
