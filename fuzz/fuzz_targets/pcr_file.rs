//! The tpm2-tools PCR file (serialized and values formats).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_evidence::PcrSelection;
use trustpool_evidence::tpm2_tools::parse_pcr_file;

fuzz_target!(|data: &[u8]| {
    let _ = parse_pcr_file(data, None);
    if let Some(selection) = PcrSelection::parse_list("sha256:0,1,2,3,4,5,6,7") {
        let _ = parse_pcr_file(data, Some(&selection));
    }
});
