//! Event types: TCG PC Client Platform Firmware Profile (PFP) rev. 1.05, §10.4.1
//! (Table 9 "Events"), and the Intel TXT DRTM event types (Intel TXT Software Development
//! Guide, rev. 017, Appendix F "TPM Event Log", `EVTYPE_BASE` 0x400).

use core::fmt;

/// An event type (`TCG_PCR_EVENT2.eventType`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(pub u32);

macro_rules! event_types {
    ($($name:ident = $value:expr;)*) => {
        impl EventType {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Self = Self($value);
            )*

            /// The specification's name for this type, if it is a known one.
            #[must_use]
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// The type for a specification name (`EV_SEPARATOR`).
            #[must_use]
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some(Self::$name),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    EV_PREBOOT_CERT = 0x0000_0000;
    EV_POST_CODE = 0x0000_0001;
    EV_UNUSED = 0x0000_0002;
    EV_NO_ACTION = 0x0000_0003;
    EV_SEPARATOR = 0x0000_0004;
    EV_ACTION = 0x0000_0005;
    EV_EVENT_TAG = 0x0000_0006;
    EV_S_CRTM_CONTENTS = 0x0000_0007;
    EV_S_CRTM_VERSION = 0x0000_0008;
    EV_CPU_MICROCODE = 0x0000_0009;
    EV_PLATFORM_CONFIG_FLAGS = 0x0000_000A;
    EV_TABLE_OF_DEVICES = 0x0000_000B;
    EV_COMPACT_HASH = 0x0000_000C;
    EV_IPL = 0x0000_000D;
    EV_IPL_PARTITION_DATA = 0x0000_000E;
    EV_NONHOST_CODE = 0x0000_000F;
    EV_NONHOST_CONFIG = 0x0000_0010;
    EV_NONHOST_INFO = 0x0000_0011;
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x0000_0012;
    EV_POST_CODE2 = 0x0000_0013;
    EV_EFI_VARIABLE_DRIVER_CONFIG = 0x8000_0001;
    EV_EFI_VARIABLE_BOOT = 0x8000_0002;
    EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003;
    EV_EFI_BOOT_SERVICES_DRIVER = 0x8000_0004;
    EV_EFI_RUNTIME_SERVICES_DRIVER = 0x8000_0005;
    EV_EFI_GPT_EVENT = 0x8000_0006;
    EV_EFI_ACTION = 0x8000_0007;
    EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x8000_0008;
    EV_EFI_HANDOFF_TABLES = 0x8000_0009;
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000_000A;
    EV_EFI_HANDOFF_TABLES2 = 0x8000_000B;
    EV_EFI_VARIABLE_BOOT2 = 0x8000_000C;
    EV_EFI_GPT_EVENT2 = 0x8000_000D;
    EV_EFI_HCRTM_EVENT = 0x8000_0010;
    EV_EFI_VARIABLE_AUTHORITY = 0x8000_00E0;
    EV_EFI_SPDM_FIRMWARE_BLOB = 0x8000_00E1;
    EV_EFI_SPDM_FIRMWARE_CONFIG = 0x8000_00E2;
    EV_TXT_PCRMAPPING = 0x0000_0401;
    EV_TXT_HASH_START = 0x0000_0402;
    EV_TXT_COMBINED_HASH = 0x0000_0403;
    EV_TXT_MLE_HASH = 0x0000_0404;
    EV_TXT_BIOSAC_REG_DATA = 0x0000_040A;
    EV_TXT_CPU_SCRTM_STAT = 0x0000_040B;
    EV_TXT_LCP_CONTROL_HASH = 0x0000_040C;
    EV_TXT_ELEMENTS_HASH = 0x0000_040D;
    EV_TXT_STM_HASH = 0x0000_040E;
    EV_TXT_OSSINITDATA_CAP_HASH = 0x0000_040F;
    EV_TXT_SINIT_PUBKEY_HASH = 0x0000_0410;
    EV_TXT_LCP_HASH = 0x0000_0411;
    EV_TXT_LCP_DETAILS_HASH = 0x0000_0412;
    EV_TXT_LCP_AUTHORITIES_HASH = 0x0000_0413;
    EV_TXT_NV_INFO_HASH = 0x0000_0414;
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "EV_UNKNOWN({:#010x})", self.0),
        }
    }
}
