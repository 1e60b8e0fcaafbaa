//! DER and PEM SubjectPublicKeyInfo parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_evidence::spki::{parse_spki_der, parse_spki_pem, to_spki_der};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = parse_spki_der(data) {
        // Strict DER: a key that parses re-encodes to exactly its input.
        assert_eq!(to_spki_der(&key), data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_spki_pem(text);
    }
});
