//! Following the attestation server between requests: the cache is kept fresh by a
//! periodic batched poll, changes pushed by the server's trust stream apply at once, and
//! running instances that asked for a trusted host are watched:
//!
//! - their host turns `untrusted`: flagged at once (`trust_alert` on the server with the
//!   server's reasons, a `trust_alert` instance action, a warning in the log) for an
//!   operator to evacuate;
//! - their host stays `unknown` (no current verdict: agent stopped, network cut, attestation
//!   server unreachable) for longer than `[trustpool] trust_alert_grace_seconds`: the same
//!   alert, level `unknown`, saying how long the host has been silent. Silence is an alert
//!   too: nothing vouches for those instances any more. After a failed poll *every* host is
//!   unknown, so an attestation server down for longer than the grace period alerts every
//!   trusted instance — that is the truth, and the grace period (longer than the poll
//!   back-off's first steps) keeps a blip from raising anything. "Unknown since" is kept in
//!   memory: a scheduler restart restarts the grace period (raised alerts are stored with
//!   their servers and survive it);
//! - their host is `trusted` again: the alert is removed, a `trust_alert_cleared` instance
//!   action records it, an info line is logged.
//!
//! An `unknown` alert becomes an `untrusted` one if the host then turns untrusted; an
//! `untrusted` alert stays while the host is unknown (nothing cleared it).

use std::sync::Arc;
use std::time::Duration;

use trustpool_api::compute::server::TrustAlert;
use trustpool_api::oat::TrustLevel;
use trustpool_api::time::{now_ms, rfc3339};
use trustpool_client::TrustStream;
use trustpool_client::oat::StreamEvent;

use super::{Service, flavor_spec};
use crate::filters::{Requirement, trusted_requirement};
use crate::request::RequestSpec;
use crate::store::ServerRecord;
use crate::trust::source::error_chain;

/// The instance action recording a raised alert.
const RAISED: &str = "trust_alert";
/// The instance action recording a cleared alert.
const CLEARED: &str = "trust_alert_cleared";

