//! The TrustedFilter against a real HTTPS `PollHosts` endpoint whose answers the test
//! controls: Nova's wire dialect (`AttestationServiceTestCase`), placement by level, one
//! batched request for every host, fail-closed when the server errs, forced hosts still
//! filtered, and running instances flagged when their host turns untrusted. The same
//! against the real attestation server is `e2e.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use trustpool_client::{ClientError, OatClient};

use super::api::{boot, flavor};
use super::*;

/// One request as the endpoint saw it: (x-auth-blob, content-type, accept, body).
type Seen = (Option<String>, Option<String>, Option<String>, Value);

#[derive(Default)]
struct Endpoint {
    /// (status, body) to answer.
    answer: Mutex<(u16, String)>,
    /// Every request: (x-auth-blob, content-type, accept, body).
    seen: Mutex<Vec<Seen>>,
}

impl Endpoint {
    fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }
    fn levels(&self, levels: &[(&str, &str)]) {
        let hosts: Vec<Value> = levels
            .iter()
            .map(|(h, l)| json!({"host_name": h, "trust_lvl": l, "vtime": trustpool_api::time::rfc3339(trustpool_api::time::now_ms())}))
            .collect();
        self.answer(200, &json!({ "hosts": hosts }).to_string());
    }
    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn poll_hosts(
    State(e): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    e.seen.lock().unwrap().push((
        h("x-auth-blob"),
        h("content-type"),
        h("accept"),
        serde_json::from_str(&body).unwrap_or(Value::Null),
    ));
    let (status, body) = e.answer.lock().unwrap().clone();
    (StatusCode::from_u16(status).unwrap(), body)
}

async fn serve(h: &Harness) -> (Arc<Endpoint>, SocketAddr, axum_server::Handle<SocketAddr>) {
    let endpoint = Arc::new(Endpoint::default());
    let p = h.dir.join("pki");
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        p.join("server.crt"),
        p.join("server.key"),
    )
    .await
    .unwrap();
    let app = Router::new()
        .route("/AttestationService/resources/PollHosts", post(poll_hosts))
        .with_state(endpoint.clone());
    let handle = axum_server::Handle::new();
    tokio::spawn(
        axum_server::bind_rustls(SocketAddr::from(([127, 0, 0, 1], 0)), tls)
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );
    let addr = handle.listening().await.unwrap();
    (endpoint, addr, handle)
}

