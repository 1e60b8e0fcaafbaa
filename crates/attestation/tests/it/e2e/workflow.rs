//! The seed's story end to end: enrollment, a golden host's evidence imported as a policy,
//! good and tampered hosts, PollHosts as Nova calls it, EARs, metrics, the trust stream and
//! the dashboard.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_workflow_good_and_tampered_hosts() {
    let pool = Pool::new(2);
    let server = trustpool_attestation::start(pool.server_config(true, &pool.ek_cas()))
        .await
        .unwrap();
    let api = Api::new(&pool, &server);
    let good = pool
        .agent(0, "node1", "boot/known-good.toml", &server)
        .await;
    let bad = pool
        .agent(1, "node2", "boot/tampered-bios.toml", &server)
        .await;

    // Enrolled and attested, but no policy yet: never trusted.
    // Both hosts enroll on their own schedule; wait for both before assigning policies.
    api.wait_for("node2", "untrusted").await;
    let view = api.wait_for("node1", "untrusted").await;
    assert!(
        view["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no known-good policy"),
        "{view}"
    );
    assert_eq!(view["software_tpm"], true);

    // The administrator imports the golden host, reviews and stores the policy, assigns it.
    let (status, doc) = api
        .call(
            reqwest::Method::POST,
            "/v1/policies/import",
            Some(json!({"host": "node1", "name": "golden"})),
        )
        .await;
    assert_eq!(status, 200, "{doc}");
    let (status, created) = api
        .call(reqwest::Method::POST, "/v1/policies", Some(doc))
        .await;
    assert_eq!(status, 201, "{created}");
    for host in ["node1", "node2"] {
        let (status, _) = api
            .call(
                reqwest::Method::PUT,
                &format!("/v1/hosts/{host}/policies"),
                Some(json!({"policies": ["golden"]})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let view = api.wait_for("node1", "trusted").await;
    assert_eq!(view["policy"], "golden@1");
    // node2 was already untrusted (no policy): attest it now to see the new reason.
    let (status, verdict) = api
        .call(reqwest::Method::POST, "/v1/hosts/node2/attest", None)
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["trust_lvl"], "untrusted");
    let reason = verdict["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("BIOS: PCR 0 (sha256) differs from the policy: expected"),
        "{reason}"
    );
    // Importing from the tampered host would bless its BIOS: refused without force.
    let import = |force: bool| json!({"host": "node2", "name": "from-node2", "force": force});
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/policies/import",
            Some(import(false)),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("untrusted now"),
        "{body}"
    );
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/policies/import",
            Some(import(true)),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Signed results: an EAR per host, verifiable with the JWKS.
    for (host, status) in [("node1", "affirming"), ("node2", "contraindicated")] {
        let claims = api.ear(host).await;
        assert_eq!(claims["submods"][host]["ear.status"], status, "{claims}");
        assert_eq!(claims["eat_profile"], "tag:github.com,2023:veraison/ear");
        assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    }

    // Identical consecutive verdicts are one run in the history: attesting node1 again
    // adds no row, it extends the current one.
    let before = node1_history(&api).await;
    for _ in 0..2 {
        let (status, verdict) = api
            .call(reqwest::Method::POST, "/v1/hosts/node1/attest", None)
            .await;
        assert_eq!(
            (status, verdict["trust_lvl"].as_str()),
            (200, Some("trusted"))
        );
    }
    let after = node1_history(&api).await;
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert_eq!(after[0]["at"], before[0]["at"]);
    assert_eq!(
        after[0]["repeats"].as_i64().unwrap(),
        before[0]["repeats"].as_i64().unwrap() + 2
    );
    assert!(after[0]["until"].as_str().unwrap() >= before[0]["until"].as_str().unwrap());

    // An administrator gives node1 another name (agents cannot claim one).
    let (status, view) = api
        .call(
            reqwest::Method::PUT,
            "/v1/hosts/node1/aliases",
            Some(json!({"aliases": ["node1.pool.test"]})),
        )
        .await;
    assert_eq!(
        (status, &view["aliases"]),
        (200, &json!(["node1.pool.test"]))
    );
    // PollHosts, as Nova sends it: names and aliases echoed; unregistered hosts unknown.
    let (status, body) = api
        .poll(json!(["node2", "node1.pool.test", "nobody"]), BLOB)
        .await;
    assert_eq!(status, 200);
    let levels: Vec<(&str, &str)> = body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host_name"].as_str().unwrap(),
                h["trust_lvl"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        levels,
        vec![
            ("node2", "untrusted"),
            ("node1.pool.test", "trusted"),
            ("nobody", "unknown")
        ]
    );
    assert!(body["hosts"][0]["vtime"].as_str().unwrap().ends_with('Z'));
    let (status, body) = api.poll(json!("node1"), BLOB).await;
    assert_eq!(
        (status, body["hosts"][0]["trust_lvl"].as_str()),
        (200, Some("trusted")),
        "Folsom's string form"
    );
    let (status, _) = api.poll(json!(["node1"]), "wrong").await;
    assert_eq!(status, 401);

    // Metrics count what happened (aggregates only).
    let metrics = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("trustpool_hosts{trust_lvl=\"trusted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trustpool_hosts{trust_lvl=\"untrusted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trustpool_attestation_seconds_count"),
        "{metrics}"
    );
    // Two PollHosts answered above (3 names, then 1; the one refused with 401 is not).
    assert!(
        metrics.contains("trustpool_poll_hosts_seconds_count 2\n")
            && metrics.contains("trustpool_poll_hosts_names_total 4\n"),
        "{metrics}"
    );

    // The trust stream: a snapshot on connect, then changes as they happen.
    let mut stream = api
        .client
        .get(format!("{}/v1/trust/stream", api.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let mut seen = String::new();
    while !(seen.contains("\"host_name\":\"node1\"") && seen.contains("\"trust_lvl\":\"trusted\""))
    {
        seen.push_str(&String::from_utf8_lossy(
            &tokio::time::timeout(Duration::from_secs(10), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        ));
    }

    // The agent goes silent: unknown within the TTL, never a stale trusted — and the stream
    // says so without anyone polling.
    good.stop().await;
    let view = api.wait_for("node1", "unknown").await;
    assert!(
        view["reasons"][0]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{view}"
    );
    let mut seen = String::new();
    while !seen.contains("\"trust_lvl\":\"unknown\"") {
        seen.push_str(&String::from_utf8_lossy(
            &tokio::time::timeout(Duration::from_secs(20), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        ));
    }
    assert!(seen.contains("event: trust"), "{seen}");

    // The dashboard: a browser's Basic auth (password = a token), every host, escaped.
    let page = |auth: Option<&str>| {
        let mut req = api.client.get(format!("{}/dashboard", api.base));
        if let Some(token) = auth {
            req = req.basic_auth("operator", Some(token));
        }
        req.send()
    };
    let refused = page(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_eq!(page(Some("not-a-token")).await.unwrap().status(), 401);
    let shown = page(Some(ADMIN)).await.unwrap();
    let csp = shown.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'"),
        "no script may run: {csp}"
    );
    let html = shown.text().await.unwrap();
    assert!(
        html.contains("<tr id=\"host-node1\"><td>node1</td><td class=\"unknown\">unknown</td>"),
        "{html}"
    );
    assert!(
        html.contains("<tr id=\"host-node2\"><td>node2</td><td class=\"untrusted\">untrusted</td>"),
        "{html}"
    );
    assert!(
        html.contains("PCR 0 (sha256) differs from the policy"),
        "{html}"
    );

    bad.stop().await;
    server.stop().await;
}
