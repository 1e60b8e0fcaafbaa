//! Event data, decoded for humans and for event-level reference values. Decoding never
//! makes a log invalid: what cannot be decoded is shown as raw bytes with the reason.
//! Structures: TCG PC Client Platform Firmware Profile rev. 1.05, §10.4 (UEFI events) and
//! §9.4 (`TCG_PCClientTaggedEvent`); UEFI 2.10 §3.3 (variables).

use core::fmt;

use crate::alg::hex_string;
use crate::codec::{ParseError, Reader};
use crate::event_log::replay::STARTUP_LOCALITY;
use crate::event_log::{Event, EventType, SPEC_ID_EVENT03};

/// Longest text or name shown (longer ones are cut, with "…").
const MAX_TEXT: usize = 512;

/// Decoded event data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventData {
    /// The crypto-agile header.
    SpecId,
    /// EV_NO_ACTION `StartupLocality`.
    StartupLocality(u8),
    /// Another EV_NO_ACTION event, by its signature.
    NoAction(String),
    /// EV_SEPARATOR: 0 for a normal boot, 1 (`0x00000001`) or 0xFFFFFFFF for an error.
    Separator(u32),
    /// Text: EV_S_CRTM_VERSION (UCS-2), EV_POST_CODE, EV_EFI_ACTION, EV_ACTION, EV_IPL,
    /// EV_COMPACT_HASH when printable.
    Text(String),
    /// `UEFI_VARIABLE_DATA` (EV_EFI_VARIABLE_*).
    EfiVariable {
        /// `VariableName` (the vendor GUID), textual.
        guid: String,
        /// The variable's name (UTF-16 decoded).
        name: String,
        /// `VariableDataLength`.
        data_len: u64,
    },
    /// `UEFI_PLATFORM_FIRMWARE_BLOB`.
    FirmwareBlob {
        /// `BlobBase`.
        base: u64,
        /// `BlobLength`.
        length: u64,
    },
    /// `UEFI_PLATFORM_FIRMWARE_BLOB2`.
    FirmwareBlob2 {
        /// `BlobDescription`.
        description: String,
        /// `BlobBase`.
        base: u64,
        /// `BlobLength`.
        length: u64,
    },
    /// `UEFI_IMAGE_LOAD_EVENT` (EV_EFI_BOOT_SERVICES_*, EV_EFI_RUNTIME_SERVICES_DRIVER).
    ImageLoad {
        /// `ImageLocationInMemory`.
        location: u64,
        /// `ImageLengthInMemory`.
        length: u64,
        /// `ImageLinkTimeAddress`.
        link_time_address: u64,
        /// `LengthOfDevicePath`.
        device_path_len: u64,
    },
    /// `TCG_PCClientTaggedEvent` (EV_EVENT_TAG).
    Tagged {
        /// `taggedEventID`.
        id: u32,
        /// `taggedEventData` as text when printable, else hex.
        data: String,
    },
    /// Anything else, or data that did not decode.
    Raw {
        /// Hex of up to the first 64 bytes.
        hex: String,
        /// Total length.
        len: usize,
        /// Why it was not decoded, when decoding was attempted.
        reason: Option<String>,
    },
}

impl fmt::Display for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SpecId => f.write_str("Spec ID Event03"),
            Self::StartupLocality(l) => write!(f, "StartupLocality {l}"),
            Self::NoAction(sig) => write!(f, "{sig}"),
            Self::Separator(v) => write!(f, "separator {v:#010x}"),
            Self::Text(t) if t.is_empty() => f.write_str("(empty)"),
            Self::Text(t) => f.write_str(t),
            Self::EfiVariable {
                guid,
                name,
                data_len,
            } => write!(f, "{name} ({guid}, {data_len} bytes)"),
            Self::FirmwareBlob { base, length } => {
                write!(f, "firmware blob at {base:#x}, {length} bytes")
            }
            Self::FirmwareBlob2 {
                description,
                base,
                length,
            } => write!(f, "{description} at {base:#x}, {length} bytes"),
            Self::ImageLoad {
                location, length, ..
            } => write!(f, "image at {location:#x}, {length} bytes"),
            Self::Tagged { id, data } => write!(f, "tag {id:#010x}: {data}"),
            Self::Raw { hex, len, reason } => match reason {
                Some(reason) => write!(f, "{len} bytes ({reason}): {hex}"),
                None => write!(f, "{len} bytes: {hex}"),
            },
        }
    }
}

