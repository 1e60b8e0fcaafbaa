//! Ports for test servers that must be named before they start (they are written into
//! configuration files). A port the kernel hands out for `127.0.0.1:0` comes from its
//! ephemeral range (32768–60999 on Linux), the same range every outgoing connection draws
//! from: between the moment it is found free and the moment the server binds it, one of the
//! test's many connections can take it ("the HTTPS listener did not start"). These are
//! chosen at random below that range instead, where only another test choosing the same
//! number could collide.

use std::hash::{BuildHasher as _, Hasher as _};
use std::net::TcpListener;

const LOW: u16 = 20_000;
const HIGH: u16 = 32_000;

fn random_below(n: u16) -> u16 {
    // RandomState is seeded randomly per thread and moves on with every instance.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    u16::try_from(r % u64::from(n.max(1))).unwrap_or(0)
}

/// `count` consecutive ports free on 127.0.0.1 right now, below the ephemeral range; the
/// first is returned.
#[must_use]
pub fn free_ports(count: u16) -> u16 {
    loop {
        let first = LOW.saturating_add(random_below(HIGH - LOW - count));
        let all_free = (0..count).all(|i| TcpListener::bind(("127.0.0.1", first + i)).is_ok());
        if all_free {
            return first;
        }
    }
}

/// A port free on 127.0.0.1 right now, below the ephemeral range.
#[must_use]
pub fn free_port() -> u16 {
    free_ports(1)
}
