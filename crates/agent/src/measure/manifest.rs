//! The boot manifest of a development host: what "firmware", "SINIT/tboot" and the boot
//! loader measure, in TOML. Tampering a host for a demo or a test = changing one entry.
//!
//! ```toml
//! [bios]
//! version = "trustpool dev BIOS 1.0"        # EV_S_CRTM_VERSION, PCR 0
//! image = { text = "BIOS build 2026-11-01" } # EV_EFI_PLATFORM_FIRMWARE_BLOB2 "BIOS", PCR 0
//! [[option_rom]]                             # PCR 2
//! name = "nic0"
//! image = { sha256 = "…", sha384 = "…", sha1 = "…" }
//! [platform_config]                          # PCR 1
//! text = "SMT=on VT-d=on TXT=on"
//! [boot_loader]                              # PCR 4
//! image = { file = "/boot/efi/EFI/debian/grubx64.efi" }
//! [txt]                                      # optional dynamic launch (Intel TXT)
//! sinit_acm = { text = "SINIT ACM 2.1" }     # _TPM_Hash_Start: PCR 17 = H(0 ‖ H(ACM))
//! mle = { text = "tboot 1.10.5" }            # PCR 17, locality 3
//! hypervisor = { file = "/boot/vmlinuz" }    # PCR 18, locality 2
//! cmdline = "root=/dev/sda1 intel_iommu=on"  # PCR 18
//! initrd = { file = "/boot/initrd.img" }     # PCR 19
//! ```
//!
//! A measured thing is a `file` (hashed in every bank), `text` (its UTF-8 bytes hashed), or
//! declared digests for every active bank (`sha1`/`sha256`/`sha384`/`sha512`). Each DRTM
//! entry's PCR can be changed with `pcr = N` (17–22): the mapping differs between SINIT
//! versions and tboot policies, so it is configuration, not code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use trustpool_evidence::{Digest, HashAlg};

/// Largest file measured (a dev host's kernel or firmware image).
const MAX_MEASURED_FILE: u64 = 512 << 20;

/// What is measured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Measured {
    /// A file, hashed.
    File {
        /// Its path (relative paths are relative to the manifest).
        file: PathBuf,
    },
    /// Text, hashed as UTF-8.
    Text {
        /// The text.
        text: String,
    },
    /// Declared digests, one per active bank.
    Digests {
        /// SHA-1.
        sha1: Option<String>,
        /// SHA-256.
        sha256: Option<String>,
        /// SHA-384.
        sha384: Option<String>,
        /// SHA-512.
        sha512: Option<String>,
    },
}

/// Firmware.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bios {
    /// The CRTM version string.
    pub version: String,
    /// The firmware image.
    pub image: Measured,
}

/// An option ROM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionRom {
    /// Device name.
    pub name: String,
    /// The ROM image.
    pub image: Measured,
}

/// Platform configuration (PCR 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The configuration, as text.
    pub text: String,
}

/// The boot loader (PCR 4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootLoader {
    /// Its image.
    pub image: Measured,
}

/// A DRTM measurement with an optional PCR override.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DrtmEntry {
    /// Measured, default PCR.
    Plain(Measured),
    /// Measured into a given PCR.
    WithPcr {
        /// The PCR (17–22).
        pcr: u8,
        /// What.
        #[serde(flatten)]
        what: Measured,
    },
}

/// Intel TXT dynamic launch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Txt {
    /// The SINIT ACM (`_TPM_Hash_Start` hashes its bytes: a file or text, not digests).
    pub sinit_acm: Measured,
    /// The MLE (tboot).
    pub mle: DrtmEntry,
    /// The hypervisor kernel.
    pub hypervisor: DrtmEntry,
    /// Its command line.
    #[serde(default)]
    pub cmdline: Option<String>,
    /// The initrd.
    #[serde(default)]
    pub initrd: Option<DrtmEntry>,
}

