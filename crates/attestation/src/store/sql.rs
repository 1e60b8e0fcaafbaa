//! Every SQL statement of the attestation server. Portable between SQLite and PostgreSQL:
//! `$N` parameters, `ON CONFLICT … DO UPDATE`, no backend-specific types. The few
//! `AssertSqlSafe` strings are assembled only from the column-list constants below; every
//! value is a bind parameter.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor as _, Row as _};

use super::{Challenge, HostRecord, HostState, StoreError, new_id, now_ms};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub(super) fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) pool: AnyPool,
    /// Administrators' writes and enrollments (hosts, names, grants, policies): on SQLite a
    /// one-connection pool with `synchronous = FULL`, so a power loss cannot revert a
    /// deletion, an enrollment or a policy; verdicts (re-derived every interval) keep the
    /// group-committed `NORMAL` pool. On PostgreSQL the same pool (its commits are durable).
    pub(super) durable: AnyPool,
    shared: bool,
}

pub(super) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(super) fn unb64(text: &str, what: &'static str) -> Result<Vec<u8>, StoreError> {
    STANDARD
        .decode(text)
        .map_err(|_| StoreError::Corrupt { what })
}

pub(super) fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn parse_list(text: &str, what: &'static str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt { what })
}

pub(super) fn host_from_row(row: &AnyRow) -> Result<HostRecord, StoreError> {
    let get = |col: &'static str| row.try_get::<String, _>(col).map_err(q("read host"));
    let ek_cert: Option<String> = row.try_get("ek_certificate").map_err(q("read host"))?;
    Ok(HostRecord {
        agent_id: get("agent_id")?,
        host_name: get("host_name")?,
        aliases: parse_list(&get("aliases")?, "host aliases")?,
        agent_url: get("agent_url")?,
        agent_certificate: get("agent_certificate")?,
        ek_public: unb64(&get("ek_public")?, "EK public")?,
        ek_certificate: ek_cert.map(|c| unb64(&c, "EK certificate")).transpose()?,
        ak_public: unb64(&get("ak_public")?, "AK public")?,
        state: HostState::parse(&get("state")?)
            .ok_or(StoreError::Corrupt { what: "host state" })?,
        policies: parse_list(&get("policies")?, "host policies")?,
        software_tpm: row
            .try_get::<i64, _>("software_tpm")
            .map_err(q("read host"))?
            != 0,
        created_at: row.try_get("created_at").map_err(q("read host"))?,
        updated_at: row.try_get("updated_at").map_err(q("read host"))?,
        clock_reset_at: row.try_get("clock_reset_at").map_err(q("read host"))?,
    })
}

pub(super) const HOST_COLUMNS: &str = "agent_id, host_name, aliases, agent_url, agent_certificate, ek_public, ek_certificate, ak_public, state, policies, software_tpm, created_at, updated_at, clock_reset_at";

pub(super) async fn bump_fleet_revision(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE fleet_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(q("bump fleet revision"))?;
    Ok(())
}

