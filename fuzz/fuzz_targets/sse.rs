//! The trust stream's event-stream reader (bytes from the attestation server): split the
//! input at an arbitrary point to exercise chunk boundaries; it must return events or an
//! error, never panic or grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_api::sse::{MAX_EVENT, SseParser};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(split);
    let mut parser = SseParser::default();
    for chunk in [a, b] {
        match parser.push(chunk) {
            Ok(events) => {
                for e in events {
                    assert!(e.data.len() < MAX_EVENT);
                }
            }
            Err(_) => return,
        }
    }
});
