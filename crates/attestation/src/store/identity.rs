//! Which TPM is which name: enrollment grants (the credentials an administrator hands out),
//! the fleet-wide table of names (registered names and aliases, unique; a deleted host's
//! names kept as tombstones), and the one transaction that stores an enrolled host.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row as _};

use super::sql::{HOST_COLUMNS, b64, bump_fleet_revision, host_from_row, json_list, q};
use super::{HostRecord, Store, StoreError};

/// An enrollment credential for one host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The name it lets a host enroll under.
    pub host_name: String,
    /// Hex SHA-256 of the bootstrap token.
    pub token_hash: String,
    /// Hex SHA-256 of the EK certificate (DER) expected, when the administrator named one.
    pub ek_sha256: Option<String>,
    /// Aliases the host gets when it enrolls (a new host only).
    pub aliases: Vec<String>,
    /// The token name of the administrator who made it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms: unusable from then on.
    pub expires_at: i64,
}

fn grant_from_row(row: &AnyRow) -> Result<Grant, StoreError> {
    let op = || q("read grant");
    Ok(Grant {
        host_name: row.try_get("host_name").map_err(op())?,
        token_hash: row.try_get("token_hash").map_err(op())?,
        ek_sha256: row.try_get("ek_sha256").map_err(op())?,
        aliases: super::sql::parse_list(
            &row.try_get::<String, _>("aliases").map_err(op())?,
            "grant aliases",
        )?,
        created_by: row.try_get("created_by").map_err(op())?,
        created_at: row.try_get("created_at").map_err(op())?,
        expires_at: row.try_get("expires_at").map_err(op())?,
    })
}

/// Who holds a name now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameHolder {
    /// An enrolled (or approval-pending) host: its agent id.
    Host(String),
    /// A deleted host's name: designates nobody until given out again.
    Retired,
}

/// A unique-constraint violation is a conflict the caller can name; anything else fails.
fn conflict_or(op: &'static str, what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Query { op, source: e },
    }
}

