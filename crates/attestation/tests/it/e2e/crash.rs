//! Crash safety of enrollment: the server is SIGKILLed at a random point of a host's first
//! enrollment (afterwards the name is taken with its grant consumed, or neither), then at
//! random points while it re-enrolls (a new AK on the same TPM, with an administrator's
//! token): after each restart the host is either fully old or fully new — its record, its
//! name and its EK binding together — never gone, never two.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_re_enrollment_keeps_the_host_old_or_new() {
    let pool = Pool::new(1);
    let port = free_port();
    let db = format!("sqlite://{}", pool.dir.join("crash.db").display());
    let p = pool.dir.join("pki");
    let cas: Vec<String> = pool
        .ek_cas()
        .iter()
        .map(|c| format!("\"{}\"", c.display()))
        .collect();
    let file = pool.dir.join("crash.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nresult_signing_key = \"{key}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
             [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n\
             [enrollment]\ndev_ek_ca = [{cas}]\nallow_software_tpm = true\n[attestation]\ninterval_secs = 1\nverdict_ttl_secs = 5\n\
             [auth]\nadmin_token_sha256 = [\"e2e:{admin}\"]\n",
            p = p.display(),
            cas = cas.join(", "),
            key = pool.dir.join("ear.p8").display(),
            admin = sha256_hex(ADMIN),
        ),
    )
    .unwrap();
    let start = || {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(pool.dir.join("crash.log"))
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_trustpool-attestation"))
            .args(["run", "--config"])
            .arg(&file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        (child, std::time::Instant::now())
    };
    let listening = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (mut server, _) = start();
    listening().await;
    // A first enrollment killed at a random point: afterwards the name is either not
    // taken, its grant still unused, or taken by this TPM with the grant consumed.
    let agent = pool
        .agent_at(0, "node1", "boot/known-good.toml", port)
        .await;
    let mut delay = [0u8; 2];
    aws_lc_rs::rand::fill(&mut delay).unwrap();
    tokio::time::sleep(Duration::from_millis(
        u64::from(u16::from_le_bytes(delay)) % 300,
    ))
    .await;
    server.kill().unwrap();
    let _ = server.wait();
    {
        let store = trustpool_attestation::store::Store::connect(&db)
            .await
            .unwrap();
        let enrolled = store.host_by_name("node1").await.unwrap().is_some();
        let grant = store.grant("node1").await.unwrap().is_some();
        assert!(
            enrolled != grant,
            "first enrollment half done: enrolled {enrolled}, grant left {grant}"
        );
        eprintln!(
            "killed the first enrollment: {}",
            if enrolled { "enrolled" } else { "not yet" }
        );
    }
    let (restarted, _) = start();
    server = restarted;
    listening().await;
    // The agent retries (its token still valid if it was not used) and enrolls.
    let mut current = wait_for_host(&db, None).await;
    agent.stop().await;

    let mut outcomes = (0, 0);
    let state = pool.tpms[0].dir().join("agent-state");
    for round in 0..6u64 {
        // The operator lets node1 re-enroll; its agent lost its state (a new AK).
        let (status, grant) = Api::at(&pool, port)
            .call(reqwest::Method::POST, "/v1/hosts/node1/re-enroll", None)
            .await;
        assert_eq!(status, 201, "{grant}");
        let token = pool.dir.join("reenroll.token");
        std::fs::write(&token, grant["token"].as_str().unwrap()).unwrap();
        for f in ["ak-rsa.pub", "ak-rsa.priv"] {
            let _ = std::fs::remove_file(state.join(f));
        }
        let agent = pool
            .agent_with_token(0, "node1", "boot/known-good.toml", port, Some(&token))
            .await;
        let new_id = trustpool_api::bytes::to_hex(
            &trustpool_evidence::Public::parse_tpm2b(&agent.tpm.identity().ak_public)
                .unwrap()
                .name(),
        );
        // Somewhere in register → activate → prove (the agent starts registering at once).
        let mut delay = [0u8; 2];
        aws_lc_rs::rand::fill(&mut delay).unwrap();
        let delay_ms = u64::from(u16::from_le_bytes(delay)) % 400 + round * 20;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill().unwrap();
        let _ = server.wait();
        agent.stop().await;

        // Straight from the database: one record, old or new, with its name and EK.
        let store = trustpool_attestation::store::Store::connect(&db)
            .await
            .unwrap();
        let host = store
            .host_by_name("node1")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("round {round} (+{delay_ms} ms): node1 is gone"));
        assert!(
            host.agent_id == current || host.agent_id == new_id,
            "round {round}: node1 is agent {} (old {current}, new {new_id})",
            host.agent_id
        );
        assert_eq!(
            store.hosts().await.unwrap().len(),
            1,
            "round {round}: two records"
        );
        assert_eq!(
            store.name_holder("node1").await.unwrap(),
            Some(trustpool_attestation::store::NameHolder::Host(
                host.agent_id.clone()
            )),
            "round {round}: the name follows the record"
        );
        if host.agent_id == new_id {
            outcomes.1 += 1;
        } else {
            outcomes.0 += 1;
        }
        current = host.agent_id;
        drop(store);
        let (restarted, _) = start();
        server = restarted;
        listening().await;
        // A grant not consumed by the interrupted enrollment is revoked for the next round.
        let _ = Api::at(&pool, port)
            .call(reqwest::Method::DELETE, "/v1/hosts/node1/grant", None)
            .await;
    }
    eprintln!(
        "killed 6 re-enrollments: {} left the old record, {} the new",
        outcomes.0, outcomes.1
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// Waits until node1 is enrolled (and, if `not`, by another agent than that); its agent id.
async fn wait_for_host(db: &str, not: Option<&str>) -> String {
    let store = trustpool_attestation::store::Store::connect(db)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(h) = store.host_by_name("node1").await.unwrap()
            && not.is_none_or(|n| n != h.agent_id)
        {
            return h.agent_id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node1 never enrolled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
