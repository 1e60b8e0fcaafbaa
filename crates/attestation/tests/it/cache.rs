//! The in-memory fleet PollHosts answers from, against a real SQLite store: incremental
//! sync (new, changed and deleted rows), verdicts from the database, and names — an
//! ambiguous name designates no host.

use std::time::Duration;

use trustpool_api::oat::TrustLevel;
use trustpool_attestation::service::cache::TrustCache;
use trustpool_attestation::store::{HostState, Store, new_id, now_ms};

use super::fixtures::{host, verdict};

const TTL: Duration = Duration::from_secs(600);

struct Db {
    dir: std::path::PathBuf,
    store: Store,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn db(tag: &str) -> Db {
    let dir = std::env::temp_dir().join(format!("trustpool-cache-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}/a.db", dir.display()))
        .await
        .unwrap();
    Db { dir, store }
}

#[tokio::test]
async fn sync_follows_new_changed_and_deleted_rows() {
    let db = db("sync").await;
    let store = &db.store;
    let cache = TrustCache::default();
    store
        .put_host(&host("a", "node1.example.com", &["10.0.0.1"]))
        .await
        .unwrap();
    let mut pending = host("p", "pending", &[]);
    pending.state = HostState::PendingApproval;
    store.put_host(&pending).await.unwrap();
    store
        .insert_verdict(&verdict("a", TrustLevel::Trusted))
        .await
        .unwrap();

    let changes = cache.sync(store).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        changes[0].trust_lvl,
        TrustLevel::Trusted,
        "one change, the final level"
    );
    for name in ["node1.example.com", "10.0.0.1", "node1"] {
        assert_eq!(cache.level(name, TTL), TrustLevel::Trusted, "{name}");
    }
    assert!(
        cache.host_named("pending").is_none(),
        "not enrolled, not attested"
    );
    let generation = cache.generation();

    // Nothing changed: nothing rebuilt.
    let before = cache.host_by_id("a").unwrap();
    assert!(cache.sync(store).await.unwrap().is_empty());
    assert_eq!(cache.generation(), generation);
    assert!(std::sync::Arc::ptr_eq(
        &before,
        &cache.host_by_id("a").unwrap()
    ));

    // A changed row (new alias, same updated_at written) is read again; its verdict stays.
    // Subscribers learn the names that designate it now, and that the old alias designates
    // nobody.
    store
        .put_host(&host("a", "node1.example.com", &["10.0.0.2"]))
        .await
        .unwrap();
    let mut changes = cache.sync(store).await.unwrap();
    changes.sort_by(|x, y| x.host_name.cmp(&y.host_name));
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        (
            changes[0].host_name.as_str(),
            changes[0].trust_lvl,
            changes[0].aliases.is_empty()
        ),
        ("10.0.0.1", TrustLevel::Unknown, true)
    );
    assert_eq!(changes[1].host_name, "node1.example.com");
    assert_eq!(changes[1].aliases, vec!["10.0.0.2", "node1"]);
    assert_eq!(changes[1].trust_lvl, TrustLevel::Trusted);
    assert_ne!(cache.generation(), generation);
    assert_eq!(cache.level("10.0.0.2", TTL), TrustLevel::Trusted);
    assert_eq!(
        cache.level("10.0.0.1", TTL),
        TrustLevel::Unknown,
        "old alias gone"
    );

    // A verdict recorded here (SQLite has one server: every verdict passes by here).
    assert!(cache.record(&verdict("a", TrustLevel::Untrusted)).is_some());
    assert_eq!(cache.level("node1", TTL), TrustLevel::Untrusted);

    // A deleted host is unknown at once, and subscribers are told, name by name.
    store.delete_host("a").await.unwrap();
    let changes = cache.sync(store).await.unwrap();
    let mut released: Vec<&str> = changes.iter().map(|c| c.host_name.as_str()).collect();
    released.sort_unstable();
    assert_eq!(released, vec!["10.0.0.2", "node1", "node1.example.com"]);
    assert!(
        changes
            .iter()
            .all(|c| c.trust_lvl == TrustLevel::Unknown && c.reasons == ["the host was deleted"])
    );
    assert_eq!(cache.level("node1.example.com", TTL), TrustLevel::Unknown);
    assert!(cache.hosts().is_empty());
}

