//! The attestation server as the trust cache's source: `PollHosts` through
//! `trustpool-client` (the only HTTP client code).

use trustpool_client::OatClient;

use super::Poller;

/// "outer: inner: innermost".
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl Poller for OatClient {
    async fn poll_hosts(&self, hosts: Vec<String>) -> Result<Vec<u8>, String> {
        Self::poll_hosts(self, &hosts)
            .await
            .map_err(|e| error_chain(&e))
    }
}
