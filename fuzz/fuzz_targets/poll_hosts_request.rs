//! A `PollHosts` request as the attestation server reads it (bytes from Nova or anyone
//! who reaches the port): a host list or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_api::oat::{MAX_POLL_HOSTS, PollHostsRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<PollHostsRequest>(data) {
        assert!(request.hosts.len() <= MAX_POLL_HOSTS);
    }
});
