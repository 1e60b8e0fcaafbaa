//! TPMT_PUBLIC / TPM2B_PUBLIC parsing, the Name, the AK checks and SPKI re-encoding of
//! whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_evidence::spki::{parse_spki_der, to_spki_der};
use trustpool_evidence::{AttestationKey, Public, VerifyOptions};

fuzz_target!(|data: &[u8]| {
    for parsed in [Public::parse(data), Public::parse_tpm2b(data)] {
        if let Ok(public) = parsed {
            let _ = public.name();
            let key = public.key.clone();
            // What we encode, we parse back to the same key.
            if let Ok(back) = parse_spki_der(&to_spki_der(&key)) {
                assert_eq!(back, key);
            }
            let _ = AttestationKey::new(public, VerifyOptions::default());
        }
    }
});