#[tokio::test]
async fn an_ambiguous_name_is_unknown() {
    let db = db("names").await;
    let store = &db.store;
    let cache = TrustCache::default();
    // Two hosts share the short name `web`; a third is named `db` exactly while a fourth
    // uses `db` as an alias.
    for (id, name, aliases) in [
        ("a", "web.rack1.example.com", &[][..]),
        ("b", "web.rack2.example.com", &[][..]),
        ("c", "db", &[][..]),
        ("d", "db2.example.com", &["db"][..]),
    ] {
        store.put_host(&host(id, name, aliases)).await.unwrap();
        store
            .insert_verdict(&verdict(id, TrustLevel::Trusted))
            .await
            .unwrap();
    }
    cache.sync(store).await.unwrap();
    assert_eq!(cache.level("web", TTL), TrustLevel::Unknown, "ambiguous");
    assert_eq!(
        cache.level("web.rack1.example.com", TTL),
        TrustLevel::Trusted
    );
    assert_eq!(
        cache.agent_id("db").as_deref(),
        Some("c"),
        "a host name beats an alias"
    );
    // Once one of the two is gone, the short name still designates nobody: a deleted
    // host's names never silently move to another host (an administrator's alias can).
    store.delete_host("b").await.unwrap();
    cache.sync(store).await.unwrap();
    assert_eq!(cache.agent_id("web"), None);
    assert_eq!(
        cache.agent_id("web.rack1.example.com").as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn stale_and_future_dated_verdicts_are_unknown_and_an_older_one_never_replaces_a_newer() {
    let db = db("ttl").await;
    let store = &db.store;
    let cache = TrustCache::default();
    store.put_host(&host("a", "n", &[])).await.unwrap();
    cache.sync(store).await.unwrap();
    let mut old = verdict("a", TrustLevel::Trusted);
    old.at = now_ms() - 10_000;
    old.until = old.at;
    assert!(cache.record(&old).is_some());
    assert_eq!(
        cache.level("n", Duration::from_secs(5)),
        TrustLevel::Unknown
    );
    assert_eq!(cache.level("n", TTL), TrustLevel::Trusted);
    let newer = verdict("a", TrustLevel::Untrusted);
    assert!(cache.record(&newer).is_some());
    assert!(cache.record(&old).is_none(), "older than what is known");
    assert_eq!(cache.level("n", TTL), TrustLevel::Untrusted);
    // A verdict from a server whose clock runs an hour ahead would outlive every later
    // one: it is unknown (a minute of skew is tolerated).
    let mut ahead = verdict("a", TrustLevel::Trusted);
    ahead.until = now_ms() + 30_000;
    assert!(cache.record(&ahead).is_some());
    assert_eq!(cache.level("n", TTL), TrustLevel::Trusted);
    ahead.until = now_ms() + 3_600_000;
    assert!(
        cache.record(&ahead).is_none(),
        "recorded, but the same level: no change"
    );
    assert_eq!(cache.level("n", TTL), TrustLevel::Unknown);
}

#[tokio::test]
async fn on_a_shared_database_another_servers_verdicts_arrive_with_the_sync() {
    let Ok(url) = std::env::var("TRUSTPOOL_TEST_POSTGRES") else {
        eprintln!(
            "TRUSTPOOL_TEST_POSTGRES not set: shared-database sync test skipped (make test runs it)"
        );
        assert!(
            std::env::var("TRUSTPOOL_REQUIRE_POSTGRES").is_err(),
            "TRUSTPOOL_REQUIRE_POSTGRES is set but TRUSTPOOL_TEST_POSTGRES is not"
        );
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    let (ours, theirs) = (TrustCache::default(), Store::connect(&url).await.unwrap());
    let id = format!("shared-{}", new_id());
    let name = format!("{id}.example.com");
    theirs.put_host(&host(&id, &name, &[])).await.unwrap();
    ours.sync(&store).await.unwrap();
    assert_eq!(ours.level(&name, TTL), TrustLevel::Unknown);
    theirs
        .insert_verdict(&verdict(&id, TrustLevel::Trusted))
        .await
        .unwrap();
    let changes = ours.sync(&store).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.host_name == name && c.trust_lvl == TrustLevel::Trusted)
    );
    assert_eq!(ours.level(&name, TTL), TrustLevel::Trusted);
    theirs.delete_host(&id).await.unwrap();
}

/// What every write of a host row does in the store's transaction: move the fleet revision.
async fn bump(raw: &sqlx::AnyPool) {
    sqlx::query("UPDATE fleet_revision SET revision = revision + 1 WHERE id = 1")
        .execute(raw)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreadable_host_row_is_left_out_and_the_others_still_sync() {
    let db = db("corrupt").await;
    let store = &db.store;
    // Enough hosts for the first sync to stream the rows (a few are read one by one).
    let mut hosts: Vec<(String, String)> = (0..40)
        .map(|i| (format!("good{i}"), format!("good{i}.example.com")))
        .collect();
    hosts.push(("bad".into(), "bad.example.com".into()));
    for (id, name) in &hosts {
        store.put_host(&host(id, name, &[])).await.unwrap();
        store
            .insert_verdict(&verdict(id, TrustLevel::Trusted))
            .await
            .unwrap();
    }
    // Damage one row behind the store's back.
    let raw = sqlx::AnyPool::connect(&format!("sqlite://{}/a.db", db.dir.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE hosts SET aliases = 'not JSON' WHERE agent_id = 'bad'")
        .execute(&raw)
        .await
        .unwrap();
    let cache = TrustCache::default();
    cache.sync(store).await.unwrap();
    assert_eq!(cache.hosts().len(), 40);
    assert_eq!(cache.level("good7.example.com", TTL), TrustLevel::Trusted);
    assert_eq!(
        cache.level("bad.example.com", TTL),
        TrustLevel::Unknown,
        "never trusted"
    );
    // A row changed by hand without moving the fleet revision is not scanned for until the
    // once-a-minute full scan: the revision gates the per-second work.
    sqlx::query(
        "UPDATE hosts SET aliases = '[]', updated_at = updated_at + 1 WHERE agent_id = 'bad'",
    )
    .execute(&raw)
    .await
    .unwrap();
    cache.sync(store).await.unwrap();
    assert!(
        cache.host_by_id("bad").is_none(),
        "not scanned: revision unchanged"
    );
    sqlx::query("UPDATE hosts SET aliases = 'not JSON' WHERE agent_id = 'bad'")
        .execute(&raw)
        .await
        .unwrap();
    // Still broken when read one by one (its row version moved): still left out.
    sqlx::query("UPDATE hosts SET updated_at = updated_at + 1 WHERE agent_id = 'bad'")
        .execute(&raw)
        .await
        .unwrap();
    bump(&raw).await;
    cache.sync(store).await.unwrap();
    assert!(cache.host_by_id("bad").is_none());
    sqlx::query(
        "UPDATE hosts SET aliases = '[]', updated_at = updated_at + 1 WHERE agent_id = 'bad'",
    )
    .execute(&raw)
    .await
    .unwrap();
    bump(&raw).await;
    cache.sync(store).await.unwrap();
    assert!(
        cache.host_by_id("bad").is_some(),
        "back in the fleet, to be attested"
    );
    assert_eq!(
        cache.level("bad.example.com", TTL),
        TrustLevel::Unknown,
        "until attested"
    );
}
