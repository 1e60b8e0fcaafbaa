//! Measured-boot emulation for development hosts on swtpm (never on a hardware TPM).

pub mod boot;
pub mod manifest;
pub mod swtpm_ctrl;

pub use boot::{BootError, BootOutcome, measure_boot};
pub use manifest::{Manifest, ManifestError};