impl Store {
    /// Connects (creating a SQLite file if needed) and runs the migrations.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite && !url.contains("mode=") && !url.contains(":memory:") {
            format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
        } else {
            url.to_owned()
        };
        let options = |connections: u32, synchronous: &'static str| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if sqlite {
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute(synchronous).await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                        }
                        Ok(())
                    })
                })
        };
        // WAL + NORMAL for verdicts: durable across process crashes; a power loss may drop
        // the last verdicts, which the next interval re-derives anyway.
        let pool = options(if sqlite { 4 } else { 16 }, "PRAGMA synchronous = NORMAL")
            .connect(&url)
            .await
            .map_err(q("connect"))?;
        if sqlite {
            pool.execute("PRAGMA journal_mode = WAL")
                .await
                .map_err(q("enable WAL"))?;
        }
        MIGRATOR.run(&pool).await?;
        let durable = if sqlite {
            options(1, "PRAGMA synchronous = FULL")
                .connect(&url)
                .await
                .map_err(q("connect"))?
        } else {
            pool.clone()
        };
        Ok(Self {
            pool,
            durable,
            shared: !sqlite,
        })
    }

    /// SQLite's `synchronous` level of the verdict pool and of the administrators' pool
    /// (1 NORMAL, 2 FULL); None on PostgreSQL.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn sqlite_synchronous(&self) -> Result<Option<(i64, i64)>, StoreError> {
        if self.shared {
            return Ok(None);
        }
        let level = |pool: &AnyPool| {
            let pool = pool.clone();
            async move {
                sqlx::query("PRAGMA synchronous")
                    .fetch_one(&pool)
                    .await
                    .and_then(|r| r.try_get::<i64, _>(0))
                    .map_err(q("read synchronous"))
            }
        };
        Ok(Some((
            level(&self.pool).await?,
            level(&self.durable).await?,
        )))
    }

    /// Inserts or replaces a whole host row (by agent id) as given. It does not take the
    /// host's names in `host_names` (no fleet-wide uniqueness, no tombstones): the server
    /// never calls it — enrollment goes through [`Store::enroll_host`], changes through
    /// `set_aliases`, `set_state`, `set_policies`, `set_clock_reset`. For tests, the load test
    /// and repairs by hand.
    ///
    /// # Errors
    /// A `StoreError` (a host name held by another agent id violates uniqueness).
    pub async fn put_host(&self, h: &HostRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO hosts ({HOST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (agent_id) DO UPDATE SET host_name = $2, aliases = $3, agent_url = $4, agent_certificate = $5, \
             ek_public = $6, ek_certificate = $7, ak_public = $8, state = $9, policies = $10, software_tpm = $11, \
             updated_at = CASE WHEN hosts.updated_at >= $13 THEN hosts.updated_at + 1 ELSE $13 END, \
             clock_reset_at = $14"
        );
        let mut tx = self.durable.begin().await.map_err(q("begin"))?;
        sqlx::query(AssertSqlSafe(sql))
            .bind(&h.agent_id)
            .bind(&h.host_name)
            .bind(json_list(&h.aliases))
            .bind(&h.agent_url)
            .bind(&h.agent_certificate)
            .bind(b64(&h.ek_public))
            .bind(h.ek_certificate.as_deref().map(b64))
            .bind(b64(&h.ak_public))
            .bind(h.state.as_str())
            .bind(json_list(&h.policies))
            .bind(i64::from(h.software_tpm))
            .bind(h.created_at)
            .bind(h.updated_at)
            .bind(h.clock_reset_at)
            .execute(&mut *tx)
            .await
            .map_err(q("put host"))?;
        bump_fleet_revision(&mut tx).await?;
        tx.commit().await.map_err(q("commit host"))?;
        Ok(())
    }

    /// A host by agent id.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn host(&self, agent_id: &str) -> Result<Option<HostRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE agent_id = $1"
        )))
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("get host"))?;
        row.as_ref().map(host_from_row).transpose()
    }

    /// A host by name.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn host_by_name(&self, name: &str) -> Result<Option<HostRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE host_name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("get host by name"))?;
        row.as_ref().map(host_from_row).transpose()
    }

    /// Every host.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOST_COLUMNS} FROM hosts ORDER BY host_name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list hosts"))?;
        rows.iter().map(host_from_row).collect()
    }

    /// Every enrolled host's agent id and row version (`updated_at`, which every write
    /// of the row moves forward), from the `hosts_versions` index.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn enrolled_host_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT agent_id, updated_at FROM hosts WHERE state = $1")
            .bind(HostState::Enrolled.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(q("list host versions"))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("agent_id").map_err(q("read host version"))?,
                    row.try_get("updated_at").map_err(q("read host version"))?,
                ))
            })
            .collect()
    }

    /// Every enrolled host, one row at a time.
    pub fn enrolled_hosts(
        &self,
    ) -> futures_util::stream::BoxStream<'_, Result<HostRecord, StoreError>> {
        use futures_util::StreamExt as _;
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE state = $1"
        )))
        .bind(HostState::Enrolled.as_str())
        .fetch(&self.pool)
        .map(|row| row.map_err(q("list hosts")).and_then(|r| host_from_row(&r)))
        .boxed()
    }

    /// Deletes a host and its challenges (verdict history is kept for audit). Its names
    /// become tombstones: they designate nobody until an administrator gives them out again.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn delete_host(&self, agent_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.durable.begin().await.map_err(q("begin"))?;
        let name: Option<String> = sqlx::query("SELECT host_name FROM hosts WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("get host"))?
            .map(|r| r.try_get("host_name"))
            .transpose()
            .map_err(q("read host"))?;
        sqlx::query("DELETE FROM enrollment_challenges WHERE agent_id = $1")
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(q("delete challenges"))?;
        if let Some(name) = &name {
            // A credential given out for this name (a re-enrollment) dies with the host.
            sqlx::query("DELETE FROM enrollment_grants WHERE host_name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(q("delete grant"))?;
            // Its short name too designates nobody from now on (unless another host holds
            // it as a name or alias).
            if let Some((short, _)) = name.split_once('.') {
                sqlx::query(
                    "INSERT INTO host_names (name, agent_id, kind) VALUES ($1, NULL, 'retired') ON CONFLICT (name) DO NOTHING",
                )
                .bind(short)
                .execute(&mut *tx)
                .await
                .map_err(q("retire short name"))?;
            }
        }
        sqlx::query("UPDATE host_names SET agent_id = NULL, kind = 'retired' WHERE agent_id = $1")
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(q("retire names"))?;
        let done = sqlx::query("DELETE FROM hosts WHERE agent_id = $1")
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(q("delete host"))?;
        bump_fleet_revision(&mut tx).await?;
        tx.commit().await.map_err(q("commit host deletion"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The fleet revision: moves forward with every write of a host row.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn fleet_revision(&self) -> Result<i64, StoreError> {
        sqlx::query("SELECT revision FROM fleet_revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get("revision"))
            .map_err(q("fleet revision"))
    }

    /// Stores an enrollment challenge.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn put_challenge(
        &self,
        challenge_id: &str,
        agent_id: &str,
        secret_hash: &str,
        registration: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO enrollment_challenges (challenge_id, agent_id, secret_hash, registration, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(challenge_id)
            .bind(agent_id)
            .bind(secret_hash)
            .bind(registration)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(q("put challenge"))?;
        Ok(())
    }

    /// Removes and returns a challenge (single use).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn take_challenge(
        &self,
        challenge_id: &str,
    ) -> Result<Option<Challenge>, StoreError> {
        let row = sqlx::query("SELECT agent_id, secret_hash, registration, expires_at FROM enrollment_challenges WHERE challenge_id = $1")
            .bind(challenge_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get challenge"))?;
        let done = sqlx::query("DELETE FROM enrollment_challenges WHERE challenge_id = $1")
            .bind(challenge_id)
            .execute(&self.pool)
            .await
            .map_err(q("delete challenge"))?;
        // Another server may have taken it between the two statements: only one delete wins.
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        row.map(|r| {
            let op = || q("read challenge");
            Ok(Challenge {
                agent_id: r.try_get("agent_id").map_err(op())?,
                secret_hash: r.try_get("secret_hash").map_err(op())?,
                registration: r.try_get("registration").map_err(op())?,
                expires_at: r.try_get("expires_at").map_err(op())?,
            })
        })
        .transpose()
    }

    /// Stores a policy version.
    ///
    /// # Errors
    /// A `StoreError` (the version exists already).
    pub async fn put_policy(
        &self,
        name: &str,
        version: u32,
        document: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policies (name, version, document, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(i64::from(version))
        .bind(document)
        .bind(now_ms())
        .execute(&self.durable)
        .await
        .map_err(q("put policy"))?;
        Ok(())
    }

    /// How many policy versions are stored (policies are append-only: it moves with every
    /// change).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn policy_versions(&self) -> Result<i64, StoreError> {
        sqlx::query("SELECT COUNT(*) AS n FROM policies")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(q("count policies"))
    }

    /// The latest version of every policy: (name, version, document).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn latest_policies(&self) -> Result<Vec<(String, i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.name, p.version, p.document FROM policies p \
             JOIN (SELECT name, MAX(version) AS version FROM policies GROUP BY name) m ON p.name = m.name AND p.version = m.version ORDER BY p.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list policies"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name").map_err(q("read policy"))?,
                    r.try_get("version").map_err(q("read policy"))?,
                    r.try_get("document").map_err(q("read policy"))?,
                ))
            })
            .collect()
    }

    /// True for a database several servers can share (PostgreSQL); leases are needed then.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Appends to the audit log.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit (id, at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(new_id())
            .bind(now_ms())
            .bind(actor)
            .bind(action)
            .bind(subject)
            .bind(detail)
            .execute(&self.pool)
            .await
            .map_err(q("audit"))?;
        Ok(())
    }

    /// The audit log, newest first: (at, actor, action, subject, detail).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn audit_log(
        &self,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, subject, detail FROM audit ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("audit log"))?;
        rows.iter()
            .map(|r| {
                let op = || q("read audit");
                Ok((
                    r.try_get("at").map_err(op())?,
                    r.try_get("actor").map_err(op())?,
                    r.try_get("action").map_err(op())?,
                    r.try_get("subject").map_err(op())?,
                    r.try_get("detail").map_err(op())?,
                ))
            })
            .collect()
    }

    /// Who holds a host's lease, if anyone.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn lease_owner(&self, agent_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT owner FROM leases WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("lease owner"))?;
        row.map(|r| r.try_get("owner").map_err(q("read lease")))
            .transpose()
    }

    /// Takes or renews the lease on a host's challenges for `owner` until `expires_at`:
    /// true when this server holds it (nobody did, it expired, or it was already ours).
    /// How several servers on one PostgreSQL share the challenge work.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn lease(
        &self,
        agent_id: &str,
        owner: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (agent_id, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id) DO UPDATE SET owner = $2, expires_at = $3 WHERE leases.owner = $2 OR leases.expires_at < $4",
        )
        .bind(agent_id)
        .bind(owner)
        .bind(expires_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(q("lease"))?;
        Ok(done.rows_affected() > 0)
    }
}
