//! Every SQL statement of the scheduler. Portable between SQLite and PostgreSQL: `$N`
//! parameters, `ON CONFLICT … DO UPDATE`, no backend-specific types; every value is a bind
//! parameter.

use std::collections::BTreeMap;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor as _, Row as _};
use trustpool_api::time::now_ms;

use super::{AggregateRecord, FlavorRecord, NodeRecord, ServerRecord, StoreError};

fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Duplicate(format!("{op}: already exists"))
        }
        _ => StoreError::Query { op, source },
    }
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt { what })
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

fn flavor(row: &AnyRow) -> Result<FlavorRecord, StoreError> {
    let e = q("read flavor");
    let i = |c: &'static str| row.try_get::<i64, _>(c).map_err(q("read flavor"));
    Ok(FlavorRecord {
        id: row.try_get("id").map_err(q("read flavor"))?,
        name: row.try_get("name").map_err(q("read flavor"))?,
        ram_mb: uint(i("ram_mb")?),
        vcpus: u32::try_from(i("vcpus")?).unwrap_or(0),
        disk_gb: uint(i("disk_gb")?),
        ephemeral_gb: uint(i("ephemeral_gb")?),
        swap_mb: uint(i("swap_mb")?),
        rxtx_factor: row.try_get("rxtx_factor").map_err(q("read flavor"))?,
        is_public: i("is_public")? != 0,
        description: row.try_get("description").map_err(q("read flavor"))?,
        extra_specs: from_json(
            &row.try_get::<String, _>("extra_specs").map_err(e)?,
            "extra specs",
        )?,
    })
}

fn node(row: &AnyRow) -> Result<NodeRecord, StoreError> {
    let i = |c: &'static str| row.try_get::<i64, _>(c).map_err(q("read compute node"));
    let s = |c: &'static str| row.try_get::<String, _>(c).map_err(q("read compute node"));
    Ok(NodeRecord {
        id: uint(i("id")?),
        host: s("host")?,
        memory_mb: uint(i("memory_mb")?),
        vcpus: u32::try_from(i("vcpus")?).unwrap_or(0),
        local_gb: uint(i("local_gb")?),
        reported_zone: s("reported_zone")?,
        agent_url: s("agent_url")?,
        disabled: i("disabled")? != 0,
        disabled_reason: row
            .try_get("disabled_reason")
            .map_err(q("read compute node"))?,
        last_seen: i("last_seen")?,
        token_sha256: row
            .try_get::<Option<String>, _>("token_sha256")
            .map_err(q("read compute node"))?
            .map(|hex| {
                trustpool_api::bytes::from_hex(&hex)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or(StoreError::Corrupt {
                        what: "compute token hash",
                    })
            })
            .transpose()?,
    })
}

fn server(row: &AnyRow) -> Result<ServerRecord, StoreError> {
    let s = |c: &'static str| row.try_get::<String, _>(c).map_err(q("read server"));
    let o = |c: &'static str| {
        row.try_get::<Option<String>, _>(c)
            .map_err(q("read server"))
    };
    Ok(ServerRecord {
        id: s("id")?,
        name: s("name")?,
        flavor: from_json(&s("flavor")?, "server flavor")?,
        image: s("image")?,
        zone: s("zone")?,
        host: o("host")?,
        status: s("status")?,
        task_state: o("task_state")?,
        fault: o("fault")?
            .map(|f| from_json(&f, "server fault"))
            .transpose()?,
        trust_alert: o("trust_alert")?
            .map(|f| from_json(&f, "server trust alert"))
            .transpose()?,
        metadata: from_json(&s("metadata")?, "server metadata")?,
        created_at: row.try_get("created_at").map_err(q("read server"))?,
        updated_at: row.try_get("updated_at").map_err(q("read server"))?,
    })
}

