//! TPMT_SIGNATURE parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_evidence::Signature;

fuzz_target!(|data: &[u8]| {
    let _ = Signature::parse(data);
});
