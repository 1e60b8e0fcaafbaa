//! Waiting until a pool is in force: enrolled, reporting, appraised against the golden
//! policy, and seen so by the scheduler.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;
use trustpool_client::ComputeClient;

use super::Pool;

/// Polls `check` every 200 ms until it returns `Some`, or fails after `timeout` naming
/// `what` and the last state `check` reported.
pub(super) async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(state) if Instant::now() > deadline => {
                bail!(
                    "timed out after {} s waiting for {what}: {state}",
                    timeout.as_secs()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

impl Pool {
    /// Waits for enrollment, imports the golden policy from the first good host, assigns
    /// it to every host and waits until the scheduler sees every host's level.
    pub(super) async fn settle(&self) -> anyhow::Result<()> {
        let admin = self.admin()?;
        let compute = self.compute()?;
        let n = self.hosts.len();
        wait_for(
            "every host to enroll, be attested and report",
            Duration::from_secs(120),
            || async {
                let hosts = admin.hosts().await.map_err(|e| e.to_string())?;
                let attested = hosts.iter().filter(|h| h.vtime.is_some()).count();
                // Nodes exist from hypervisor-create on; reporting is being up.
                let reported = compute
                    .hypervisors()
                    .await
                    .map_err(|e| e.to_string())?
                    .iter()
                    .filter(|h| h.state == "up")
                    .count();
                if attested == n && reported == n {
                    Ok(())
                } else {
                    Err(format!("{attested}/{n} attested, {reported}/{n} reporting"))
                }
            },
        )
        .await?;
        let golden = self
            .hosts
            .iter()
            .find(|h| !h.tampered)
            .map(|h| h.name.clone())
            .unwrap_or_default();
        let draft = admin
            .import_policy(&json!({"host": golden, "name": "golden"}))
            .await
            .context("importing the golden policy")?;
        admin
            .create_policy(&draft)
            .await
            .context("storing the golden policy")?;
        for h in &self.hosts {
            admin
                .set_policies(&h.name, vec!["golden".to_owned()])
                .await?;
            admin.attest(&h.name).await?;
        }
        self.wait_levels(&compute, Duration::from_secs(60)).await
    }

    /// Waits until the scheduler sees good hosts trusted and tampered ones untrusted.
    pub(super) async fn wait_levels(
        &self,
        compute: &ComputeClient,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let want: BTreeMap<String, &str> = self
            .hosts
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    if h.tampered { "untrusted" } else { "trusted" },
                )
            })
            .collect();
        wait_for(
            "the scheduler to see every host's verdict",
            timeout,
            || async {
                let seen = compute.hypervisors().await.map_err(|e| e.to_string())?;
                let wrong: Vec<String> = seen
                    .iter()
                    .filter(|h| {
                        want.get(&h.hypervisor_hostname)
                            .is_some_and(|w| *w != h.trust_level)
                    })
                    .map(|h| format!("{} is {}", h.hypervisor_hostname, h.trust_level))
                    .collect();
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(wrong.join(", "))
                }
            },
        )
        .await
    }
}
