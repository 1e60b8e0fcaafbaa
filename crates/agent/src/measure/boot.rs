//! The emulated measured boot: power-cycle the swtpm, then extend the PCRs in the order
//! real firmware, SINIT and tboot would, writing the matching crypto-agile event log.
//!
//! SRTM (locality 0, PCR 0–7): CRTM version and BIOS image (0), option ROMs (2), platform
//! configuration (1), separator (7), boot loader (4), separators (0–6).
//! DRTM (Intel TXT, when the manifest has `[txt]`): `_TPM_Hash_Start/Data/End` with the
//! SINIT ACM (PCR 17–22 reset to zero, PCR 17 = H(0 ‖ H(ACM))), then the MLE into PCR 17
//! at locality 3, and the hypervisor, its command line and initrd into PCR 18/19 at
//! locality 2 — each with its event in the same log.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use trustpool_evidence::event_log::writer::EventLogWriter;
use trustpool_evidence::{Digest, EventLog, EventType, HashAlg, PcrIndex, PcrValues, replay};
use tss_esapi::Context;
use tss_esapi::constants::{PropertyTag, StartupType};
use tss_esapi::handles::PcrHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{DigestValues, PcrSelectionListBuilder, PcrSlot};
use tss_esapi::tcti_ldr::TctiNameConf;

use crate::measure::manifest::{Manifest, ManifestError, Measured};
use crate::measure::swtpm_ctrl::{SwtpmAddress, SwtpmError};

/// Why the emulated boot failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The swtpm channels.
    #[error(transparent)]
    Swtpm(#[from] SwtpmError),
    /// A TPM command through libtss2.
    #[error("TPM command {op} failed")]
    Tpm {
        /// The command.
        op: &'static str,
        /// Why.
        #[source]
        source: tss_esapi::Error,
    },
    /// Not an swtpm: the emulation refuses hardware TPMs.
    #[error(
        "the TPM at {tcti} reports vendor {vendor:?}, not swtpm: measured-boot emulation never runs on a hardware TPM"
    )]
    NotSoftware {
        /// TCTI.
        tcti: String,
        /// Its vendor string.
        vendor: String,
    },
    /// Writing the log.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Self-check: the written log does not replay to the TPM's PCRs.
    #[error("the event log does not replay to the TPM's PCRs: {0}")]
    SelfCheck(String),
}

fn tpm(op: &'static str) -> impl FnOnce(tss_esapi::Error) -> BootError {
    move |source| BootError::Tpm { op, source }
}

/// What an emulated boot produced.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    /// Where the log was written.
    pub event_log: PathBuf,
    /// Number of events (the header included).
    pub events: usize,
    /// The PCR values the TPM holds now (all active banks, PCR 0–23).
    pub pcrs: PcrValues,
}

struct Event {
    pcr: u8,
    event_type: EventType,
    digests: Vec<Digest>,
    data: Vec<u8>,
    locality: u8,
}

fn blob2(description: &str, base: u64, length: u64) -> Vec<u8> {
    let mut data = vec![u8::try_from(description.len()).unwrap_or(u8::MAX)];
    data.extend_from_slice(
        description
            .as_bytes()
            .get(..255)
            .unwrap_or(description.as_bytes()),
    );
    data.extend_from_slice(&base.to_le_bytes());
    data.extend_from_slice(&length.to_le_bytes());
    data
}

fn image_load(length: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(32);
    for v in [0x7e00_0000u64, length, 0, 0] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    data
}

fn measured_len(manifest: &Manifest, entry: &str, what: &Measured) -> u64 {
    manifest
        .bytes(entry, what)
        .map_or(0, |b| u64::try_from(b.len()).unwrap_or(0))
}