/// What a check does to one server: its alert from now on (None: cleared), the instance
/// action and its message.
type AlertChange = (Option<TrustAlert>, &'static str, String);

/// Whether the server's flavor asked for a trusted host.
fn wants_trusted(server: &ServerRecord) -> bool {
    let spec = RequestSpec {
        flavor: flavor_spec(&server.flavor),
        ..RequestSpec::default()
    };
    matches!(
        trusted_requirement(&spec),
        Some(Requirement::Level("trusted") | Requirement::Trait { required: true })
    )
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// The alert for a host that turned `untrusted`, with the attestation server's reasons.
fn untrusted_alert(host: &str, now: i64, reasons: &[String]) -> AlertChange {
    let mut message = format!("host {host} is untrusted");
    if !reasons.is_empty() {
        message.push_str(": ");
        message.push_str(&reasons.join("; "));
    }
    let alert = TrustAlert {
        trust_lvl: TrustLevel::Untrusted.as_str().to_owned(),
        since: rfc3339(now),
        reasons: reasons.to_vec(),
    };
    (Some(alert), RAISED, message)
}

/// The alert for a host `unknown` since `since`, past the grace period.
fn silence_alert(
    host: &str,
    since: i64,
    now: i64,
    grace_ms: i64,
    poll_error: Option<&str>,
) -> AlertChange {
    let mut reasons = vec![format!(
        "no current verdict for {} s (grace {} s): {SILENCE_CAUSES}",
        secs(now.saturating_sub(since)),
        secs(grace_ms)
    )];
    if let Some(e) = poll_error {
        reasons.push(format!(
            "the last poll of the attestation server failed: {e}"
        ));
    }
    let message = format!("host {host} is unknown: {}", reasons.join("; "));
    let alert = TrustAlert {
        trust_lvl: TrustLevel::Unknown.as_str().to_owned(),
        since: rfc3339(since),
        reasons,
    };
    (Some(alert), RAISED, message)
}

/// What a host without a current verdict may mean.
const SILENCE_CAUSES: &str =
    "the agent stopped, the network is cut or the attestation server is unreachable";

impl Service {
    /// Raises alerts on running instances that asked for a trusted host whose host is now
    /// `untrusted`, or `unknown` for longer than the grace period, and clears them when
    /// the host is `trusted` again (only `hosts`, or all when None). `reasons` are the
    /// attestation server's, for an `untrusted` change.
    pub async fn check_trust_alerts(&self, hosts: Option<&[String]>, reasons: &[String]) {
        let now = now_ms();
        let grace = self.config.trust_alert_grace.as_millis();
        let grace_ms = i64::try_from(grace).unwrap_or(i64::MAX);
        let timeout_ms = self.trust.timeout_ms();
        let poll_error = self.trust.last_error();
        let in_scope = |host: &str| hosts.is_none_or(|h| h.iter().any(|n| n == host));
        let mut changed = Vec::new();
        {
            let mut guard = self.write();
            let state = &mut *guard;
            // Since when each node has had no current level: from the moment its entry
            // expired when that is known, else from now (a failed poll, a node the answer
            // left out, a pushed `unknown` — each checked right after it happens).
            for name in state.nodes.keys().filter(|n| in_scope(n)) {
                if self.trust.current_level(name, now) != TrustLevel::Unknown {
                    state.silent_since.remove(name);
                    continue;
                }
                let since = match self.trust.entry(name) {
                    Some(e) if e.vtime_ms > 0 && now.saturating_sub(e.vtime_ms) > timeout_ms => {
                        e.vtime_ms.saturating_add(timeout_ms).min(now)
                    }
                    _ => now,
                };
                state.silent_since.entry(name.clone()).or_insert(since);
            }
            for server in state.servers.values_mut() {
                let Some(host) = server.host.as_deref() else {
                    continue;
                };
                if !in_scope(host) {
                    continue;
                }
                let level = self.trust.current_level(host, now);
                let alerted = server.trust_alert.as_ref().map(|a| a.trust_lvl.as_str());
                let change: Option<AlertChange> = match level {
                    TrustLevel::Trusted => alerted
                        .is_some()
                        .then(|| (None, CLEARED, format!("host {host} is trusted again"))),
                    _ if server.status != "ACTIVE" || !wants_trusted(server) => None,
                    TrustLevel::Untrusted => {
                        (alerted != Some("untrusted")).then(|| untrusted_alert(host, now, reasons))
                    }
                    TrustLevel::Unknown => {
                        let since = state.silent_since.get(host).copied().unwrap_or(now);
                        (alerted.is_none() && now.saturating_sub(since) >= grace_ms).then(|| {
                            silence_alert(host, since, now, grace_ms, poll_error.as_deref())
                        })
                    }
                };
                let Some((alert, action, message)) = change else {
                    continue;
                };
                server.trust_alert = alert;
                server.updated_at = now;
                changed.push((server.clone(), action, message));
            }
        }
        for (server, action, message) in changed {
            let host = server.host.as_deref().unwrap_or("");
            match &server.trust_alert {
                Some(alert) => {
                    let level = alert.trust_lvl.as_str();
                    tracing::warn!(server = %server.id, host, level, "trust alert: the host of a trusted instance is no longer trusted");
                }
                None => {
                    tracing::info!(server = %server.id, host, "trust alert cleared: the host of the instance is trusted again");
                }
            }
            let stored = self.store.put_server(&server).await;
            let recorded = self
                .store
                .add_action(&server.id, action, Some(&message))
                .await;
            if let Err(e) = stored.and(recorded) {
                let id = server.id.as_str();
                tracing::error!(error = %e, server = id, action, "storing a trust alert change failed");
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
        // Check alerts often enough that one is raised at most half a grace period late
        // (polls still happen only when entries near expiry).
        let tick = period
            .min(self.config.trust_alert_grace / 2)
            .max(Duration::from_secs(1));
        let mut ticker = tokio::time::interval(tick);
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