impl Store {
    /// Stores (or replaces) the grant for a host name.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn put_grant(&self, g: &Grant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enrollment_grants (host_name, token_hash, ek_sha256, aliases, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (host_name) DO UPDATE SET token_hash = $2, ek_sha256 = $3, \
             aliases = $4, created_by = $5, created_at = $6, expires_at = $7",
        )
        .bind(&g.host_name)
        .bind(&g.token_hash)
        .bind(g.ek_sha256.as_deref())
        .bind(json_list(&g.aliases))
        .bind(&g.created_by)
        .bind(g.created_at)
        .bind(g.expires_at)
        .execute(&self.durable)
        .await
        .map_err(q("put grant"))?;
        Ok(())
    }

    /// The grant for a host name, if any (expired ones too: the caller says why it fails).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn grant(&self, host_name: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query("SELECT host_name, token_hash, ek_sha256, aliases, created_by, created_at, expires_at FROM enrollment_grants WHERE host_name = $1")
            .bind(host_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get grant"))?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Who holds a name (registered name or alias of a host, or a tombstone).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn name_holder(&self, name: &str) -> Result<Option<NameHolder>, StoreError> {
        let row = sqlx::query("SELECT agent_id FROM host_names WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get name"))?;
        row.map(|r| {
            let id: Option<String> = r.try_get("agent_id").map_err(q("read name"))?;
            Ok(id.map_or(NameHolder::Retired, NameHolder::Host))
        })
        .transpose()
    }

    /// Every tombstoned name (a deleted host's).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn retired_names(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM host_names WHERE agent_id IS NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list retired names"))?;
        rows.iter()
            .map(|r| r.try_get("name").map_err(q("read name")))
            .collect()
    }

    /// The host enrolled with this EK key (hex SHA-256 of its SubjectPublicKeyInfo), if any.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn host_by_ek_key(
        &self,
        ek_key_sha256: &str,
    ) -> Result<Option<HostRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE ek_key_sha256 = $1"
        )))
        .bind(ek_key_sha256)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("get host by EK"))?;
        row.as_ref().map(host_from_row).transpose()
    }

    /// Hosts whose EK key fingerprint is not stored yet (enrolled before it was): their
    /// agent id and EK `TPM2B_PUBLIC`.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn hosts_without_ek_key(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = sqlx::query("SELECT agent_id, ek_public FROM hosts WHERE ek_key_sha256 IS NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list hosts without EK key"))?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("agent_id").map_err(q("read host"))?;
                let ek: String = r.try_get("ek_public").map_err(q("read host"))?;
                Ok((id, super::sql::unb64(&ek, "EK public")?))
            })
            .collect()
    }

    /// Stores the EK key fingerprint of a host enrolled before it was kept.
    ///
    /// # Errors
    /// `Conflict` when another host has the same EK key (two names on one TPM, enrolled
    /// before this rule): the operator deletes one.
    pub async fn set_ek_key(&self, agent_id: &str, ek_key_sha256: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE hosts SET ek_key_sha256 = $2 WHERE agent_id = $1")
            .bind(agent_id)
            .bind(ek_key_sha256)
            .execute(&self.durable)
            .await
            .map_err(conflict_or(
                "set EK key",
                format!("agent {agent_id} has the TPM (EK) of another enrolled host"),
            ))?;
        Ok(())
    }

    /// Stores a newly enrolled host in one transaction: the record it replaces (same name;
    /// its EK binding and policies go with it) is removed, the grant used is consumed (it
    /// must still be the one checked: `grant_token_hash`), and the host's names are taken
    /// (a tombstone of the same name is given out again; a name another host holds is a
    /// `Conflict`). A crash at any point leaves either the old record or the new one.
    ///
    /// # Errors
    /// `Conflict` (a name or the EK is another host's, or the grant was used or replaced
    /// meanwhile), or another `StoreError`.
    pub async fn enroll_host(
        &self,
        host: &HostRecord,
        ek_key_sha256: Option<&str>,
        replaces: Option<&str>,
        grant_token_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.durable.begin().await.map_err(q("begin"))?;
        if let Some(hash) = grant_token_hash {
            let used = sqlx::query(
                "DELETE FROM enrollment_grants WHERE host_name = $1 AND token_hash = $2",
            )
            .bind(&host.host_name)
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(q("consume grant"))?;
            if used.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "the enrollment credential for {} was used or replaced meanwhile",
                    host.host_name
                )));
            }
        }
        if let Some(old) = replaces {
            let mut removed = 0;
            for sql in [
                "DELETE FROM enrollment_challenges WHERE agent_id = $1",
                "DELETE FROM host_names WHERE agent_id = $1",
                "DELETE FROM hosts WHERE agent_id = $1",
            ] {
                removed = sqlx::query(sql)
                    .bind(old)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("replace host"))?
                    .rows_affected();
            }
            // Deleted (or replaced) meanwhile: its policies and approval are not the
            // administrator's to carry over any more.
            if removed == 0 {
                return Err(StoreError::Conflict(format!(
                    "host {} changed while it enrolled; retry",
                    host.host_name
                )));
            }
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO hosts ({HOST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(&host.agent_id)
        .bind(&host.host_name)
        .bind(json_list(&host.aliases))
        .bind(&host.agent_url)
        .bind(&host.agent_certificate)
        .bind(b64(&host.ek_public))
        .bind(host.ek_certificate.as_deref().map(b64))
        .bind(b64(&host.ak_public))
        .bind(host.state.as_str())
        .bind(json_list(&host.policies))
        .bind(i64::from(host.software_tpm))
        .bind(host.created_at)
        .bind(host.updated_at)
        .bind(host.clock_reset_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or(
            "insert host",
            format!(
                "host {} or its TPM (EK, AK) is enrolled already",
                host.host_name
            ),
        ))?;
        sqlx::query("UPDATE hosts SET ek_key_sha256 = $2 WHERE agent_id = $1")
            .bind(&host.agent_id)
            .bind(ek_key_sha256)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or(
                "set EK key",
                format!(
                    "this TPM (EK) is enrolled under another name than {}",
                    host.host_name
                ),
            ))?;
        take_names(&mut tx, &host.agent_id, &host.host_name, &host.aliases).await?;
        bump_fleet_revision(&mut tx).await?;
        tx.commit().await.map_err(q("commit enrollment"))?;
        Ok(())
    }

    /// Deletes the enrollment challenges that expired before `now`; returns how many.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn purge_challenges(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM enrollment_challenges WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|d| d.rows_affected())
            .map_err(q("purge challenges"))
    }

    /// Deletes audit rows older than `before`; returns how many.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map(|d| d.rows_affected())
            .map_err(q("prune audit"))
    }

    /// Revokes the grant for a name, if any; true when there was one.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn delete_grant(&self, host_name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM enrollment_grants WHERE host_name = $1")
            .bind(host_name)
            .execute(&self.durable)
            .await
            .map_err(q("delete grant"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets an enrolled host's state (approval), nothing else: `NotFound`-like `false` when
    /// the host is gone.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn set_state(
        &self,
        agent_id: &str,
        state: super::HostState,
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        self.update_one(agent_id, "state", state.as_str().to_owned(), updated_at)
            .await
    }

    /// Sets the policies a host accepts, nothing else; `false` when the host is gone.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn set_policies(
        &self,
        agent_id: &str,
        policies: &[String],
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        self.update_one(agent_id, "policies", json_list(policies), updated_at)
            .await
    }

    /// Records that an administrator accepted a TPM clock rollback at `at`; `false` when the
    /// host is gone.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn set_clock_reset(&self, agent_id: &str, at: i64) -> Result<bool, StoreError> {
        let mut tx = self.durable.begin().await.map_err(q("begin"))?;
        let done = sqlx::query(
            "UPDATE hosts SET clock_reset_at = $2, updated_at = CASE WHEN updated_at >= $2 THEN updated_at + 1 ELSE $2 END WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(q("set clock reset"))?;
        bump_fleet_revision(&mut tx).await?;
        tx.commit().await.map_err(q("commit clock reset"))?;
        Ok(done.rows_affected() > 0)
    }

    /// One column of one host row, moving its version forward (the fleet re-reads it).
    async fn update_one(
        &self,
        agent_id: &str,
        column: &'static str,
        value: String,
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        // `column` is one of the constants above, never input.
        let sql = format!(
            "UPDATE hosts SET {column} = $2, updated_at = CASE WHEN updated_at >= $3 THEN updated_at + 1 ELSE $3 END WHERE agent_id = $1"
        );
        let mut tx = self.durable.begin().await.map_err(q("begin"))?;
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(agent_id)
            .bind(value)
            .bind(updated_at)
            .execute(&mut *tx)
            .await
            .map_err(q("update host"))?;
        bump_fleet_revision(&mut tx).await?;
        tx.commit().await.map_err(q("commit host update"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets a host's aliases (an administrator's): the names are taken in the same
    /// transaction, so an alias another host holds is a `Conflict` and nothing changes.
    ///
    /// # Errors
    /// `Conflict`, or another `StoreError`.
    pub async fn set_aliases(
        &self,
        agent_id: &str,
        aliases: &[String],
        updated_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.durable.begin().await.map_err(q("begin"))?;
        sqlx::query("DELETE FROM host_names WHERE agent_id = $1 AND kind = 'alias'")
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(q("drop aliases"))?;
        take_aliases(&mut tx, agent_id, aliases).await?;
        sqlx::query(
            "UPDATE hosts SET aliases = $2, updated_at = CASE WHEN updated_at >= $3 THEN updated_at + 1 ELSE $3 END WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(json_list(aliases))
        .bind(updated_at)
        .execute(&mut *tx)
        .await
        .map_err(q("set aliases"))?;
        bump_fleet_revision(&mut tx).await?;
        tx.commit().await.map_err(q("commit aliases"))?;
        Ok(())
    }
}

async fn take_names(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    agent_id: &str,
    host_name: &str,
    aliases: &[String],
) -> Result<(), StoreError> {
    take_name(tx, agent_id, host_name, "host_name").await?;
    take_aliases(tx, agent_id, aliases).await
}

async fn take_aliases(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    agent_id: &str,
    aliases: &[String],
) -> Result<(), StoreError> {
    for alias in aliases {
        take_name(tx, agent_id, alias, "alias").await?;
    }
    Ok(())
}

/// Takes one name for a host: a tombstone is given out again, a name another host holds is
/// a `Conflict`.
async fn take_name(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    agent_id: &str,
    name: &str,
    kind: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM host_names WHERE name = $1 AND agent_id IS NULL")
        .bind(name)
        .execute(&mut **tx)
        .await
        .map_err(q("reuse name"))?;
    sqlx::query("INSERT INTO host_names (name, agent_id, kind) VALUES ($1, $2, $3)")
        .bind(name)
        .bind(agent_id)
        .bind(kind)
        .execute(&mut **tx)
        .await
        .map_err(conflict_or(
            "take name",
            format!("the name {name} belongs to another host"),
        ))?;
    Ok(())
}