/// The events of a manifest, in firmware order, for the given banks.
fn plan(
    manifest: &Manifest,
    banks: &[HashAlg],
) -> Result<(Vec<Event>, Option<Vec<u8>>), BootError> {
    let mut events = Vec::new();
    let mut push =
        |pcr: u8, event_type: EventType, digests: Vec<Digest>, data: Vec<u8>, locality: u8| {
            events.push(Event {
                pcr,
                event_type,
                digests,
                data,
                locality,
            })
        };
    let version: Vec<u8> = manifest
        .bios
        .version
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    push(
        0,
        EventType::EV_S_CRTM_VERSION,
        banks.iter().map(|b| b.hash(&version)).collect(),
        version,
        0,
    );
    let bios = manifest.digests("bios.image", &manifest.bios.image, banks)?;
    push(
        0,
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
        bios,
        blob2(
            "BIOS",
            0xffc0_0000,
            measured_len(manifest, "bios.image", &manifest.bios.image),
        ),
        0,
    );
    for (i, rom) in manifest.option_rom.iter().enumerate() {
        let entry = format!("option_rom[{i}]");
        let digests = manifest.digests(&entry, &rom.image, banks)?;
        push(
            2,
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
            digests,
            blob2(
                &format!("option ROM {}", rom.name),
                0,
                measured_len(manifest, &entry, &rom.image),
            ),
            0,
        );
    }
    if let Some(config) = &manifest.platform_config {
        let data = config.text.as_bytes().to_vec();
        push(
            1,
            EventType::EV_PLATFORM_CONFIG_FLAGS,
            banks.iter().map(|b| b.hash(&data)).collect(),
            data,
            0,
        );
    }
    let separator = [0u8; 4];
    push(
        7,
        EventType::EV_SEPARATOR,
        banks.iter().map(|b| b.hash(&separator)).collect(),
        separator.to_vec(),
        0,
    );
    if let Some(loader) = &manifest.boot_loader {
        let digests = manifest.digests("boot_loader.image", &loader.image, banks)?;
        push(
            4,
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            digests,
            image_load(measured_len(manifest, "boot_loader.image", &loader.image)),
            0,
        );
    }
    for pcr in 0..7u8 {
        push(
            pcr,
            EventType::EV_SEPARATOR,
            banks.iter().map(|b| b.hash(&separator)).collect(),
            separator.to_vec(),
            0,
        );
    }
    let mut acm = None;
    if let Some(txt) = &manifest.txt {
        let acm_bytes = manifest.bytes("txt.sinit_acm", &txt.sinit_acm)?;
        // Logged, not extended: _TPM_Hash_End does the extend.
        push(
            17,
            EventType::EV_TXT_HASH_START,
            banks.iter().map(|b| b.hash(&acm_bytes)).collect(),
            b"SINIT ACM".to_vec(),
            4,
        );
        acm = Some(acm_bytes);
        let (mle, mle_pcr) = txt.mle.parts(17);
        push(
            mle_pcr,
            EventType::EV_TXT_MLE_HASH,
            manifest.digests("txt.mle", mle, banks)?,
            b"MLE".to_vec(),
            3,
        );
        let (hv, hv_pcr) = txt.hypervisor.parts(18);
        push(
            hv_pcr,
            EventType::EV_IPL,
            manifest.digests("txt.hypervisor", hv, banks)?,
            b"vmlinuz".to_vec(),
            2,
        );
        if let Some(cmdline) = &txt.cmdline {
            let data = format!("cmdline: {cmdline}").into_bytes();
            push(
                18,
                EventType::EV_IPL,
                banks.iter().map(|b| b.hash(cmdline.as_bytes())).collect(),
                data,
                2,
            );
        }
        if let Some(initrd) = &txt.initrd {
            let (what, pcr) = initrd.parts(19);
            push(
                pcr,
                EventType::EV_IPL,
                manifest.digests("txt.initrd", what, banks)?,
                b"initrd".to_vec(),
                2,
            );
        }
    }
    for e in &events {
        if e.pcr > 23 || (e.locality > 0 && !(17..=22).contains(&e.pcr)) {
            return Err(ManifestError::Invalid {
                entry: "txt".to_owned(),
                reason: format!("PCR {} is not a DRTM PCR (17-22)", e.pcr),
            }
            .into());
        }
    }
    Ok((events, acm))
}

fn hashing(alg: HashAlg) -> HashingAlgorithm {
    match alg {
        HashAlg::Sha1 => HashingAlgorithm::Sha1,
        HashAlg::Sha384 => HashingAlgorithm::Sha384,
        HashAlg::Sha512 => HashingAlgorithm::Sha512,
        _ => HashingAlgorithm::Sha256,
    }
}

fn open(tcti: &str) -> Result<Context, BootError> {
    let conf = TctiNameConf::from_str(tcti).map_err(tpm("TCTI"))?;
    Context::new(conf).map_err(tpm("open TCTI"))
}

fn vendor(ctx: &mut Context) -> Result<String, BootError> {
    let mut vendor = String::new();
    for tag in [
        PropertyTag::VendorString1,
        PropertyTag::VendorString2,
        PropertyTag::VendorString3,
        PropertyTag::VendorString4,
    ] {
        let v = ctx
            .get_tpm_property(tag)
            .map_err(tpm("GetCapability"))?
            .unwrap_or(0);
        vendor.extend(
            v.to_be_bytes()
                .iter()
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .map(|b| char::from(*b)),
        );
    }
    Ok(vendor.trim().to_owned())
}

fn active_banks(ctx: &mut Context) -> Result<Vec<HashAlg>, BootError> {
    let banks = crate::tpm::active_banks(ctx).map_err(tpm("GetCapability(PCRS)"))?;
    Ok(banks
        .into_iter()
        .filter_map(|alg| match alg {
            HashingAlgorithm::Sha1 => Some(HashAlg::Sha1),
            HashingAlgorithm::Sha256 => Some(HashAlg::Sha256),
            HashingAlgorithm::Sha384 => Some(HashAlg::Sha384),
            HashingAlgorithm::Sha512 => Some(HashAlg::Sha512),
            _ => None,
        })
        .collect())
}

