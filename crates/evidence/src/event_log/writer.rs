//! Writing crypto-agile event logs (TCG PC Client Platform Firmware Profile rev. 1.05,
//! §10.2.2 and §10.4.5.1) — for agents that measure on behalf of firmware (the emulated
//! measured boot of development hosts) and for tests. What it writes, [`EventLog::parse`]
//! reads back unchanged.
//!
//! [`EventLog::parse`]: crate::event_log::EventLog::parse

use crate::alg::{Digest, HashAlg};
use crate::codec::Writer;
use crate::event_log::replay::STARTUP_LOCALITY;
use crate::event_log::{EventType, SPEC_ID_EVENT03};
use crate::tpm::pcr::PcrIndex;

/// Builds a crypto-agile log, one event at a time.
#[derive(Debug, Clone)]
pub struct EventLogWriter {
    banks: Vec<HashAlg>,
    out: Writer,
}

impl EventLogWriter {
    /// A log whose Spec ID header declares `banks` (in that order), client platform class,
    /// spec version 2.0 errata 0, 64-bit UINTN. `banks` must not be empty or repeat a bank.
    #[must_use]
    pub fn new(banks: &[HashAlg]) -> Self {
        let mut unique: Vec<HashAlg> = Vec::with_capacity(banks.len());
        for bank in banks {
            if !unique.contains(bank) {
                unique.push(*bank);
            }
        }
        let mut spec = Writer::new();
        spec.bytes(SPEC_ID_EVENT03)
            .u32_le(0)
            .u8(0)
            .u8(2)
            .u8(0)
            .u8(2);
        spec.u32_le(u32::try_from(unique.len()).unwrap_or(0));
        for bank in &unique {
            spec.u16_le(bank.tpm_id())
                .u16_le(u16::try_from(bank.size()).unwrap_or(0));
        }
        spec.u8(0);
        let spec = spec.into_bytes();
        let mut out = Writer::new();
        // The header is a legacy TCG_PCR_EVENT with a zero SHA-1 digest (PFP §10.4.5.1).
        out.u32_le(0)
            .u32_le(EventType::EV_NO_ACTION.0)
            .bytes(&[0u8; 20]);
        out.u32_le(u32::try_from(spec.len()).unwrap_or(0))
            .bytes(&spec);
        Self { banks: unique, out }
    }

    /// The banks, in header order.
    #[must_use]
    pub fn banks(&self) -> &[HashAlg] {
        &self.banks
    }

    /// Appends an event whose digests are `H(data)` in every bank — how firmware measures
    /// most events (the data is what was measured).
    pub fn measure(&mut self, pcr: PcrIndex, event_type: EventType, data: &[u8]) -> &mut Self {
        let digests: Vec<Digest> = self.banks.iter().map(|b| b.hash(data)).collect();
        self.push(pcr, event_type, &digests, data)
    }

    /// Appends an event with given digests (one per bank, any order) and event data; for
    /// events whose digest is not the hash of their data (firmware blobs, images).
    /// Banks without a digest get `H(data)`.
    pub fn event(
        &mut self,
        pcr: PcrIndex,
        event_type: EventType,
        digests: &[Digest],
        data: &[u8],
    ) -> &mut Self {
        let all: Vec<Digest> = self
            .banks
            .iter()
            .map(|b| {
                digests
                    .iter()
                    .find(|d| d.alg() == *b)
                    .copied()
                    .unwrap_or_else(|| b.hash(data))
            })
            .collect();
        self.push(pcr, event_type, &all, data)
    }

    /// Appends the StartupLocality EV_NO_ACTION event (PFP §10.4.5.3). Must precede every
    /// PCR 0 measurement.
    pub fn startup_locality(&mut self, locality: u8) -> &mut Self {
        let mut data = STARTUP_LOCALITY.to_vec();
        data.push(locality);
        let zeros: Vec<Digest> = self.banks.iter().map(|b| Digest::zero(*b)).collect();
        self.push(PcrIndex::ZERO, EventType::EV_NO_ACTION, &zeros, &data)
    }

    fn push(
        &mut self,
        pcr: PcrIndex,
        event_type: EventType,
        digests: &[Digest],
        data: &[u8],
    ) -> &mut Self {
        self.out.u32_le(u32::from(pcr.get())).u32_le(event_type.0);
        self.out.u32_le(u32::try_from(digests.len()).unwrap_or(0));
        for d in digests {
            self.out.u16_le(d.alg().tpm_id()).bytes(d.as_bytes());
        }
        self.out
            .u32_le(u32::try_from(data.len()).unwrap_or(u32::MAX))
            .bytes(data);
        self
    }

    /// The log bytes so far (a valid log at any point).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.out.clone().into_bytes()
    }
}
