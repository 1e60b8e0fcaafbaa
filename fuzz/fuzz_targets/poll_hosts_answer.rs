//! A `PollHosts` answer as the scheduler reads it (bytes from the attestation server):
//! JSON, entries, `vtime` in ISO-8601 or `%c` — an error or hosts, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_api::oat::read_answer;
use trustpool_api::time::{parse_c_locale, parse_iso8601};

fuzz_target!(|data: &[u8]| {
    if let Ok(hosts) = read_answer(data, 1_800_000_000_000) {
        for h in hosts {
            let _ = h.level.as_str();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_iso8601(text);
        let _ = parse_c_locale(text);
    }
});
