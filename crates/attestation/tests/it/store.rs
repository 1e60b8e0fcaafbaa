//! The store against real databases: SQLite always, PostgreSQL when
//! `TRUSTPOOL_TEST_POSTGRES` names one (`make test` starts a throwaway cluster).

use trustpool_api::oat::TrustLevel;
use trustpool_attestation::store::{
    HostRecord, HostState, Store, VerdictRecord, VerdictWrite, new_id, now_ms,
};

fn host(agent_id: &str, name: &str) -> HostRecord {
    HostRecord {
        agent_id: agent_id.into(),
        host_name: name.into(),
        aliases: vec![format!("{name}.example.com")],
        agent_url: "https://127.0.0.1:9443".into(),
        agent_certificate: "-----BEGIN CERTIFICATE-----".into(),
        ek_public: agent_id.as_bytes().to_vec(),
        ek_certificate: Some(vec![4, 5]),
        ak_public: vec![6, 7],
        state: HostState::Enrolled,
        policies: vec!["golden".into()],
        software_tpm: true,
        created_at: now_ms(),
        updated_at: now_ms(),
        clock_reset_at: None,
    }
}

async fn exercise(store: &Store, tag: &str) {
    let a = format!("{tag}-a");
    let h = host(&a, &format!("{tag}-node1"));
    let revision = store.fleet_revision().await.unwrap();
    store.put_host(&h).await.unwrap();
    // Every write of a host row moves the fleet revision (servers skip their scan otherwise).
    assert!(store.fleet_revision().await.unwrap() > revision);
    assert_eq!(store.host(&a).await.unwrap().unwrap(), h);
    let mut allowed = h.clone();
    allowed.clock_reset_at = Some(now_ms() + 1000);
    store.put_host(&allowed).await.unwrap();
    // Every write moves the row version forward, even with the same updated_at (servers
    // find changed hosts by it).
    let stored = store.host(&a).await.unwrap().unwrap();
    assert!(stored.updated_at > h.updated_at);
    assert_eq!(
        HostRecord {
            updated_at: h.updated_at,
            ..stored.clone()
        },
        allowed
    );
    let versions = store.enrolled_host_versions().await.unwrap();
    assert!(
        versions.contains(&(a.clone(), stored.updated_at)),
        "{versions:?}"
    );
    store.put_host(&h).await.unwrap();
    let again = store.host(&a).await.unwrap().unwrap();
    assert!(again.updated_at > stored.updated_at);
    {
        use futures_util::TryStreamExt as _;
        let all: Vec<HostRecord> = store.enrolled_hosts().try_collect().await.unwrap();
        assert!(all.contains(&again));
    }
    assert_eq!(
        store
            .host_by_name(&h.host_name)
            .await
            .unwrap()
            .unwrap()
            .agent_id,
        a
    );
    // The host name is unique: another agent cannot take it.
    assert!(
        store
            .put_host(&host(&format!("{tag}-b"), &h.host_name))
            .await
            .is_err()
    );

    store
        .put_challenge(&format!("{tag}-c1"), &a, "hash", "{}", now_ms() + 60_000)
        .await
        .unwrap();
    assert!(
        store
            .take_challenge(&format!("{tag}-c1"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .take_challenge(&format!("{tag}-c1"))
            .await
            .unwrap()
            .is_none(),
        "single use"
    );

    store
        .put_policy(&format!("{tag}-p"), 1, "{\"v\":1}")
        .await
        .unwrap();
    store
        .put_policy(&format!("{tag}-p"), 2, "{\"v\":2}")
        .await
        .unwrap();
    assert!(
        store
            .put_policy(&format!("{tag}-p"), 2, "{}")
            .await
            .is_err(),
        "versions are immutable"
    );
    let latest = store.latest_policies().await.unwrap();
    assert!(
        latest
            .iter()
            .any(|(n, v, d)| *n == format!("{tag}-p") && *v == 2 && d.contains('2'))
    );

    for (i, level) in [TrustLevel::Unknown, TrustLevel::Trusted]
        .into_iter()
        .enumerate()
    {
        let v = VerdictRecord {
            id: new_id(),
            agent_id: a.clone(),
            at: now_ms() + i64::try_from(i).unwrap(),
            until: now_ms() + i64::try_from(i).unwrap(),
            repeats: 1,
            level,
            policy: None,
            reasons: vec![format!("r{i}")],
            reset_count: Some(1),
            restart_count: Some(0),
            clock: Some(100),
            pcrs: None,
        };
        store.insert_verdict(&v).await.unwrap();
    }
    let latest = store.latest_verdicts().await.unwrap();
    assert_eq!(
        latest.iter().find(|v| v.agent_id == a).unwrap().level,
        TrustLevel::Trusted
    );
    assert_eq!(store.verdict_history(&a, 10).await.unwrap().len(), 2);

    // Runs: a repeat of the current verdict extends it (time, clock, count) …
    let current = store.verdict_history(&a, 1).await.unwrap().remove(0);
    let mut again = current.clone();
    again.id = new_id();
    again.until = current.until + 30_000;
    again.clock = Some(200);
    let ids = store
        .record_verdicts(&[VerdictWrite {
            verdict: again.clone(),
            repeats: Some(current.id.clone()),
        }])
        .await
        .unwrap();
    assert_eq!(ids, vec![current.id.clone()]);
    let history = store.verdict_history(&a, 10).await.unwrap();
    assert_eq!(history.len(), 2, "no new row");
    assert_eq!(
        (
            history[0].at,
            history[0].until,
            history[0].repeats,
            history[0].clock
        ),
        (current.at, again.until, 2, Some(200))
    );
    let latest = store.latest_verdicts().await.unwrap();
    assert_eq!(
        latest.iter().find(|v| v.agent_id == a).unwrap().until,
        again.until
    );
    // … but a repeat of a run that is no longer the host's current one is a new run.
    let stale = store.verdict_history(&a, 10).await.unwrap()[1].clone();
    let mut late = again.clone();
    late.id = new_id();
    late.at = again.until + 1;
    late.until = again.until + 1;
    let ids = store
        .record_verdicts(&[VerdictWrite {
            verdict: late.clone(),
            repeats: Some(stale.id.clone()),
        }])
        .await
        .unwrap();
    assert_eq!(ids, vec![late.id.clone()]);
    assert_eq!(store.verdict_history(&a, 10).await.unwrap().len(), 3);

    // Pruning removes runs that ended before the cutoff, never a host's current verdict.
    assert!(store.prune_verdicts(late.until + 1).await.unwrap() >= 2);
    let left = store.verdict_history(&a, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, late.id);

    // Leases: one owner at a time until expiry.
    let far = now_ms() + 60_000;
    assert!(store.lease(&a, "server-1", far).await.unwrap());
    assert!(
        store.lease(&a, "server-1", far).await.unwrap(),
        "renewal by the owner"
    );
    assert!(
        !store.lease(&a, "server-2", far).await.unwrap(),
        "another server waits"
    );
    assert!(
        store
            .lease(&format!("{tag}-expired"), "server-1", now_ms() - 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .lease(&format!("{tag}-expired"), "server-2", far)
            .await
            .unwrap(),
        "an expired lease is taken over"
    );

    store
        .put_evidence(&a, "sha256:0", "{}", Some(&[1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(
        store.evidence(&a).await.unwrap().unwrap().3,
        Some(vec![1, 2, 3])
    );
    store.audit("admin", "test", &a, "detail").await.unwrap();
    assert!(!store.audit_log(10).await.unwrap().is_empty());
    let revision = store.fleet_revision().await.unwrap();
    assert!(store.delete_host(&a).await.unwrap());
    assert!(store.fleet_revision().await.unwrap() > revision);
    assert!(store.host(&a).await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_store() {
    let dir = std::env::temp_dir().join(format!("trustpool-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/attestation.db", dir.display());
    let store = Store::connect(&url).await.unwrap();
    exercise(&store, "s").await;
    // Reopening runs migrations again without harm.
    drop(store);
    let again = Store::connect(&url).await.unwrap();
    assert!(again.hosts().await.unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn postgres_store() {
    let Ok(url) = std::env::var("TRUSTPOOL_TEST_POSTGRES") else {
        // `make test` always sets it; a bare `cargo test` without PostgreSQL skips loudly.
        eprintln!(
            "TRUSTPOOL_TEST_POSTGRES not set: PostgreSQL store test skipped (make test runs it)"
        );
        assert!(
            std::env::var("TRUSTPOOL_REQUIRE_POSTGRES").is_err(),
            "TRUSTPOOL_REQUIRE_POSTGRES is set but TRUSTPOOL_TEST_POSTGRES is not"
        );
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    exercise(&store, &format!("pg{}", std::process::id())).await;
}

#[test]
fn the_shipped_config_parses() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/attestation.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = trustpool_attestation::config::Config::parse(&text, "attestation.toml").unwrap();
    assert_eq!(config.interval, std::time::Duration::from_secs(30));
    assert!(!config.allow_software_tpm);
    let err = trustpool_attestation::config::Config::parse(
        &text.replace("interval_secs = 30", "interval_secs = 0"),
        "attestation.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("attestation.interval_secs"), "{err}");
    let err = trustpool_attestation::config::Config::parse(
        &text.replace("[auth]", "[auth]\nadmin_tokens = []"),
        "attestation.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("admin_tokens"), "{err}");
    let with_password = text.replace(
        "sqlite:///var/lib/trustpool/attestation.db",
        "postgres://trustpool:hunter2@db/trustpool",
    );
    let config =
        trustpool_attestation::config::Config::parse(&with_password, "attestation.toml").unwrap();
    assert!(
        !format!("{config:?}").contains("hunter2"),
        "the database URL never reaches a log line"
    );
}

#[test]
fn ca_cert_prints_the_issuer_for_nova() {
    let dir = std::env::temp_dir().join(format!("trustpool-cacert-{}", std::process::id()));
    let pki = trustpool_testkit::pki::TestPki::new(&dir.join("pki"), "export CA");
    let server = pki.issue("server", &["attestation.example.com", "192.0.2.10"]);
    let chain = dir.join("chain.crt");
    std::fs::write(&chain, format!("{}{}", server.cert_pem(), pki.ca_pem())).unwrap();
    let config = |cert: &std::path::Path| {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../packaging/attestation.toml"),
        )
        .unwrap()
        .replace(
            "/etc/trustpool/attestation.crt",
            &cert.display().to_string(),
        );
        let file = dir.join("a.toml");
        std::fs::write(&file, text).unwrap();
        file
    };
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trustpool-attestation"))
            .args(["ca-cert", "--config"])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = run(&config(&chain));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        pki.ca_pem().trim()
    );
    let out = run(&config(&server.cert));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds only the server certificate"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Administrators' writes and enrollments go through a `synchronous = FULL` connection on
/// SQLite (a power loss cannot revert a deletion or an enrollment); verdicts keep NORMAL.
#[tokio::test]
async fn sqlite_admin_writes_are_fully_synchronous() {
    let dir = std::env::temp_dir().join(format!("trustpool-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}/a.db", dir.display()))
        .await
        .unwrap();
    assert_eq!(store.sqlite_synchronous().await.unwrap(), Some((1, 2)));
    // Both pools see each other's writes (one file, WAL).
    store
        .enroll_host(&host("a", "node1"), Some("ek-a"), None, None)
        .await
        .unwrap();
    assert!(store.host("a").await.unwrap().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