/// Decodes an event's data according to its type.
#[must_use]
pub fn decode(event: &Event<'_>) -> EventData {
    let data = event.data;
    let attempt = match event.event_type {
        EventType::EV_NO_ACTION => Ok(decode_no_action(data)),
        EventType::EV_SEPARATOR => match data {
            [a, b, c, d] => Ok(EventData::Separator(u32::from_le_bytes([*a, *b, *c, *d]))),
            _ => Err("separator is not 4 bytes".to_owned()),
        },
        EventType::EV_S_CRTM_VERSION => Ok(EventData::Text(ucs2_or_ascii(data))),
        EventType::EV_POST_CODE
        | EventType::EV_EFI_ACTION
        | EventType::EV_ACTION
        | EventType::EV_IPL
        | EventType::EV_S_CRTM_CONTENTS
        | EventType::EV_COMPACT_HASH
        | EventType::EV_OMIT_BOOT_DEVICE_EVENTS => printable(data)
            .map(EventData::Text)
            .ok_or_else(|| "not text".to_owned()),
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        | EventType::EV_EFI_VARIABLE_BOOT
        | EventType::EV_EFI_VARIABLE_BOOT2
        | EventType::EV_EFI_VARIABLE_AUTHORITY => decode_variable(data).map_err(|e| e.to_string()),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB => decode_blob(data).map_err(|e| e.to_string()),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2 => decode_blob2(data).map_err(|e| e.to_string()),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
        | EventType::EV_EFI_BOOT_SERVICES_DRIVER
        | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => {
            decode_image(data).map_err(|e| e.to_string())
        }
        EventType::EV_EVENT_TAG => decode_tagged(data).map_err(|e| e.to_string()),
        _ => return raw(data, None),
    };
    attempt.unwrap_or_else(|reason| raw(data, Some(reason)))
}

/// A one-line description used for event-level reference values: the text, variable
/// name, blob description or tag — stable across boots (no addresses).
#[must_use]
pub fn description(event: &Event<'_>) -> String {
    match decode(event) {
        EventData::Text(t) => t,
        EventData::EfiVariable { name, .. } => name,
        EventData::FirmwareBlob2 { description, .. } => description,
        EventData::Tagged { data, .. } => data,
        EventData::NoAction(sig) => sig,
        other => match other {
            EventData::FirmwareBlob { .. }
            | EventData::ImageLoad { .. }
            | EventData::Raw { .. } => String::new(),
            shown => shown.to_string(),
        },
    }
}

fn raw(data: &[u8], reason: Option<String>) -> EventData {
    EventData::Raw {
        hex: hex_string(data.get(..64).unwrap_or(data)),
        len: data.len(),
        reason,
    }
}

fn decode_no_action(data: &[u8]) -> EventData {
    if data.starts_with(SPEC_ID_EVENT03) {
        return EventData::SpecId;
    }
    if data.starts_with(STARTUP_LOCALITY) {
        return EventData::StartupLocality(data.get(STARTUP_LOCALITY.len()).copied().unwrap_or(0));
    }
    let sig = data.get(..16).unwrap_or(data);
    printable(sig).map_or_else(|| raw(data, None), EventData::NoAction)
}

fn cut(mut text: String) -> String {
    if text.chars().count() > MAX_TEXT {
        text = text.chars().take(MAX_TEXT).collect();
        text.push('…');
    }
    text
}

/// Printable ASCII/UTF-8 with trailing NULs removed, or `None`.
fn printable(data: &[u8]) -> Option<String> {
    let trimmed = data.strip_suffix(&[0]).unwrap_or(data);
    let text = core::str::from_utf8(trimmed).ok()?;
    let ok = text
        .chars()
        .all(|c| !c.is_control() || c == '\n' || c == '\t');
    ok.then(|| cut(text.trim_end_matches('\0').to_owned()))
}

fn utf16(data: &[u8]) -> Option<String> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|p| match p {
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        })
        .collect();
    if !data.len().is_multiple_of(2) {
        return None;
    }
    String::from_utf16(&units)
        .ok()
        .map(|s| cut(s.trim_end_matches('\0').to_owned()))
}

fn ucs2_or_ascii(data: &[u8]) -> String {
    // Firmware writes the CRTM version as a UCS-2 string; some write ASCII or raw bytes.
    let looks_utf16 = data.len() >= 2 && data.get(1) == Some(&0);
    if looks_utf16 && let Some(text) = utf16(data) {
        return text;
    }
    printable(data).unwrap_or_else(|| hex_string(data))
}

