//! End to end over the local pool launcher (the real binaries as processes, swtpm, the
//! demo script): the seed's story, a host that goes silent, an attestation server that
//! restarts, and the whole pool on PostgreSQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trustpool_api::compute::flavor::{CreateFlavor, NewFlavor};
use trustpool_api::compute::server::NewServer;
use trustpool_client::ComputeClient;
use trustpool_testkit::pool::{Pool, PoolSpec};

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("trustpool-pool-{name}-{}", std::process::id()))
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_trustpool"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn spec(hosts: usize, tampered: usize, name: &str) -> PoolSpec {
    let mut spec = PoolSpec::new(hosts, tampered, &scratch(name));
    spec.bin_dir = Some(bin_dir());
    spec.interval_secs = 2;
    spec
}

async fn trusted_flavor(c: &ComputeClient) {
    c.create_flavor(&CreateFlavor {
        flavor: NewFlavor {
            name: "m1.tiny".into(),
            ram: 512,
            vcpus: 1,
            disk: 1,
            id: Some("1".into()),
            ephemeral: None,
            swap: None,
            rxtx_factor: None,
            is_public: None,
            description: None,
        },
    })
    .await
    .unwrap();
    c.set_extra_specs(
        "1",
        BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
    )
    .await
    .unwrap();
}

