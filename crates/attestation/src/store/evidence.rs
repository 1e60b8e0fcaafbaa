//! The latest verified evidence of each host (quoted PCRs and the event log that replayed
//! to them): what import-from-host and the evidence view read.

use sqlx::Row as _;

use super::Store;
use super::sql::{b64, q, unb64};
use super::{StoreError, now_ms};

impl Store {
    /// Replaces a host's latest verified evidence (for import-from-host).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn put_evidence(
        &self,
        agent_id: &str,
        selection: &str,
        pcrs: &str,
        event_log: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO latest_evidence (agent_id, at, selection, pcrs, event_log) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (agent_id) DO UPDATE SET at = $2, selection = $3, pcrs = $4, event_log = $5",
        )
        .bind(agent_id)
        .bind(now_ms())
        .bind(selection)
        .bind(pcrs)
        .bind(event_log.map(b64))
        .execute(&self.pool)
        .await
        .map_err(q("put evidence"))?;
        Ok(())
    }

    /// A host's latest verified evidence: (at, selection, pcrs JSON, event log).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn evidence(
        &self,
        agent_id: &str,
    ) -> Result<Option<(i64, String, String, Option<Vec<u8>>)>, StoreError> {
        let row = sqlx::query(
            "SELECT at, selection, pcrs, event_log FROM latest_evidence WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("get evidence"))?;
        row.map(|r| {
            let op = || q("read evidence");
            let log: Option<String> = r.try_get("event_log").map_err(op())?;
            Ok((
                r.try_get("at").map_err(op())?,
                r.try_get("selection").map_err(op())?,
                r.try_get("pcrs").map_err(op())?,
                log.map(|l| unb64(&l, "event log")).transpose()?,
            ))
        })
        .transpose()
    }
}
