//! What an unauthenticated client sends to `POST /v1/agents/register` and an administrator
//! to `POST /v1/hosts`, as the attestation server reads it: the JSON, then the host name and
//! alias checks. A clear error or an accepted name, never a panic; an accepted name is
//! DNS-shaped and bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpool_api::enrollment::RegisterRequest;
use trustpool_api::names::{MAX_ALIASES, MAX_NAME_LEN, check_aliases, check_name};
use trustpool_api::v1::AddHost;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<RegisterRequest>(data)
        && check_name(&request.host_name, "host_name").is_ok()
    {
        accepted(&request.host_name);
    }
    if let Ok(add) = serde_json::from_slice::<AddHost>(data)
        && check_name(&add.host_name, "host_name").is_ok()
        && check_aliases(&add.host_name, &add.aliases).is_ok()
    {
        accepted(&add.host_name);
        assert!(add.aliases.len() <= MAX_ALIASES);
        add.aliases.iter().for_each(|a| accepted(a));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && check_name(text, "name").is_ok()
    {
        accepted(text);
    }
});

fn accepted(name: &str) {
    assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN);
    assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
    assert!(!name.split('.').any(str::is_empty));
}
