//! TPMS_ATTEST / TPM2B_ATTEST parsing, and verification of whatever parses against a fixed
//! key (the verifier must reject, never panic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_evidence::{Attest, Attested};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Attest::parse(data) {
        assert_eq!(a.raw(), data);
        if let Attested::Quote(q) = &a.attested {
            let _ = q.pcr_select.to_string();
        }
    }
    let _ = Attest::parse_tpm2b(data);
});
