//! Verdict history and each host's current verdict (`host_trust`). Identical consecutive
//! verdicts of a host are stored as one run (`at` … `until_at`, `repeats`), so the history
//! grows with changes, not with attestations; runs older than the retention period are
//! pruned, never a host's current one.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row as _};
use trustpool_api::oat::TrustLevel;

use super::sql::{json_list, parse_list, q};
use super::{Store, StoreError, VerdictRecord, VerdictWrite};

const VERDICT_COLUMNS: &str = "id, agent_id, at, until_at, repeats, level, policy, reasons, reset_count, restart_count, clock, pcrs";

/// Runs deleted per statement when pruning (short transactions on a busy database).
const PRUNE_BATCH: i64 = 5_000;

fn parse_level(text: &str) -> Result<TrustLevel, StoreError> {
    match text {
        "trusted" => Ok(TrustLevel::Trusted),
        "untrusted" => Ok(TrustLevel::Untrusted),
        "unknown" => Ok(TrustLevel::Unknown),
        _ => Err(StoreError::Corrupt {
            what: "verdict level",
        }),
    }
}

fn verdict_from_row(row: &AnyRow) -> Result<VerdictRecord, StoreError> {
    let get = |e| q("read verdict")(e);
    Ok(VerdictRecord {
        id: row.try_get("id").map_err(get)?,
        agent_id: row.try_get("agent_id").map_err(get)?,
        at: row.try_get("at").map_err(get)?,
        until: row.try_get("until_at").map_err(get)?,
        repeats: row.try_get("repeats").map_err(get)?,
        level: parse_level(&row.try_get::<String, _>("level").map_err(get)?)?,
        policy: row.try_get("policy").map_err(get)?,
        reasons: parse_list(
            &row.try_get::<String, _>("reasons").map_err(get)?,
            "verdict reasons",
        )?,
        reset_count: row.try_get("reset_count").map_err(get)?,
        restart_count: row.try_get("restart_count").map_err(get)?,
        clock: row.try_get("clock").map_err(get)?,
        pcrs: row.try_get("pcrs").map_err(get)?,
    })
}

/// The columns, prefixed for a join.
fn prefixed(prefix: &str) -> String {
    VERDICT_COLUMNS
        .split(", ")
        .map(|c| format!("{prefix}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Records a verdict as a new run.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn insert_verdict(&self, v: &VerdictRecord) -> Result<(), StoreError> {
        self.record_verdicts(&[VerdictWrite {
            verdict: v.clone(),
            repeats: None,
        }])
        .await
        .map(|_| ())
    }

    /// Records several verdicts in one transaction (group commit: one fsync for many); a
    /// repeat extends the host's current run when that is still the run it names. Returns
    /// the id each verdict was stored under (its own, or the run's it extended).
    ///
    /// # Errors
    /// A `StoreError`; none of the batch is stored then.
    pub async fn record_verdicts(&self, batch: &[VerdictWrite]) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        let mut ids = Vec::with_capacity(batch.len());
        for write in batch {
            let v = &write.verdict;
            if let Some(run) = &write.repeats {
                let current = sqlx::query(
                    "UPDATE host_trust SET at = $1 WHERE agent_id = $2 AND verdict_id = $3 AND at <= $1",
                )
                .bind(v.until)
                .bind(&v.agent_id)
                .bind(run)
                .execute(&mut *tx)
                .await
                .map_err(q("extend host trust"))?;
                if current.rows_affected() == 1 {
                    sqlx::query(
                        "UPDATE verdicts SET until_at = $1, clock = $2, repeats = repeats + 1 WHERE id = $3",
                    )
                    .bind(v.until)
                    .bind(v.clock)
                    .bind(run)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("extend verdict run"))?;
                    ids.push(run.clone());
                    continue;
                }
            }
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO verdicts ({VERDICT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            )))
            .bind(&v.id)
            .bind(&v.agent_id)
            .bind(v.at)
            .bind(v.until)
            .bind(v.repeats)
            .bind(v.level.as_str())
            .bind(v.policy.as_deref())
            .bind(json_list(&v.reasons))
            .bind(v.reset_count)
            .bind(v.restart_count)
            .bind(v.clock)
            .bind(v.pcrs.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(q("insert verdict"))?;
            sqlx::query(
                "INSERT INTO host_trust (agent_id, verdict_id, at) VALUES ($1, $2, $3) \
                 ON CONFLICT (agent_id) DO UPDATE SET verdict_id = $2, at = $3 WHERE host_trust.at <= $3",
            )
            .bind(&v.agent_id)
            .bind(&v.id)
            .bind(v.until)
            .execute(&mut *tx)
            .await
            .map_err(q("update host trust"))?;
            ids.push(v.id.clone());
        }
        tx.commit().await.map_err(q("commit verdicts"))?;
        Ok(ids)
    }

    /// The current verdict of every host.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn latest_verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM host_trust t JOIN verdicts v ON v.id = t.verdict_id",
            prefixed("v")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(q("latest verdicts"))?;
        rows.iter().map(verdict_from_row).collect()
    }

    /// The current verdict of every host attested after `since_ms`.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn verdicts_since(&self, since_ms: i64) -> Result<Vec<VerdictRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM host_trust t JOIN verdicts v ON v.id = t.verdict_id WHERE t.at > $1",
            prefixed("v")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(q("verdicts since"))?;
        rows.iter().map(verdict_from_row).collect()
    }

    /// A host's verdict runs, newest first.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn verdict_history(
        &self,
        agent_id: &str,
        limit: i64,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {VERDICT_COLUMNS} FROM verdicts WHERE agent_id = $1 ORDER BY at DESC LIMIT $2"
        )))
        .bind(agent_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("verdict history"))?;
        rows.iter().map(verdict_from_row).collect()
    }

    /// Deletes the runs that ended before `before_ms`, except each host's current one;
    /// returns how many.
    ///
    /// # Errors
    /// A `StoreError`; what was deleted before it stays deleted.
    pub async fn prune_verdicts(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut deleted = 0u64;
        loop {
            let done = sqlx::query(
                "DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts WHERE at < $1 AND until_at < $1 \
                 AND id NOT IN (SELECT verdict_id FROM host_trust) LIMIT $2)",
            )
            .bind(before_ms)
            .bind(PRUNE_BATCH)
            .execute(&self.pool)
            .await
            .map_err(q("prune verdicts"))?;
            deleted = deleted.saturating_add(done.rows_affected());
            if done.rows_affected() < u64::try_from(PRUNE_BATCH).unwrap_or(u64::MAX) {
                return Ok(deleted);
            }
        }
    }
}