/// Reads PCR 0–23 of every bank.
fn read_pcrs(ctx: &mut Context, banks: &[HashAlg]) -> Result<PcrValues, BootError> {
    let slots: Vec<PcrSlot> = (0..24u32)
        .filter_map(|i| PcrSlot::try_from(1u32 << i).ok())
        .collect();
    let mut builder = PcrSelectionListBuilder::new();
    for bank in banks {
        builder = builder.with_selection(hashing(*bank), &slots);
    }
    let list = builder.build().map_err(tpm("PCR selection"))?;
    let data = crate::tpm::read_pcrs(ctx, list)
        .map_err(|e| BootError::SelfCheck(format!("reading PCRs: {e}")))?;
    let mut values = PcrValues::new();
    for bank in banks {
        let Some(pcrs) = data.pcr_bank(hashing(*bank)) else {
            continue;
        };
        for (i, slot) in (0..24u8).zip(slots.iter()) {
            if let (Some(index), Some(d)) = (PcrIndex::new(i), pcrs.get_digest(*slot))
                && let Some(digest) = Digest::new(*bank, d.value())
            {
                values.insert(index, digest);
            }
        }
    }
    Ok(values)
}

/// Runs the emulated boot against the swtpm at `tcti` and writes the log to `log_path`.
///
/// # Errors
/// A `BootError`; nothing is written unless every step succeeded.
pub fn measure_boot(
    tcti: &str,
    manifest: &Manifest,
    log_path: &Path,
) -> Result<BootOutcome, BootError> {
    let swtpm = SwtpmAddress::from_tcti(tcti)?;
    // What an OS does before a reboot: an orderly TPM2_Shutdown(CLEAR) saves the TPM's
    // Clock (TPM 2.0 Part 1 §36.6), so quotes after this boot say clockInfo.safe = YES, as
    // a real host's do. A TPM never started (fresh swtpm) refuses it: nothing to save.
    if let Ok(mut ctx) = open(tcti) {
        let _ = ctx.shutdown(StartupType::Clear);
    }
    swtpm.power_cycle()?;
    let mut ctx = open(tcti)?;
    match ctx.startup(StartupType::Clear) {
        Ok(()) => {}
        // TPM_RC_INITIALIZE: swtpm already ran TPM2_Startup after the power cycle.
        Err(e) if e.to_string().contains("initialize") || e.to_string().contains("0x00000100") => {}
        Err(e) => {
            return Err(BootError::Tpm {
                op: "Startup",
                source: e,
            });
        }
    }
    let vendor = vendor(&mut ctx)?;
    if !vendor.replace(' ', "").eq_ignore_ascii_case("SWTPM") {
        return Err(BootError::NotSoftware {
            tcti: tcti.to_owned(),
            vendor,
        });
    }
    let banks = active_banks(&mut ctx)?;
    let (events, acm) = plan(manifest, &banks)?;
    let mut log = EventLogWriter::new(&banks);
    for e in events.iter().filter(|e| e.locality == 0) {
        let mut values = DigestValues::new();
        for d in &e.digests {
            let digest = tss_esapi::structures::Digest::try_from(d.as_bytes().to_vec())
                .map_err(tpm("digest"))?;
            values.set(hashing(d.alg()), digest);
        }
        let handle = PcrHandle::try_from(
            tss_esapi::tss2_esys::ESYS_TR_PCR0.saturating_add(u32::from(e.pcr)),
        )
        .map_err(tpm("PCR handle"))?;
        ctx.execute_with_nullauth_session(|ctx| ctx.pcr_extend(handle, values))
            .map_err(tpm("PCR_Extend"))?;
        log.event(
            PcrIndex::new(e.pcr).unwrap_or(PcrIndex::ZERO),
            e.event_type,
            &e.digests,
            &e.data,
        );
    }
    // swtpm serves one client at a time: release libtss2's connection for the raw steps.
    drop(ctx);
    if let Some(acm) = acm {
        swtpm.hash_sequence(&acm)?;
        for e in events.iter().filter(|e| e.locality > 0) {
            if e.event_type != EventType::EV_TXT_HASH_START {
                swtpm.set_locality(e.locality)?;
                let result = swtpm.pcr_extend(e.pcr, &e.digests);
                swtpm.set_locality(0)?;
                result?;
            }
            log.event(
                PcrIndex::new(e.pcr).unwrap_or(PcrIndex::ZERO),
                e.event_type,
                &e.digests,
                &e.data,
            );
        }
    }
    let bytes = log.to_bytes();
    // Self-check before writing: the log must replay to what the TPM now holds.
    let mut ctx = open(tcti)?;
    let pcrs = read_pcrs(&mut ctx, &banks)?;
    drop(ctx);
    let parsed = EventLog::parse(&bytes).map_err(|e| BootError::SelfCheck(e.to_string()))?;
    replay(&parsed)
        .and_then(|r| r.compare(&pcrs))
        .map_err(|e| BootError::SelfCheck(e.to_string()))?;
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| BootError::Write {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let tmp = log_path.with_extension("tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, log_path))
        .map_err(|source| BootError::Write {
            path: log_path.display().to_string(),
            source,
        })?;
    Ok(BootOutcome {
        event_log: log_path.to_path_buf(),
        events: parsed.events.len(),
        pcrs,
    })
}