/// A boot manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Firmware.
    pub bios: Bios,
    /// Option ROMs, in order.
    #[serde(default)]
    pub option_rom: Vec<OptionRom>,
    /// Platform configuration.
    pub platform_config: Option<PlatformConfig>,
    /// Boot loader.
    pub boot_loader: Option<BootLoader>,
    /// Dynamic launch.
    pub txt: Option<Txt>,
    #[serde(skip)]
    base: PathBuf,
}

/// A manifest problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Unreadable file.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or structure.
    #[error("{path}: {message}")]
    Parse {
        /// The manifest.
        path: String,
        /// toml's message.
        message: String,
    },
    /// A value the emulation cannot use.
    #[error("{entry}: {reason}")]
    Invalid {
        /// The entry (`bios.image`).
        entry: String,
        /// Why.
        reason: String,
    },
}

impl Manifest {
    /// Reads a manifest.
    ///
    /// # Errors
    /// A `ManifestError`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut manifest: Self = toml::from_str(&text).map_err(|e| ManifestError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        manifest.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(manifest)
    }

    /// Digests of a measured thing in each of `banks`.
    ///
    /// # Errors
    /// `Invalid` when a file cannot be read or a declared digest is missing or malformed.
    pub fn digests(
        &self,
        entry: &str,
        what: &Measured,
        banks: &[HashAlg],
    ) -> Result<Vec<Digest>, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            entry: entry.to_owned(),
            reason,
        };
        match what {
            Measured::Text { text } => Ok(banks.iter().map(|b| b.hash(text.as_bytes())).collect()),
            Measured::File { .. } => {
                let bytes = self.bytes(entry, what)?;
                Ok(banks.iter().map(|b| b.hash(&bytes)).collect())
            }
            Measured::Digests {
                sha1,
                sha256,
                sha384,
                sha512,
            } => {
                let declared: BTreeMap<HashAlg, &Option<String>> = [
                    (HashAlg::Sha1, sha1),
                    (HashAlg::Sha256, sha256),
                    (HashAlg::Sha384, sha384),
                    (HashAlg::Sha512, sha512),
                ]
                .into_iter()
                .collect();
                banks
                    .iter()
                    .map(|bank| {
                        let hex =
                            declared
                                .get(bank)
                                .and_then(|d| d.as_deref())
                                .ok_or_else(|| {
                                    invalid(format!(
                                        "no {bank} digest declared, but the TPM has a {bank} bank"
                                    ))
                                })?;
                        Digest::from_hex(*bank, hex).ok_or_else(|| {
                            invalid(format!("{bank} digest is not {} hex bytes", bank.size()))
                        })
                    })
                    .collect()
            }
        }
    }

    /// The raw bytes of a file or text entry (what `_TPM_Hash_Start` hashes).
    ///
    /// # Errors
    /// `Invalid` for declared digests or an unreadable/oversized file.
    pub fn bytes(&self, entry: &str, what: &Measured) -> Result<Vec<u8>, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            entry: entry.to_owned(),
            reason,
        };
        match what {
            Measured::Text { text } => Ok(text.as_bytes().to_vec()),
            Measured::File { file } => {
                let path = if file.is_absolute() {
                    file.clone()
                } else {
                    self.base.join(file)
                };
                let len = std::fs::metadata(&path)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?
                    .len();
                if len > MAX_MEASURED_FILE {
                    return Err(invalid(format!(
                        "{} is larger than {MAX_MEASURED_FILE} bytes",
                        path.display()
                    )));
                }
                std::fs::read(&path).map_err(|e| invalid(format!("{}: {e}", path.display())))
            }
            Measured::Digests { .. } => Err(invalid(
                "must be a file or text: the TPM hashes these bytes itself".to_owned(),
            )),
        }
    }
}

impl DrtmEntry {
    /// The measured thing and its PCR (the default unless overridden).
    #[must_use]
    pub fn parts(&self, default_pcr: u8) -> (&Measured, u8) {
        match self {
            Self::Plain(m) => (m, default_pcr),
            Self::WithPcr { pcr, what } => (what, *pcr),
        }
    }
}
