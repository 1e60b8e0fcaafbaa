//! TrustedFilter (`nova/scheduler/filters/trusted_filter.py`, Folsom–Pike): a flavor with
//! `trust:trusted_host` set lands only on a host whose attested level equals it exactly.
//! Absent or empty: pass without asking anyone. Unknown matches neither `trusted` nor
//! `untrusted`. Also reads the Placement-era alias `trait:CUSTOM_TRUSTED_HOST=required`
//! (= trusted) / `=forbidden` (= not trusted).

use trustpool_api::compute::flavor::TRUSTED_HOST_SPEC;

use crate::host_state::HostState;
use crate::request::RequestSpec;

/// The Placement trait alias (`trait:CUSTOM_TRUSTED_HOST=required`).
pub const TRUSTED_TRAIT: &str = "trait:CUSTOM_TRUSTED_HOST";

/// Where the filter reads a host's level: the trust cache.
pub trait TrustLookup: Sync {
    /// The level of `nodename` valid at `now_ms` (verbatim, as the attestation server
    /// said it), or None when nothing current is known — never a stale level.
    fn level(&self, nodename: &str, now_ms: i64) -> Option<&str>;
}

/// What a flavor requires, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requirement<'a> {
    /// `trust:trusted_host` = this level exactly.
    Level(&'a str),
    /// The trait alias: trusted (`required`) or anything but (`forbidden`).
    Trait { required: bool },
}

/// The requirement of `spec`, if it has one.
pub(crate) fn requirement(spec: &RequestSpec) -> Option<Requirement<'_>> {
    let specs = &spec.flavor.extra_specs;
    if let Some(level) = specs.get(TRUSTED_HOST_SPEC).filter(|v| !v.is_empty()) {
        return Some(Requirement::Level(level));
    }
    match specs.get(TRUSTED_TRAIT).map(String::as_str) {
        Some("required") => Some(Requirement::Trait { required: true }),
        Some("forbidden") => Some(Requirement::Trait { required: false }),
        _ => None,
    }
}

pub(super) fn host_passes(
    host: &HostState,
    spec: &RequestSpec,
    trust: &dyn TrustLookup,
    now_ms: i64,
) -> bool {
    let Some(requirement) = requirement(spec) else {
        return true;
    };
    let level = trust.level(&host.nodename, now_ms).unwrap_or("unknown");
    match requirement {
        Requirement::Level(wanted) => level == wanted && level != "unknown",
        Requirement::Trait { required } => (level == "trusted") == required,
    }
}