fn guid(bytes: &[u8; 16]) -> String {
    // EFI_GUID: u32, u16, u16 little-endian, then 8 bytes in order.
    let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = *bytes;
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32::from_le_bytes([a0, a1, a2, a3]),
        u16::from_le_bytes([b0, b1]),
        u16::from_le_bytes([c0, c1]),
        hex_string(rest.get(..2).unwrap_or(&[])),
        hex_string(rest.get(2..).unwrap_or(&[]))
    )
}

fn decode_variable(data: &[u8]) -> Result<EventData, ParseError> {
    let mut r = Reader::new(data);
    let g = guid(r.take_array::<16>("UEFI_VARIABLE_DATA.VariableName")?);
    let name_len = r.u64_le("UEFI_VARIABLE_DATA.UnicodeNameLength")?;
    let data_len = r.u64_le("UEFI_VARIABLE_DATA.VariableDataLength")?;
    let name_bytes = usize::try_from(name_len)
        .ok()
        .and_then(|n| n.checked_mul(2))
        .ok_or(ParseError::TooLarge {
            what: "UEFI_VARIABLE_DATA.UnicodeNameLength",
            offset: 16,
            len: name_len,
            max: u64::try_from(data.len()).unwrap_or(u64::MAX),
        })?;
    let name = r.take(name_bytes, "UEFI_VARIABLE_DATA.UnicodeName")?;
    let name = utf16(name).ok_or(ParseError::BadEncoding {
        what: "UEFI_VARIABLE_DATA.UnicodeName",
        reason: "not UTF-16",
    })?;
    let data_bytes = usize::try_from(data_len).unwrap_or(usize::MAX);
    r.take(data_bytes, "UEFI_VARIABLE_DATA.VariableData")?;
    r.finish("UEFI_VARIABLE_DATA")?;
    Ok(EventData::EfiVariable {
        guid: g,
        name,
        data_len,
    })
}

fn decode_blob(data: &[u8]) -> Result<EventData, ParseError> {
    let mut r = Reader::new(data);
    let base = r.u64_le("UEFI_PLATFORM_FIRMWARE_BLOB.BlobBase")?;
    let length = r.u64_le("UEFI_PLATFORM_FIRMWARE_BLOB.BlobLength")?;
    r.finish("UEFI_PLATFORM_FIRMWARE_BLOB")?;
    Ok(EventData::FirmwareBlob { base, length })
}

fn decode_blob2(data: &[u8]) -> Result<EventData, ParseError> {
    let mut r = Reader::new(data);
    let len = r.u8("UEFI_PLATFORM_FIRMWARE_BLOB2.BlobDescriptionSize")?;
    let desc = r.take(
        usize::from(len),
        "UEFI_PLATFORM_FIRMWARE_BLOB2.BlobDescription",
    )?;
    let base = r.u64_le("UEFI_PLATFORM_FIRMWARE_BLOB2.BlobBase")?;
    let length = r.u64_le("UEFI_PLATFORM_FIRMWARE_BLOB2.BlobLength")?;
    r.finish("UEFI_PLATFORM_FIRMWARE_BLOB2")?;
    let description = printable(desc).unwrap_or_else(|| hex_string(desc));
    Ok(EventData::FirmwareBlob2 {
        description,
        base,
        length,
    })
}

fn decode_image(data: &[u8]) -> Result<EventData, ParseError> {
    let mut r = Reader::new(data);
    let location = r.u64_le("UEFI_IMAGE_LOAD_EVENT.ImageLocationInMemory")?;
    let length = r.u64_le("UEFI_IMAGE_LOAD_EVENT.ImageLengthInMemory")?;
    let link_time_address = r.u64_le("UEFI_IMAGE_LOAD_EVENT.ImageLinkTimeAddress")?;
    let device_path_len = r.u64_le("UEFI_IMAGE_LOAD_EVENT.LengthOfDevicePath")?;
    r.take(
        usize::try_from(device_path_len).unwrap_or(usize::MAX),
        "UEFI_IMAGE_LOAD_EVENT.DevicePath",
    )?;
    r.finish("UEFI_IMAGE_LOAD_EVENT")?;
    Ok(EventData::ImageLoad {
        location,
        length,
        link_time_address,
        device_path_len,
    })
}

fn decode_tagged(data: &[u8]) -> Result<EventData, ParseError> {
    let mut r = Reader::new(data);
    let id = r.u32_le("TCG_PCClientTaggedEvent.taggedEventID")?;
    let body = r.sized_le32(data.len(), "TCG_PCClientTaggedEvent.taggedEventData")?;
    r.finish("TCG_PCClientTaggedEvent")?;
    Ok(EventData::Tagged {
        id,
        data: printable(body).unwrap_or_else(|| hex_string(body.get(..64).unwrap_or(body))),
    })
}
