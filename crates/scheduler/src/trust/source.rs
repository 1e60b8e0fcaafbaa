//! The attestation server as the trust cache's source: `PollHosts` through
//! `trustpool-client` (the only HTTP client code).

use trustpool_client::OatClient;

use super::Poller;

pub(crate) use trustpool_client::error_chain;

impl Poller for OatClient {
    async fn poll_hosts(&self, hosts: Vec<String>) -> Result<Vec<u8>, String> {
        Self::poll_hosts(self, &hosts)
            .await
            .map_err(|e| error_chain(&e))
    }
}
