//! Several servers on one PostgreSQL: leases, takeover after SIGKILL, nothing lost.

use super::*;

/// Two server processes on one PostgreSQL; the one holding the leases is killed with
/// SIGKILL; the other takes every host over within the lease time and nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_postgres_survive_a_sigkill() {
    let Ok(db) = std::env::var("TRUSTPOOL_TEST_POSTGRES") else {
        eprintln!("TRUSTPOOL_TEST_POSTGRES not set: scale-out test skipped (make test runs it)");
        assert!(
            std::env::var("TRUSTPOOL_REQUIRE_POSTGRES").is_err(),
            "TRUSTPOOL_REQUIRE_POSTGRES is set but TRUSTPOOL_TEST_POSTGRES is not"
        );
        return;
    };
    let pool = Pool::new(2);
    let mut children = Vec::new();
    let mut ports = Vec::new();
    for id in ["scale-a", "scale-b"] {
        let port = free_port();
        let p = pool.dir.join("pki");
        let cas: Vec<String> = pool
            .ek_cas()
            .iter()
            .map(|c| format!("\"{}\"", c.display()))
            .collect();
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nserver_id = \"{id}\"\nresult_signing_key = \"{key}\"\n[tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\
             [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server.crt\"\nclient_key = \"{p}/server.key\"\n\
             [enrollment]\ndev_ek_ca = [{cas}]\nallow_software_tpm = true\n[attestation]\ninterval_secs = 2\nverdict_ttl_secs = 6\n\
             [auth]\nadmin_token_sha256 = [\"e2e:{admin}\"]\n",
            admin = sha256_hex(ADMIN),
            p = p.display(),
            cas = cas.join(", "),
            key = pool.dir.join("ear.p8").display(),
        );
        let file = pool.dir.join(format!("{id}.toml"));
        std::fs::write(&file, text).unwrap();
        let log = std::fs::File::create(pool.dir.join(format!("{id}.log"))).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_trustpool-attestation"))
            .args(["run", "--config"])
            .arg(&file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        children.push(child);
        ports.push(port);
    }
    // Wait for the first server to listen, then let both agents register with it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", ports[1])).is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "servers did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tag = free_port();
    let names = [format!("scale{tag}-1"), format!("scale{tag}-2")];
    let a1 = pool
        .agent_at(0, &names[0], "boot/known-good.toml", ports[0])
        .await;
    let a2 = pool
        .agent_at(1, &names[1], "boot/known-good.toml", ports[0])
        .await;
    let store = trustpool_attestation::store::Store::connect(&db)
        .await
        .unwrap();
    let ids = wait_until_attested(&store, &names, 2).await;

    // Kill whichever server holds the first host's lease, without a chance to clean up.
    let owner = lease_owner(&store, &ids[0]).await;
    let victim = if owner == "scale-a" { 0 } else { 1 };
    let survivor = if victim == 0 { "scale-b" } else { "scale-a" };
    let killed_at = trustpool_attestation::store::now_ms();
    // std's Child::kill is SIGKILL on Unix.
    children[victim].kill().unwrap();
    let _ = children[victim].wait();

    // Every host keeps being attested, now by the survivor; the history before the kill is intact.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = true;
        for id in &ids {
            let latest = store.verdict_history(id, 1).await.unwrap();
            all &= latest.first().is_some_and(|v| v.until > killed_at + 500);
            all &= lease_owner(&store, id).await == survivor;
        }
        if all {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hosts were not taken over after the SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &ids {
        assert!(
            store
                .verdict_history(id, 1000)
                .await
                .unwrap()
                .iter()
                .any(|v| v.at < killed_at),
            "history before the kill is kept"
        );
    }
    a1.stop().await;
    a2.stop().await;
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

async fn lease_owner(store: &trustpool_attestation::store::Store, agent_id: &str) -> String {
    store
        .lease_owner(agent_id)
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn wait_until_attested(
    store: &trustpool_attestation::store::Store,
    names: &[String],
    verdicts: usize,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut ids = Vec::new();
        for name in names {
            if let Some(host) = store.host_by_name(name).await.unwrap()
                && store
                    .verdict_history(&host.agent_id, 100)
                    .await
                    .unwrap()
                    .iter()
                    .map(|v| usize::try_from(v.repeats).unwrap())
                    .sum::<usize>()
                    >= verdicts
            {
                ids.push(host.agent_id);
            }
        }
        if ids.len() == names.len() {
            return ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hosts were not attested"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
