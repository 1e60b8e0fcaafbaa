//! Following the attestation server between requests: the cache is kept fresh by a
//! periodic batched poll, changes pushed by the server's trust stream apply at once, and
//! a running instance whose host turns `untrusted` is flagged (`trust_alert` on the
//! server, a `trust_alert` instance action, a warning in the log) for an operator to
//! evacuate. `unknown` (the server is down, the host went silent) excludes the host from
//! new placements but raises no alert: nothing was proven against it.

use std::sync::Arc;
use std::time::Duration;

use trustpool_api::compute::server::TrustAlert;
use trustpool_api::oat::TrustLevel;
use trustpool_api::time::{now_ms, rfc3339};
use trustpool_client::TrustStream;
use trustpool_client::oat::StreamEvent;

use super::{Service, flavor_spec};
use crate::filters::trusted_requirement;
use crate::request::RequestSpec;
use crate::trust::source::error_chain;

impl Service {
    /// Raises alerts on running instances that asked for a trusted host whose host is now
    /// `untrusted` (only `hosts`, or all when None).
    pub async fn check_trust_alerts(&self, hosts: Option<&[String]>, reasons: &[String]) {
        let now = now_ms();
        let mut raised = Vec::new();
        {
            let mut state = self.write();
            for server in state.servers.values_mut() {
                let Some(host) = server.host.clone() else {
                    continue;
                };
                if server.status != "ACTIVE"
                    || server.trust_alert.is_some()
                    || hosts.is_some_and(|h| !h.contains(&host))
                {
                    continue;
                }
                let spec = RequestSpec {
                    flavor: flavor_spec(&server.flavor),
                    ..RequestSpec::default()
                };
                let wants_trusted = matches!(
                    trusted_requirement(&spec),
                    Some(crate::filters::Requirement::Level("trusted"))
                        | Some(crate::filters::Requirement::Trait { required: true })
                );
                if !wants_trusted {
                    continue;
                }
                let level = self.trust.current_level(&host, now);
                if level != TrustLevel::Untrusted {
                    continue;
                }
                server.trust_alert = Some(TrustAlert {
                    trust_lvl: level.as_str().to_owned(),
                    since: rfc3339(now),
                    reasons: reasons.to_vec(),
                });
                server.updated_at = now;
                raised.push(server.clone());
            }
        }
        for server in raised {
            tracing::warn!(server = %server.id, host = server.host.as_deref().unwrap_or(""), "trust alert: the host of a trusted instance is no longer trusted");
            let message = format!(
                "host {} is untrusted{}",
                server.host.as_deref().unwrap_or(""),
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", reasons.join("; "))
                }
            );
            let stored = self.store.put_server(&server).await;
            let action = self
                .store
                .add_action(&server.id, "trust_alert", Some(&message))
                .await;
            if let Err(e) = stored.and(action) {
                tracing::error!(error = %e, "storing a trust alert failed");
            }
        }
    }

    /// Polls whenever entries are about to expire, then checks alerts.
    pub async fn keep_fresh(self: Arc<Self>) {
        let Some(oat) = &self.oat else {
            return;
        };
        let period = self
            .config
            .attestation
            .as_ref()
            .map_or(Duration::from_secs(30), |a| a.auth_timeout / 2)
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            let names: Vec<String> = self.read().nodes.keys().cloned().collect();
            if names.is_empty() {
                continue;
            }
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            // Poll a period before expiry so requests rarely wait for a poll.
            let margin = i64::try_from(period.as_millis()).unwrap_or(0);
            self.trust.ensure_fresh(&refs, oat, &now_ms, margin).await;
            self.check_trust_alerts(None, &[]).await;
        }
    }

    /// Follows `GET /v1/trust/stream`, reconnecting with back-off.
    pub async fn follow_stream(self: Arc<Self>) {
        let Some(a) = self.config.attestation.clone() else {
            return;
        };
        let Some(token) = a.stream_token.clone() else {
            return;
        };
        let mut wait = Duration::from_secs(1);
        loop {
            match self.stream_once(&a, &token.0).await {
                Ok(()) => {
                    tracing::info!("trust stream closed by the server; reconnecting");
                    wait = Duration::from_secs(1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "trust stream failed; retrying in {} s", wait.as_secs())
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    async fn stream_once(&self, a: &crate::conf::Attestation, token: &str) -> Result<(), String> {
        let ca = std::fs::read_to_string(&a.ca_file).map_err(|e| e.to_string())?;
        let mut stream = TrustStream::connect(&a.base_url(), ca, token, Duration::from_secs(45))
            .await
            .map_err(|e| error_chain(&e))?;
        tracing::info!("following the attestation server's trust stream");
        while let Some(event) = stream.next().await.map_err(|e| error_chain(&e))? {
            match event {
                StreamEvent::Change(change) => {
                    // Only this scheduler's compute nodes among the change's names are
                    // written (an unreadable vtime reads unknown).
                    let nodes = self.trust.apply_stream_change(&change, now_ms());
                    if !nodes.is_empty() {
                        self.check_trust_alerts(Some(&nodes), &change.reasons).await;
                    }
                }
                StreamEvent::Resync => {
                    if let Some(oat) = &self.oat {
                        self.trust.refresh(oat, &now_ms).await;
                        self.check_trust_alerts(None, &[]).await;
                    }
                }
            }
        }
        Ok(())
    }
}
