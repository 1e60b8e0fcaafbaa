//! The attestation verbs against an in-process server (SQLite): exit codes, tables, JSON.

use std::path::PathBuf;

use trustpool_testkit::pki::TestPki;

use super::{run, sha256_hex};

const ADMIN: &str = "cli-admin-token";
const READER: &str = "cli-read-token";

fn server_config(dir: &std::path::Path, pki: &TestPki) -> trustpool_attestation::config::Config {
    let p = dir.join("pki");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n\
         [enrollment]\nek_ca = [\"{ca}\"]\n[auth]\nadmin_token_sha256 = [\"{admin}\"]\nread_token_sha256 = [\"{reader}\"]\n",
        db = dir.join("cli.db").display(),
        p = p.display(),
        ca = pki.ca_cert().display(),
        admin = sha256_hex(ADMIN),
        reader = sha256_hex(READER)
    );
    trustpool_attestation::config::Config::parse(&text, "cli.toml").unwrap()
}

fn policy_document(dir: &std::path::Path) -> PathBuf {
    let zero = "00".repeat(32);
    let doc = serde_json::json!({
        "name": "golden", "version": 0,
        "bios": {"pcrs": [{"bank": "sha256", "pcr": 0, "value": zero}]},
        "vmm": {"pcrs": [{"bank": "sha256", "pcr": 18, "events": [{"type": "EV_IPL", "description": "vmlinuz", "digests": [zero], "required": true}]}]}
    });
    let path = dir.join("golden.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn attestation_verbs() {
    let dir = std::env::temp_dir().join(format!("trustpool-cli-attest-{}", std::process::id()));
    let pki = TestPki::new(&dir.join("pki"), "cli CA");
    let _ = pki.issue("server", &["127.0.0.1"]);
    let server = trustpool_attestation::start(server_config(&dir, &pki))
        .await
        .unwrap();
    let env = vec![
        (
            "TRUSTPOOL_ATTESTATION_URL",
            format!("https://127.0.0.1:{}", server.address.port()),
        ),
        ("TRUSTPOOL_CA_FILE", pki.ca_cert().display().to_string()),
        ("TRUSTPOOL_TOKEN", ADMIN.to_owned()),
    ];
    let doc = policy_document(&dir).display().to_string();
    let env2 = env.clone();
    let results = tokio::task::spawn_blocking(move || {
        let env = env2;
        let empty = run(&env, &["host-list"]);
        let created = run(&env, &["policy-create", &doc]);
        let again = run(&env, &["policy-create", &doc]);
        let table = run(&env, &["policy-list"]);
        let json = run(&env, &["policy-list", "--output", "json"]);
        let missing = run(&env, &["host-show", "nosuch"]);
        let mut bad_env = env.clone();
        bad_env[2].1 = "wrong".to_owned();
        let bad_token = run(&bad_env, &["policy-create", &doc]);
        let no_url = run(&env[1..], &["host-list"]);
        (
            empty, created, again, table, json, missing, bad_token, no_url,
        )
    })
    .await
    .unwrap();
    let (empty, created, again, table, json, missing, bad_token, no_url) = results;
    assert_eq!(
        (empty.code, empty.stdout.lines().count()),
        (0, 1),
        "{}",
        empty.stderr
    );
    assert!(empty.stdout.starts_with("HOST"));
    assert_eq!(
        created.stdout.trim(),
        "created policy golden version 1",
        "{}",
        created.stderr
    );
    assert_eq!(again.stdout.trim(), "created policy golden version 2");
    assert!(
        table.stdout.lines().nth(1).unwrap().starts_with("golden"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains(" 2 "), "{}", table.stdout);
    let docs: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        docs[0]["vmm"]["pcrs"][0]["events"][0]["description"],
        "vmlinuz"
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("host nosuch not found"),
        "{}",
        missing.stderr
    );
    assert_eq!(bad_token.code, 1);
    assert!(
        bad_token.stderr.contains("invalid admin token"),
        "{}",
        bad_token.stderr
    );
    assert_eq!(no_url.code, 2);
    assert!(
        no_url.stderr.contains("TRUSTPOOL_ATTESTATION_URL"),
        "{}",
        no_url.stderr
    );
    // Tokens: each refusal alone — none, unknown, a read token on a write.
    let tls = trustpool_client::tls::client_config(&trustpool_client::TlsOptions {
        ca_pem: Some(pki.ca_pem()),
        identity: None,
    })
    .unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", server.address.port());
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(http.get(format!("{base}/v1/hosts")).send().await.unwrap()),
        401,
        "no token"
    );
    assert_eq!(
        status(
            http.get(format!("{base}/v1/hosts"))
                .bearer_auth("nope")
                .send()
                .await
                .unwrap()
        ),
        401,
        "unknown token"
    );
    assert_eq!(
        status(
            http.get(format!("{base}/v1/hosts"))
                .bearer_auth(READER)
                .send()
                .await
                .unwrap()
        ),
        200,
        "read token reads"
    );
    assert_eq!(
        status(
            http.get(format!("{base}/v1/audit"))
                .bearer_auth(READER)
                .send()
                .await
                .unwrap()
        ),
        401,
        "audit is admin-only"
    );
    let doc_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    assert_eq!(
        status(
            http.post(format!("{base}/v1/policies"))
                .bearer_auth(READER)
                .json(&doc_json)
                .send()
                .await
                .unwrap()
        ),
        401,
        "read token cannot write"
    );

    // The OpenAPI document is served and names the paths Nova and operators use.
    let tls = trustpool_client::tls::client_config(&trustpool_client::TlsOptions {
        ca_pem: Some(pki.ca_pem()),
        identity: None,
    })
    .unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let doc: serde_json::Value = client
        .get(format!(
            "https://127.0.0.1:{}/v1/openapi.json",
            server.address.port()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/AttestationService/resources/PollHosts",
        "/v1/hosts",
        "/v1/policies/import",
        "/v1/trust/stream",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
