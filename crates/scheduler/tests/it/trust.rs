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
    /// (host, level) to answer instead, with `vtime` = the time of the answer, as the
    /// attestation server does.
    levels: Mutex<Option<Vec<(String, String)>>>,
    /// Every request: (x-auth-blob, content-type, accept, body).
    seen: Mutex<Vec<Seen>>,
}

impl Endpoint {
    fn answer(&self, status: u16, body: &str) {
        *self.levels.lock().unwrap() = None;
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }
    fn levels(&self, levels: &[(&str, &str)]) {
        let levels = levels
            .iter()
            .map(|(h, l)| ((*h).to_owned(), (*l).to_owned()))
            .collect();
        *self.levels.lock().unwrap() = Some(levels);
    }
    /// What to answer now.
    fn now_answering(&self) -> (u16, String) {
        let Some(levels) = self.levels.lock().unwrap().clone() else {
            return self.answer.lock().unwrap().clone();
        };
        let vtime = trustpool_api::time::rfc3339(trustpool_api::time::now_ms());
        let hosts: Vec<Value> = levels
            .iter()
            .map(|(h, l)| json!({"host_name": h, "trust_lvl": l, "vtime": vtime}))
            .collect();
        (200, json!({ "hosts": hosts }).to_string())
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
    let (status, body) = e.now_answering();
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

/// A server's instance actions: (action, message).
async fn actions(admin: &ComputeClient, id: &str) -> Vec<(String, String)> {
    let body = admin
        .raw(
            reqwest::Method::GET,
            &format!("/v2.1/servers/{id}/os-instance-actions"),
            None,
        )
        .await
        .unwrap();
    body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits (up to `secs`) until `id`'s instance actions are `kinds`.
async fn wait_actions(admin: &ComputeClient, id: &str, kinds: &[&str], secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = actions(admin, id).await;
        if seen
            .iter()
            .map(|(a, _)| a.as_str())
            .eq(kinds.iter().copied())
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: {seen:?}, want {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to `secs`) until `id` has an alert (`true`) or none (`false`).
async fn wait_alert(
    admin: &ComputeClient,
    id: &str,
    raised: bool,
    secs: u64,
) -> Option<trustpool_api::compute::server::TrustAlert> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let alert = admin.server(id).await.unwrap().trust_alert;
        if alert.is_some() == raised {
            return alert;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: alert {alert:?} after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 12, item 6: silence is an alert too. A host of a running trusted instance that
/// stays `unknown` past `trust_alert_grace_seconds` raises the instance's `trust_alert`
/// (not before); the alert clears, recorded, when the host is trusted again; the
/// attestation server unreachable alerts every trusted instance after the grace period.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_host_alerts_after_the_grace_period_and_clears_when_trusted_again() {
    const GRACE: Duration = Duration::from_secs(3);
    let h = Harness::new("silence");
    let (e, addr, handle) = serve(&h).await;
    e.levels(&[("h1", "trusted"), ("h2", "trusted")]);
    let attestation = Attestation {
        port: addr.port(),
        api_url: "/AttestationService/resources",
        auth_blob: None,
        timeout_secs: 2,
        stream_token: None,
    };
    let conf = h
        .nova_conf(
            &h.sqlite(),
            "AvailabilityZoneFilter,RamFilter,ComputeFilter,TrustedFilter",
            Some(&attestation),
        )
        .replace(
            "[trustpool]\n",
            &format!(
                "[trustpool]\ntrust_alert_grace_seconds = {}\n",
                GRACE.as_secs()
            ),
        );
    let s = h.scheduler(&conf).await;
    let admin = h.client(&s, ADMIN);
    for name in ["h1", "h2"] {
        let compute = h.compute(&s, name).await;
        compute.report(&report(name, 8192, 8, 100)).await.unwrap();
    }
    admin
        .create_flavor(&flavor("m1.tiny", "1", 512, 1, 1))
        .await
        .unwrap();
    admin
        .set_extra_specs(
            "1",
            BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
        )
        .await
        .unwrap();
    admin
        .create_flavor(&flavor("m1.plain", "2", 512, 1, 1))
        .await
        .unwrap();
    let mut vms = Vec::new();
    for (name, flavor, host) in [
        ("on-h1", "m1.tiny", "nova:h1"),
        ("on-h2", "m1.tiny", "nova:h2"),
        ("plain-on-h1", "m1.plain", "nova:h1"),
    ] {
        let id = admin.boot(boot(name, flavor, Some(host))).await.unwrap();
        let vm = settled(&admin, &id).await;
        assert_eq!(vm.status, "ACTIVE", "{vm:?}");
        vms.push(vm.id);
    }
    let (on_h1, on_h2, plain) = (&vms[0], &vms[1], &vms[2]);

    // h1's agent stops: the server no longer lists it, h1 reads unknown. Nothing is
    // raised within the grace period; then the trusted instance on h1 is alerted.
    let silent_from = tokio::time::Instant::now();
    e.levels(&[("h2", "trusted")]);
    let alert = wait_alert(&admin, on_h1, true, GRACE.as_secs() + 10)
        .await
        .unwrap();
    let waited = silent_from.elapsed();
    assert!(
        waited >= GRACE,
        "alerted after {waited:?}, before the grace period"
    );
    assert_eq!(alert.trust_lvl, "unknown");
    assert!(
        alert.reasons[0].starts_with("no current verdict for ")
            && alert.reasons[0].contains("(grace 3 s)"),
        "{alert:?}"
    );
    wait_actions(&admin, on_h1, &["create", "trust_alert"], 10).await;
    assert!(admin.server(on_h2).await.unwrap().trust_alert.is_none());
    assert!(
        admin.server(plain).await.unwrap().trust_alert.is_none(),
        "a flavor that asked for no trust is not alerted"
    );

    // h1 is trusted again: the alert clears, with an instance action saying so.
    e.levels(&[("h1", "trusted"), ("h2", "trusted")]);
    wait_alert(&admin, on_h1, false, 10).await;
    wait_actions(
        &admin,
        on_h1,
        &["create", "trust_alert", "trust_alert_cleared"],
        10,
    )
    .await;
    let (_, message) = actions(&admin, on_h1).await.pop().unwrap();
    assert_eq!(message, "host h1 is trusted again");

    // The attestation server is unreachable: every host is unknown, and after the grace
    // period every trusted instance is alerted, saying why.
    e.answer(500, "down");
    for id in [on_h1, on_h2] {
        let alert = wait_alert(&admin, id, true, GRACE.as_secs() + 10)
            .await
            .unwrap();
        assert_eq!(alert.trust_lvl, "unknown");
        assert!(
            alert
                .reasons
                .iter()
                .any(|r| r.starts_with("the last poll of the attestation server failed")),
            "{alert:?}"
        );
    }
    // It answers again (after its back-off): the alerts clear.
    e.levels(&[("h1", "trusted"), ("h2", "trusted")]);
    for id in [on_h1, on_h2] {
        wait_alert(&admin, id, false, 40).await;
    }
    wait_actions(
        &admin,
        on_h2,
        &["create", "trust_alert", "trust_alert_cleared"],
        10,
    )
    .await;
    assert!(admin.server(plain).await.unwrap().trust_alert.is_none());
    s.stop().await;
    handle.shutdown();
}
