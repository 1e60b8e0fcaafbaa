//! TrustedFilter (`nova/scheduler/filters/trusted_filter.py`, Folsom–Pike): a flavor with
//! `trust:trusted_host` set lands only on a host whose attested level equals it exactly.
//! Absent or empty: pass without asking anyone. Unknown matches neither `trusted` nor
//! `untrusted`. Also reads the Placement-era alias `trait:CUSTOM_TRUSTED_HOST=required`
//! (= trusted) / `=forbidden` (= not trusted).

use trustpool_api::compute::flavor::TRUSTED_HOST_SPEC;
use trustpool_api::oat::TrustLevel;

use crate::host_state::HostState;
use crate::request::RequestSpec;

/// The Placement trait alias (`trait:CUSTOM_TRUSTED_HOST=required`).
pub const TRUSTED_TRAIT: &str = "trait:CUSTOM_TRUSTED_HOST";

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
    now_ms: i64,
    timeout_ms: i64,
) -> bool {
    let Some(requirement) = requirement(spec) else {
        return true;
    };
    // The host's slot in the trust cache, keyed by its hypervisor_hostname (Juno+); a
    // level older than attestation_auth_timeout reads as unknown.
    let level = host
        .trust
        .current(now_ms, timeout_ms)
        .unwrap_or(TrustLevel::Unknown);
    match requirement {
        Requirement::Level(wanted) => level != TrustLevel::Unknown && level.as_str() == wanted,
        Requirement::Trait { required } => (level == TrustLevel::Trusted) == required,
    }
}
