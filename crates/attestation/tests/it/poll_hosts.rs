//! PollHosts at the size Nova sends: every compute node it knows in one request. 100,000
//! names (the most accepted) fit the route's body limit and are all answered, echoed in
//! order; one name more is refused with the reason.

use trustpool_api::oat::{MAX_POLL_HOSTS, TrustLevel};

use super::fixtures::{after_first_round, host, server_config, verdict};

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_thousand_names_in_one_request_are_answered() {
    let dir = std::env::temp_dir().join(format!("trustpool-poll-{}", std::process::id()));
    let server = trustpool_attestation::start(server_config(&dir))
        .await
        .unwrap();
    let service = &server.service;
    let known = "compute-000042.rack-17.dc1.example.com";
    service
        .store
        .put_host(&host("a", known, &[]))
        .await
        .unwrap();
    after_first_round(service, 1).await;
    let trusted = verdict("a", TrustLevel::Trusted);
    service.store.insert_verdict(&trusted).await.unwrap();
    service.cache.record(&trusted);

    // Names as long as real FQDNs: about 4.3 MB of request, 12 MB of answer.
    let names: Vec<String> = (0..MAX_POLL_HOSTS)
        .map(|i| format!("compute-{i:06}.rack-17.dc1.example.com"))
        .collect();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(dir.join("pki/ca.crt")).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{}/AttestationService/resources/PollHosts",
        server.address.port()
    );
    let body = serde_json::json!({"count": names.len(), "hosts": names}).to_string();
    assert!(body.len() > 4_000_000, "{}", body.len());
    let answer = client.post(&url).body(body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: trustpool_api::oat::PollHostsResponse = answer.json().await.unwrap();
    assert_eq!(answer.hosts.len(), MAX_POLL_HOSTS);
    assert!(
        answer
            .hosts
            .iter()
            .zip(&names)
            .all(|(h, n)| h.host_name == *n)
    );
    let levels: Vec<TrustLevel> = answer.hosts.iter().map(|h| h.trust_lvl).collect();
    assert_eq!(levels.get(42), Some(&TrustLevel::Trusted));
    assert_eq!(
        levels.iter().filter(|l| **l == TrustLevel::Unknown).count(),
        MAX_POLL_HOSTS - 1
    );

    // As many as a scheduler may hold (its node bound), each as long as a host name may be
    // (253 bytes): 25.6 MB, still under the route's limit.
    let longest: Vec<String> = (0..MAX_POLL_HOSTS)
        .map(|i| format!("{i:06}{}", "a".repeat(247)))
        .collect();
    let body = serde_json::json!({"hosts": longest}).to_string();
    assert!(body.len() > 25_000_000, "{}", body.len());
    let answer = client.post(&url).body(body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    drop(longest);

    // One more than the server takes: refused, saying why (not a 2xx with a partial list).
    let mut too_many = names;
    too_many.push("one-more".to_owned());
    let refused = client
        .post(&url)
        .body(serde_json::json!({"hosts": too_many}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let text = refused.text().await.unwrap();
    assert!(text.contains("more than 100000 hosts"), "{text}");

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `poll_hosts_auth_blob` set, a caller without it is refused before its body is read:
/// a 40 MiB body with a wrong blob gets 401 (or the connection closed under it), never the
/// server buffering it first (before: 16 MiB read, then 413).
#[tokio::test(flavor = "multi_thread")]
async fn a_caller_without_the_auth_blob_is_refused_before_its_body_is_read() {
    let dir = std::env::temp_dir().join(format!("trustpool-pollauth-{}", std::process::id()));
    let mut config = server_config(&dir);
    config.poll_hosts_auth_blob = Some(trustpool_attestation::config::Secret(
        "i-am-openstack".to_owned(),
    ));
    let server = trustpool_attestation::start(config).await.unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(dir.join("pki/ca.crt")).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{}/AttestationService/resources/PollHosts",
        server.address.port()
    );
    let status = client
        .post(&url)
        .header("x-auth-blob", "wrong")
        .body(vec![b' '; 40 << 20])
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok();
    assert!(matches!(status, None | Some(401)), "{status:?}");
    // The right blob with a small body still works.
    let answer = client
        .post(&url)
        .header("x-auth-blob", "i-am-openstack")
        .body(r#"{"count":1,"hosts":["nobody"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