/// Boots one trusted instance and returns where it went (None: ERROR).
async fn boot(c: &ComputeClient, name: &str) -> Option<String> {
    let id = c
        .boot(NewServer {
            name: name.into(),
            image_ref: "cirros".into(),
            flavor_ref: "m1.tiny".into(),
            availability_zone: None,
            min_count: None,
            max_count: None,
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.server(&id).await.unwrap();
        if s.status != "BUILD" {
            return s.host;
        }
        assert!(Instant::now() < deadline, "{name} stays in BUILD");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_level(c: &ComputeClient, host: &str, level: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hv = c.hypervisor(host).await.unwrap();
        if hv.trust_level == level {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host} is {} at the scheduler, never {level}",
            hv.trust_level
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `make demo`'s story, as a script run without a terminal: exit 0 only if every step
/// happened as told (it also exercises the README's commands).
#[test]
fn the_demo_tells_the_seed_story() {
    let dir = scratch("demo");
    let out = std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo.sh"),
    )
    .env("TRUSTPOOL_BIN_DIR", bin_dir())
    .env("TRUSTPOOL_DEMO_DIR", &dir)
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("demo: every step happened as told."),
        "{text}"
    );
    assert!(!dir.join("pool.json").exists(), "the demo stopped its pool");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_host_becomes_unknown_and_is_excluded() {
    let mut pool = Pool::up(&spec(3, 1, "silent")).await.unwrap();
    let c = pool.compute().unwrap();
    trusted_flavor(&c).await;
    pool.stop_agent("compute-2").unwrap();
    wait_level(&c, "compute-2", "unknown").await;
    for i in 0..4 {
        assert_eq!(
            boot(&c, &format!("vm{i}")).await.as_deref(),
            Some("compute-1"),
            "only compute-1 is trusted now"
        );
    }
    // It comes back: trusted again, used again.
    pool.start_agent("compute-2").unwrap();
    wait_level(&c, "compute-2", "trusted").await;
    assert_eq!(boot(&c, "back").await.as_deref(), Some("compute-2"));
    pool.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attestation_server_restart_loses_nothing() {
    let mut pool = Pool::up(&spec(2, 1, "restart")).await.unwrap();
    let admin = pool.admin().unwrap();
    let c = pool.compute().unwrap();
    trusted_flavor(&c).await;
    // Attestations so far (identical consecutive verdicts are one run of `repeats`).
    let attestations =
        |runs: Vec<trustpool_api::v1::VerdictView>| -> i64 { runs.iter().map(|v| v.repeats).sum() };
    let before = attestations(admin.verdicts("compute-1").await.unwrap());
    pool.stop_attestation();
    // While it is down the scheduler keeps its cache (still within the timeout).
    assert_eq!(boot(&c, "during").await.as_deref(), Some("compute-1"));
    pool.start_attestation().unwrap();
    // Verdicts come back for every host, added to the history kept across the restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let grew = admin
            .verdicts("compute-1")
            .await
            .is_ok_and(|v| attestations(v) > before);
        let levels: BTreeMap<String, String> = admin
            .hosts()
            .await
            .map(|hosts| {
                hosts
                    .iter()
                    .map(|h| (h.host_name.clone(), h.trust_lvl.as_str().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let expected = levels.len() == 2
            && levels.get("compute-1").map(String::as_str) == Some("trusted")
            && levels.get("compute-2").map(String::as_str) == Some("untrusted");
        if grew && expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart: history grew {grew}, levels {levels:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        admin.policies().await.unwrap().len(),
        1,
        "the golden policy survived"
    );
    wait_level(&c, "compute-1", "trusted").await;
    assert_eq!(boot(&c, "after").await.as_deref(), Some("compute-1"));
    pool.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_on_postgresql() {
    let Ok(url) = std::env::var("TRUSTPOOL_TEST_POSTGRES") else {
        eprintln!("TRUSTPOOL_TEST_POSTGRES not set: skipped (make test runs it)");
        assert!(
            std::env::var("TRUSTPOOL_REQUIRE_POSTGRES").is_err(),
            "TRUSTPOOL_REQUIRE_POSTGRES is set but TRUSTPOOL_TEST_POSTGRES is not"
        );
        return;
    };
    // Its own database; both servers share it (separate tables and migration tables).
    sqlx::any::install_default_drivers();
    let server = sqlx::AnyPool::connect(&url).await.unwrap();
    let name = format!("trustpool_pool_{}", std::process::id());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&server)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let mut spec = spec(2, 1, "postgres");
    spec.postgres = Some(format!("{base}/{name}"));
    let pool = Pool::up(&spec).await.unwrap();
    let c = pool.compute().unwrap();
    trusted_flavor(&c).await;
    for i in 0..3 {
        assert_eq!(
            boot(&c, &format!("pg{i}")).await.as_deref(),
            Some("compute-1")
        );
    }
    assert!(
        std::fs::read_to_string(pool.dir.join("nova.conf"))
            .unwrap()
            .contains("connection = postgres://"),
        "the scheduler is on PostgreSQL"
    );
    pool.down();
}

/// The README's deployment commands: each shipped configuration parses, and check-config
/// then opens the files it names. On a machine that is not deployed (no /etc/trustpool)
/// the only complaints allowed are those files, each named by its option.
#[test]
fn the_readme_check_config_commands_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (bin, args) in [
        (
            "trustpool-attestation",
            vec!["check-config", "--config", "packaging/attestation.toml"],
        ),
        (
            "trustpool-agent",
            vec!["check-config", "--config", "packaging/agent.toml"],
        ),
        (
            "trustpool-scheduler",
            vec!["--config-file", "packaging/nova.conf", "--check-config"],
        ),
    ] {
        let out = std::process::Command::new(bin_dir().join(bin))
            .args(&args)
            .current_dir(&root)
            .output()
            .unwrap();
        if out.status.success() {
            continue;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stderr.lines().filter(|l| !l.ends_with("problem(s)")) {
            // "bin: packaging/FILE: option (/path): why"
            let named = line
                .split_once(" (/")
                .and_then(|(_, rest)| rest.split_once("): "))
                .map(|(path, _)| Path::new("/").join(path));
            assert!(
                named
                    .as_ref()
                    .is_some_and(|p| !p.exists() || p.parent().is_some_and(|d| !d.exists())),
                "{bin} {args:?}: a problem that is not a file this machine lacks: {line}"
            );
        }
    }
}

/// `trustpool dev up` in the foreground: SIGTERM stops every process it started (agents,
/// servers, swtpm) and it exits 0.
#[test]
fn dev_up_in_the_foreground_stops_everything_on_sigterm() {
    use std::io::BufRead as _;
    let dir = scratch("foreground");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trustpool"))
        .args([
            "dev",
            "up",
            "--hosts",
            "2",
            "--tampered",
            "1",
            "--interval",
            "2",
            "--dir",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut summary = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        summary.push_str(&line);
        summary.push('\n');
        if line.contains("Ctrl-C stops everything") {
            break;
        }
    }
    assert!(summary.contains("compute-2"), "{summary}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pool.json")).unwrap()).unwrap();
    let pids: Vec<u64> = state["pids"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    assert_eq!(pids.len(), 6, "2 agents, 2 swtpm, 2 servers: {state}");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "dev up did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} was left behind"
        );
    }
    assert!(!dir.join("pool.json").exists());
}