/// Nova's `AttestationServiceTestCase`: 200/201/202/204 are success, 404 is not, a body
/// that is not JSON is an error (Nova crashed on it) — and the request is Nova's.
#[tokio::test(flavor = "multi_thread")]
async fn the_oat_client_speaks_novas_dialect() {
    let h = Harness::new("oat");
    let (e, addr, handle) = serve(&h).await;
    let client = OatClient::new(
        &format!(
            "https://127.0.0.1:{}/AttestationService/resources/PollHosts",
            addr.port()
        ),
        h.pki.ca_pem(),
        Some("i-am-openstack".into()),
        Duration::from_secs(5),
    )
    .unwrap();
    let hosts = vec!["node1".to_owned(), "node2".to_owned()];
    for status in [200, 201, 202] {
        e.answer(status, r#"{"test": "test"}"#);
        let body = client.poll_hosts(&hosts).await.unwrap();
        assert_eq!(body, br#"{"test": "test"}"#, "{status}");
    }
    // Nova's test fakes a 204 with a body; over real HTTP a 204 has none, and an empty
    // 2xx body is an error (Nova crashed on it).
    e.answer(204, r#"{"test": "test"}"#);
    assert!(matches!(
        client.poll_hosts(&hosts).await,
        Err(ClientError::Decode { .. })
    ));
    e.answer(404, r#"{"test": "test"}"#);
    assert!(matches!(
        client.poll_hosts(&hosts).await,
        Err(ClientError::Status { status: 404, .. })
    ));
    // A body that is not JSON is the reader's error, never a crash (Nova raised).
    e.answer(200, "{}{}");
    let body = client.poll_hosts(&hosts).await.unwrap();
    assert!(
        trustpool_api::oat::read_answer(&body, 0)
            .unwrap_err()
            .contains("not JSON")
    );
    let (blob, ctype, accept, body) = e.seen.lock().unwrap()[0].clone();
    assert_eq!(blob.as_deref(), Some("i-am-openstack"));
    assert_eq!(ctype.as_deref(), Some("application/json"));
    assert_eq!(accept.as_deref(), Some("application/json"));
    assert_eq!(body, json!({"count": 2, "hosts": ["node1", "node2"]}));
    // A server certificate from another CA is refused.
    let other = TestPki::new(&h.dir.join("other"), "other CA");
    let stranger = OatClient::new(
        &format!(
            "https://127.0.0.1:{}/AttestationService/resources/PollHosts",
            addr.port()
        ),
        other.ca_pem(),
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(
        stranger.poll_hosts(&hosts).await,
        Err(ClientError::Connect { .. })
    ));
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_flavors_land_only_on_trusted_hosts_and_fail_closed() {
    let h = Harness::new("trusted");
    let (e, addr, handle) = serve(&h).await;
    e.levels(&[("h1", "trusted"), ("h2", "untrusted")]);
    let attestation = Attestation {
        port: addr.port(),
        api_url: "/AttestationService/resources",
        auth_blob: Some("i-am-openstack"),
        timeout_secs: 2,
        stream_token: None,
    };
    let conf = h.nova_conf(
        &h.sqlite(),
        "AvailabilityZoneFilter,RamFilter,ComputeFilter,TrustedFilter",
        Some(&attestation),
    );
    let s = h.scheduler(&conf).await;
    let admin = h.client(&s, ADMIN);
    for name in ["h1", "h2", "h3"] {
        let compute = h.compute(&s, name).await;
        compute.report(&report(name, 8192, 8, 100)).await.unwrap();
    }
    admin
        .create_flavor(&flavor("m1.tiny", "1", 512, 1, 1))
        .await
        .unwrap();
    admin
        .set_extra_specs(
            "m1.tiny",
            BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
        )
        .await
        .unwrap();
    admin
        .create_flavor(&flavor("m1.untrusted", "2", 512, 1, 1))
        .await
        .unwrap();
    admin
        .set_extra_specs(
            "2",
            BTreeMap::from([("trust:trusted_host".into(), "untrusted".into())]),
        )
        .await
        .unwrap();
    admin
        .create_flavor(&flavor("m1.plain", "3", 512, 1, 1))
        .await
        .unwrap();

    let mut trusted_vm = String::new();
    for i in 0..4 {
        let id = admin
            .boot(boot(&format!("t{i}"), "m1.tiny", None))
            .await
            .unwrap();
        let vm = settled(&admin, &id).await;
        assert_eq!(vm.host.as_deref(), Some("h1"), "{vm:?}");
        trusted_vm = vm.id;
    }
    let id = admin.boot(boot("u", "m1.untrusted", None)).await.unwrap();
    assert_eq!(settled(&admin, &id).await.host.as_deref(), Some("h2"));
    let mut anywhere = std::collections::BTreeSet::new();
    for i in 0..6 {
        let id = admin
            .boot(boot(&format!("p{i}"), "m1.plain", None))
            .await
            .unwrap();
        anywhere.insert(settled(&admin, &id).await.host.unwrap());
    }
    assert!(
        anywhere.len() > 1,
        "a plain flavor is not confined: {anywhere:?}"
    );
    // Every request named every known host in one batch, with the auth blob.
    let seen = e.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for (blob, _, _, body) in &seen {
        assert_eq!(blob.as_deref(), Some("i-am-openstack"));
        let mut hosts: Vec<&str> = body["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        hosts.sort_unstable();
        assert_eq!(hosts, vec!["h1", "h2", "h3"]);
        assert_eq!(body["count"], 3);
    }
    // The hypervisor shows the level the scheduler acts on.
    let hv = admin.hypervisor("h1").await.unwrap();
    assert_eq!(hv.trust_level, "trusted");
    assert!(hv.trust_vtime.is_some());
    assert_eq!(admin.hypervisor("h3").await.unwrap().trust_level, "unknown");

    // An administrator forcing the untrusted host does not bypass the TrustedFilter.
    let id = admin
        .boot(boot("forced", "m1.tiny", Some("nova:h2")))
        .await
        .unwrap();
    let vm = settled(&admin, &id).await;
    assert_eq!(vm.status, "ERROR");
    let details = vm.fault.unwrap().details.unwrap();
    assert!(
        details.contains("'TrustedFilter: (start: 1, end: 0)'"),
        "{details}"
    );

    // h1 turns untrusted: the running trusted instance is flagged, new ones avoid it.
    e.levels(&[("h1", "untrusted"), ("h2", "untrusted")]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let alert = loop {
        if let Some(alert) = admin.server(&trusted_vm).await.unwrap().trust_alert {
            break alert;
        }
        assert!(tokio::time::Instant::now() < deadline, "no trust alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alert.trust_lvl, "untrusted");
    // The alert shows on the server at once; its instance action is stored right after.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let kinds = loop {
        let actions = admin
            .raw(
                reqwest::Method::GET,
                &format!("/v2.1/servers/{trusted_vm}/os-instance-actions"),
                None,
            )
            .await
            .unwrap();
        let kinds: Vec<String> = actions["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap().to_owned())
            .collect();
        if kinds.len() > 1 || tokio::time::Instant::now() >= deadline {
            break kinds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(kinds, vec!["create", "trust_alert"]);
    let id = admin.boot(boot("after", "m1.tiny", None)).await.unwrap();
    let vm = settled(&admin, &id).await;
    assert_eq!(vm.status, "ERROR");
    assert!(
        vm.fault
            .unwrap()
            .message
            .starts_with("No valid host was found.")
    );

    // The attestation server fails: nothing is trusted (nor untrusted) once entries
    // expire; polls back off instead of following every lookup.
    e.levels(&[("h1", "trusted")]);
    e.answer(500, "oops");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = e.requests();
    for (name, f) in [("x1", "m1.tiny"), ("x2", "m1.untrusted"), ("x3", "m1.tiny")] {
        let id = admin.boot(boot(name, f, None)).await.unwrap();
        assert_eq!(settled(&admin, &id).await.status, "ERROR", "{name}");
    }
    assert!(
        e.requests() - before <= 2,
        "backing off, not polling per lookup"
    );
    let id = admin
        .boot(boot("plain-still-works", "m1.plain", None))
        .await
        .unwrap();
    assert_eq!(settled(&admin, &id).await.status, "ACTIVE");
    s.stop().await;
    handle.shutdown();
}
