//! Which name is which host, without agents: names and aliases are DNS-shaped, bounded and
//! unique across the fleet; aliases are an administrator's; a deleted host's names
//! designate nobody; clients encode names into paths; audit rows name the token.

use std::time::Duration;

use serde_json::{Value, json};
use trustpool_api::oat::TrustLevel;
use trustpool_attestation::service::cache::TrustCache;
use trustpool_attestation::store::Store;
use trustpool_client::{AdminClient, ClientError, TlsOptions};

use crate::fixtures::{ADMIN_TOKEN, host, server_config, verdict};

const TTL: Duration = Duration::from_secs(60);

struct Server {
    server: trustpool_attestation::RunningServer,
    dir: std::path::PathBuf,
    http: reqwest::Client,
}

impl Server {
    async fn start(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("trustpool-identity-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let server = trustpool_attestation::start(server_config(&dir))
            .await
            .unwrap();
        let tls = trustpool_client::tls::client_config(&tls(&dir)).unwrap();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap();
        Self { server, dir, http }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.address.port())
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    fn admin(&self) -> AdminClient {
        AdminClient::new(
            &self.url(""),
            &tls(&self.dir),
            Some(ADMIN_TOKEN.to_owned()),
            Duration::from_secs(10),
        )
        .unwrap()
    }

    async fn stop(self) {
        self.server.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls(dir: &std::path::Path) -> TlsOptions {
    TlsOptions {
        ca_pem: Some(std::fs::read_to_string(dir.join("pki/ca.crt")).unwrap()),
        identity: None,
    }
}

/// Enrolls a fake host the way enrollment stores one (its names taken, its EK key kept).
async fn enroll(store: &Store, id: &str, name: &str, aliases: &[&str]) {
    store
        .enroll_host(
            &host(id, name, aliases),
            Some(&format!("ek-of-{id}")),
            None,
            None,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn names_and_aliases_are_dns_shaped_bounded_and_set_by_an_administrator() {
    let s = Server::start("names").await;
    let s = &s;
    let post = |body: Value| async move { s.call(reqwest::Method::POST, "/v1/hosts", &body).await };
    // A name that would retarget a URL path, an escape for the operator's terminal, a
    // right-to-left override: each a 400 naming the field.
    for bad in [
        "x/../compute-1",
        "compute-1?#",
        "\u{1b}[2Jcompute-1",
        "compute-\u{202e}1",
    ] {
        let (status, body) = post(json!({"host_name": bad})).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with("host_name:"),
            "{body}"
        );
    }
    // 100,000 aliases (under 1 MiB of JSON): refused, not stored, not polled.
    let many: Vec<String> = (0..100_000).map(|i| format!("h{i}")).collect();
    let (status, body) = post(json!({"host_name": "compute-9", "aliases": many})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("at most 16"),
        "{body}"
    );

    // Unique across every host's name and aliases.
    let store = &s.server.service.store;
    enroll(store, "a", "compute-1", &["c1"]).await;
    enroll(store, "b", "compute-2", &[]).await;
    s.server.service.refresh_cache().await.unwrap();
    for (path, body, taken) in [
        (
            "/v1/hosts/compute-2/aliases",
            json!({"aliases": ["compute-1"]}),
            "compute-1",
        ),
        (
            "/v1/hosts/compute-2/aliases",
            json!({"aliases": ["c1"]}),
            "c1",
        ),
    ] {
        let (status, answer) = s.call(reqwest::Method::PUT, path, &body).await;
        assert_eq!(status, 409, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(taken),
            "{answer}"
        );
    }
    let (status, answer) = post(json!({"host_name": "compute-3", "aliases": ["c1"]})).await;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = post(json!({"host_name": "compute-1"})).await;
    assert_eq!(
        status, 409,
        "an enrolled name needs host-reenroll: {answer}"
    );
    // An administrator's alias works at once, in PollHosts' resolution.
    let (status, view) = s
        .call(
            reqwest::Method::PUT,
            "/v1/hosts/compute-2/aliases",
            &json!({"aliases": ["c2", "compute-2.example.com"]}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(s.server.service.cache.agent_id("c2").as_deref(), Some("b"));
    // Audit rows name the administrator's token, not "admin".
    let audit = store.audit_log(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, actor, action, subject, detail)| actor == "ops"
                && action == "aliases_set"
                && subject == "compute-2"
                && detail == "c2,compute-2.example.com"),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_never_lets_a_name_retarget_the_path() {
    let s = Server::start("paths").await;
    let store = &s.server.service.store;
    enroll(store, "a", "compute-1", &[]).await;
    s.server.service.refresh_cache().await.unwrap();
    let admin = s.admin();
    for name in [
        "x/../compute-1",
        "..",
        "compute-1?x",
        "compute-1#",
        "%2e%2e",
    ] {
        let refused = admin.delete_host(name).await;
        assert!(
            matches!(
                refused,
                Err(ClientError::Status { status: 404, .. } | ClientError::Unaddressable(_))
            ),
            "{name}: {refused:?}"
        );
        assert!(
            store.host_by_name("compute-1").await.unwrap().is_some(),
            "{name} deleted compute-1"
        );
    }
    assert!(matches!(
        admin.delete_host("..").await,
        Err(ClientError::Unaddressable(_))
    ));
    admin.delete_host("compute-1").await.unwrap();
    assert!(store.host_by_name("compute-1").await.unwrap().is_none());
    let audit = store.audit_log(10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, actor, action, _, _)| actor == "ops" && action == "deleted"),
        "{audit:?}"
    );
    s.stop().await;
}

/// The documented remedy for a compromised host is to delete it. Its name must then read
/// unknown — not another host's level because that host's short name (or a weaker claim)
/// is the same — until an administrator gives the name out again.
#[tokio::test]
async fn a_deleted_hosts_names_designate_nobody_until_given_out_again() {
    let dir = std::env::temp_dir().join(format!("trustpool-tombstone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}/a.db", dir.display()))
        .await
        .unwrap();
    let cache = TrustCache::default();
    enroll(&store, "m", "compute-3", &[]).await;
    enroll(&store, "t", "compute-3.rack2", &[]).await;
    store
        .insert_verdict(&verdict("m", TrustLevel::Untrusted))
        .await
        .unwrap();
    store
        .insert_verdict(&verdict("t", TrustLevel::Trusted))
        .await
        .unwrap();
    cache.sync(&store).await.unwrap();
    assert_eq!(cache.level("compute-3", TTL), TrustLevel::Untrusted);
    let snapshot = cache.snapshot();
    let of_t = snapshot
        .iter()
        .find(|c| c.host_name == "compute-3.rack2")
        .unwrap();
    assert!(
        of_t.aliases.is_empty(),
        "the stream does not give t a name that designates m: {of_t:?}"
    );

    store.delete_host("m").await.unwrap();
    let changes = cache.sync(&store).await.unwrap();
    assert_eq!(cache.level("compute-3", TTL), TrustLevel::Unknown);
    assert!(
        changes
            .iter()
            .any(|c| c.host_name == "compute-3" && c.trust_lvl == TrustLevel::Unknown),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .all(|c| !c.aliases.contains(&"compute-3".to_owned())),
        "no host takes the deleted name: {changes:?}"
    );

    // An administrator gives the name out again; the new host enrolls under it.
    enroll(&store, "n", "compute-3", &[]).await;
    store
        .insert_verdict(&verdict("n", TrustLevel::Trusted))
        .await
        .unwrap();
    cache.sync(&store).await.unwrap();
    assert_eq!(cache.agent_id("compute-3").as_deref(), Some("n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn one_tpm_and_one_name_are_enforced_by_the_database_too() {
    let dir = std::env::temp_dir().join(format!("trustpool-unique-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}/a.db", dir.display()))
        .await
        .unwrap();
    enroll(&store, "a", "compute-1", &["c1"]).await;
    // The same EK key under another name (a race two servers could run, or the same key in
    // another TPM2B_PUBLIC encoding: the fingerprint is of the key).
    let err = store
        .enroll_host(&host("b", "compute-2", &[]), Some("ek-of-a"), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, trustpool_attestation::store::StoreError::Conflict(_)),
        "{err}"
    );
    // Another host's alias as a host name, and as an alias.
    for (name, aliases) in [("c1", &[][..]), ("compute-3", &["compute-1"][..])] {
        let err = store
            .enroll_host(&host("c", name, aliases), Some("ek-of-c"), None, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, trustpool_attestation::store::StoreError::Conflict(_)),
            "{name}: {err}"
        );
    }
    assert!(
        store.host("c").await.unwrap().is_none(),
        "nothing half-stored"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Deleting a host (the remedy for a compromised one) also revokes any credential given out
/// for its name, and retires its short name; an administrator cannot hand out a name that
/// another host answers to by its short name without seeing it.
#[tokio::test(flavor = "multi_thread")]
async fn a_deletion_revokes_the_names_credentials_and_retires_its_short_name() {
    let s = Server::start("delete").await;
    let service = &s.server.service;
    let store = &service.store;
    enroll(store, "m", "compute-3.rack1", &[]).await;
    enroll(store, "t", "compute-7.rack1", &[]).await;
    service.refresh_cache().await.unwrap();
    // A re-enrollment window was open when the host was found compromised.
    let (status, grant) = s
        .call(
            reqwest::Method::POST,
            "/v1/hosts/compute-3.rack1/re-enroll",
            &json!({}),
        )
        .await;
    assert_eq!(status, 201, "{grant}");
    assert!(store.grant("compute-3.rack1").await.unwrap().is_some());
    s.admin().delete_host("compute-3.rack1").await.unwrap();
    assert!(
        store.grant("compute-3.rack1").await.unwrap().is_none(),
        "the token dies with the host"
    );
    // Its short name designates nobody, even once another host would answer to it.
    enroll(store, "n", "compute-3.rack2", &[]).await;
    service.refresh_cache().await.unwrap();
    assert_eq!(service.cache.agent_id("compute-3"), None);
    // A living host's short name cannot be given to another without the administrator
    // seeing whose it is.
    let (status, answer) = s
        .call(
            reqwest::Method::POST,
            "/v1/hosts",
            &json!({"host_name": "compute-7"}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("designates host compute-7.rack1"),
        "{answer}"
    );
    // An explicit alias gives the retired short name out again.
    let (status, view) = s
        .call(
            reqwest::Method::PUT,
            "/v1/hosts/compute-3.rack2/aliases",
            &json!({"aliases": ["compute-3"]}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(service.cache.agent_id("compute-3").as_deref(), Some("n"));
    // Revoking a credential.
    let (status, _) = s
        .call(
            reqwest::Method::POST,
            "/v1/hosts",
            &json!({"host_name": "compute-9"}),
        )
        .await;
    assert_eq!(status, 201);
    s.admin().revoke_grant("compute-9").await.unwrap();
    assert!(store.grant("compute-9").await.unwrap().is_none());
    assert!(matches!(
        s.admin().revoke_grant("compute-9").await,
        Err(ClientError::Status { status: 404, .. })
    ));
}
