//! TCG event log parsing, replay and decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_evidence::event_log::decode;
use trustpool_evidence::{EventLog, replay};

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = EventLog::parse(data) {
        if let Ok(replayed) = replay(&log) {
            let _ = replayed.values();
        }
        for event in &log.events {
            let _ = decode::decode(event).to_string();
            let _ = decode::description(event);
        }
    }
});