impl Store {
    /// Connects (creating a SQLite file if needed) and runs the migrations.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = match sqlite && !url.contains("mode=") && !url.contains(":memory:") {
            true if url.contains('?') => format!("{url}&mode=rwc"),
            true => format!("{url}?mode=rwc"),
            false => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(q("connect"))?;
        if sqlite {
            pool.execute("PRAGMA journal_mode = WAL")
                .await
                .map_err(q("enable WAL"))?;
        }
        // Its own migrations table: the scheduler may share one PostgreSQL database with
        // the attestation server (whose migrations use sqlx's default table).
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.dangerous_set_table_name("_trustpool_scheduler_migrations");
        migrator.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Every flavor.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn flavors(&self) -> Result<Vec<FlavorRecord>, StoreError> {
        sqlx::query("SELECT * FROM flavors ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list flavors"))?
            .iter()
            .map(flavor)
            .collect()
    }

    /// Creates a flavor.
    ///
    /// # Errors
    /// `Duplicate` when the id or name is taken.
    pub async fn create_flavor(&self, f: &FlavorRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO flavors (id, name, ram_mb, vcpus, disk_gb, ephemeral_gb, swap_mb, rxtx_factor, is_public, description, extra_specs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&f.id)
        .bind(&f.name)
        .bind(int(f.ram_mb))
        .bind(i64::from(f.vcpus))
        .bind(int(f.disk_gb))
        .bind(int(f.ephemeral_gb))
        .bind(int(f.swap_mb))
        .bind(f.rxtx_factor)
        .bind(i64::from(f.is_public))
        .bind(&f.description)
        .bind(to_json(&f.extra_specs))
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(q("create flavor"))?;
        Ok(())
    }

    /// Replaces a flavor's extra specs.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn set_extra_specs(
        &self,
        id: &str,
        specs: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE flavors SET extra_specs = $2 WHERE id = $1")
            .bind(id)
            .bind(to_json(specs))
            .execute(&self.pool)
            .await
            .map_err(q("set extra specs"))?;
        Ok(())
    }

    /// Deletes a flavor (servers keep their copy).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn delete_flavor(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM flavors WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(q("delete flavor"))?;
        Ok(())
    }

    /// Every compute node.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        sqlx::query("SELECT * FROM compute_nodes ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list compute nodes"))?
            .iter()
            .map(node)
            .collect()
    }

    /// Inserts or updates a compute node (by host).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn put_node(&self, n: &NodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO compute_nodes (id, host, memory_mb, vcpus, local_gb, reported_zone, agent_url, disabled, disabled_reason, last_seen, token_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (host) DO UPDATE SET memory_mb = $3, vcpus = $4, local_gb = $5, reported_zone = $6, \
             agent_url = $7, disabled = $8, disabled_reason = $9, last_seen = $10, token_sha256 = $11",
        )
        .bind(int(n.id))
        .bind(&n.host)
        .bind(int(n.memory_mb))
        .bind(i64::from(n.vcpus))
        .bind(int(n.local_gb))
        .bind(&n.reported_zone)
        .bind(&n.agent_url)
        .bind(i64::from(n.disabled))
        .bind(&n.disabled_reason)
        .bind(n.last_seen)
        .bind(n.token_sha256.map(|h| trustpool_api::bytes::to_hex(&h)))
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(q("store compute node"))?;
        Ok(())
    }

    /// Deletes a compute node and its aggregate memberships.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn delete_node(&self, host: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        for sql in [
            "DELETE FROM aggregate_hosts WHERE host = $1",
            "DELETE FROM compute_nodes WHERE host = $1",
        ] {
            sqlx::query(sql)
                .bind(host)
                .execute(&mut *tx)
                .await
                .map_err(q("delete compute node"))?;
        }
        tx.commit().await.map_err(q("commit"))
    }

    /// Every aggregate with its hosts.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn aggregates(&self) -> Result<Vec<AggregateRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM aggregates ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list aggregates"))?;
        let members = sqlx::query("SELECT aggregate_id, host FROM aggregate_hosts ORDER BY host")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list aggregate hosts"))?;
        let mut out = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("id").map_err(q("read aggregate"))?;
            let mut hosts = Vec::new();
            for m in &members {
                if m.try_get::<i64, _>("aggregate_id")
                    .map_err(q("read aggregate host"))?
                    == id
                {
                    hosts.push(m.try_get("host").map_err(q("read aggregate host"))?);
                }
            }
            out.push(AggregateRecord {
                id: uint(id),
                name: row.try_get("name").map_err(q("read aggregate"))?,
                metadata: from_json(
                    &row.try_get::<String, _>("metadata")
                        .map_err(q("read aggregate"))?,
                    "aggregate metadata",
                )?,
                hosts,
                created_at: row.try_get("created_at").map_err(q("read aggregate"))?,
                updated_at: row.try_get("updated_at").map_err(q("read aggregate"))?,
            });
        }
        Ok(out)
    }

    /// Writes an aggregate and its member list.
    ///
    /// # Errors
    /// `Duplicate` when the name is taken by another aggregate.
    pub async fn put_aggregate(&self, a: &AggregateRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        sqlx::query(
            "INSERT INTO aggregates (id, name, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET name = $2, metadata = $3, updated_at = $5",
        )
        .bind(int(a.id))
        .bind(&a.name)
        .bind(to_json(&a.metadata))
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(q("store aggregate"))?;
        sqlx::query("DELETE FROM aggregate_hosts WHERE aggregate_id = $1")
            .bind(int(a.id))
            .execute(&mut *tx)
            .await
            .map_err(q("store aggregate hosts"))?;
        for host in &a.hosts {
            sqlx::query("INSERT INTO aggregate_hosts (aggregate_id, host) VALUES ($1, $2)")
                .bind(int(a.id))
                .bind(host)
                .execute(&mut *tx)
                .await
                .map_err(q("store aggregate hosts"))?;
        }
        tx.commit().await.map_err(q("commit"))
    }

    /// Deletes an aggregate.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn delete_aggregate(&self, id: u64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        for sql in [
            "DELETE FROM aggregate_hosts WHERE aggregate_id = $1",
            "DELETE FROM aggregates WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(int(id))
                .execute(&mut *tx)
                .await
                .map_err(q("delete aggregate"))?;
        }
        tx.commit().await.map_err(q("commit"))
    }

    /// Every server.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn servers(&self) -> Result<Vec<ServerRecord>, StoreError> {
        sqlx::query("SELECT * FROM servers ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list servers"))?
            .iter()
            .map(server)
            .collect()
    }

    /// Inserts or updates a server.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn put_server(&self, s: &ServerRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO servers (id, name, flavor, image, zone, host, status, task_state, fault, trust_alert, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO UPDATE SET zone = $5, host = $6, status = $7, task_state = $8, fault = $9, \
             trust_alert = $10, updated_at = $13",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(to_json(&s.flavor))
        .bind(&s.image)
        .bind(&s.zone)
        .bind(&s.host)
        .bind(&s.status)
        .bind(&s.task_state)
        .bind(s.fault.as_ref().map(to_json))
        .bind(s.trust_alert.as_ref().map(to_json))
        .bind(to_json(&s.metadata))
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await
        .map_err(q("store server"))?;
        Ok(())
    }

    /// Deletes a server.
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn delete_server(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM servers WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(q("delete server"))?;
        Ok(())
    }

    /// Records an instance action (`create`, `delete`, `trust_alert`).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn add_action(
        &self,
        server_id: &str,
        action: &str,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instance_actions (server_id, at, action, message) VALUES ($1, $2, $3, $4)",
        )
        .bind(server_id)
        .bind(now_ms())
        .bind(action)
        .bind(message)
        .execute(&self.pool)
        .await
        .map_err(q("record instance action"))?;
        Ok(())
    }

    /// A server's actions, oldest first: (Unix ms, action, message).
    ///
    /// # Errors
    /// A `StoreError`.
    pub async fn actions(
        &self,
        server_id: &str,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, action, message FROM instance_actions WHERE server_id = $1 ORDER BY at",
        )
        .bind(server_id)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list instance actions"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("at").map_err(q("read instance action"))?,
                    r.try_get("action").map_err(q("read instance action"))?,
                    r.try_get("message").map_err(q("read instance action"))?,
                ))
            })
            .collect()
    }
}
