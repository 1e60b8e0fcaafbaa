//! The compute verbs against an in-process scheduler: the seed's spelling of flavor-key,
//! nova and openstack forms, Nova's column names and error messages, exit codes.

use trustpool_api::compute::HostReport;
use trustpool_client::{ComputeClient, TlsOptions};
use trustpool_testkit::pki::TestPki;

use super::{run, sha256_hex};

const ADMIN: &str = "cli-compute-admin";

#[tokio::test(flavor = "multi_thread")]
async fn nova_verbs_and_openstack_aliases() {
    let dir = std::env::temp_dir().join(format!("trustpool-cli-compute-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = TestPki::new(&dir.join("pki"), "cli compute CA");
    let _ = pki.issue("server", &["127.0.0.1", "localhost"]);
    let p = dir.join("pki");
    let conf = format!(
        "[DEFAULT]\nosapi_compute_listen = 127.0.0.1\nosapi_compute_listen_port = 0\n\
         scheduler_default_filters = RetryFilter,AvailabilityZoneFilter,RamFilter,ComputeFilter\n\
         [database]\nconnection = sqlite:///{db}\n[ssl]\ncert_file = {p}/server.crt\nkey_file = {p}/server.key\n\
         [trustpool]\nadmin_token_sha256 = {admin}\n",
        db = dir.join("sched.db").display(),
        p = p.display(),
        admin = sha256_hex(ADMIN),
    );
    let config = trustpool_scheduler::conf::Config::parse(&conf).unwrap();
    let sched = trustpool_scheduler::start(config).await.unwrap();
    let url = format!("https://127.0.0.1:{}", sched.address.port());
    let env = vec![
        ("TRUSTPOOL_COMPUTE_URL", url.clone()),
        ("TRUSTPOOL_CA_FILE", pki.ca_cert().display().to_string()),
        ("TRUSTPOOL_TOKEN", ADMIN.to_owned()),
    ];
    let ok = |args: &[&str]| {
        let r = run(&env, args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        r.stdout
    };
    // An administrator creates each node (nova-style, then openstack-style) and hands its
    // agent the token printed once; each token reports for its own node.
    for (host, args) in [
        (
            "compute-1",
            vec!["hypervisor-create", "compute-1", "-o", "json"],
        ),
        (
            "compute-2",
            vec!["hypervisor", "create", "compute-2", "-o", "json"],
        ),
    ] {
        let created: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        assert_eq!(created["hypervisor"]["hypervisor_hostname"], host);
        let token = created["compute_token"].as_str().unwrap().to_owned();
        let agent = ComputeClient::new(
            &url,
            &TlsOptions {
                ca_pem: Some(pki.ca_pem()),
                identity: None,
            },
            Some(token),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        agent
            .report(&HostReport {
                host_name: host.into(),
                memory_mb: 2048,
                vcpus: 4,
                local_gb: 20,
                availability_zone: "nova".into(),
                agent_url: format!("https://{host}:9443"),
            })
            .await
            .unwrap();
    }
    let rotated = ok(&["hypervisor-token-rotate", "compute-2"]);
    assert!(
        rotated.contains("compute_token: ") && rotated.contains("token_file"),
        "{rotated}"
    );
    ok(&["hypervisor", "rotate-token", "compute-2"]);
    // '.' and '..' cannot be sent in a URL path: refused before any request.
    for name in [".", ".."] {
        let r = run(&env, &["hypervisor-show", name]);
        assert_ne!(r.code, 0, "{name}");
        assert!(r.stderr.contains("cannot name a resource"), "{}", r.stderr);
    }

    let out = ok(&["flavor-create", "m1.tiny", "1", "512", "1", "1"]);
    assert!(
        out.contains("| name                       | m1.tiny"),
        "{out}"
    );
    // The seed's spelling (two words) and the documented one (KEY=VALUE) are the same.
    ok(&[
        "flavor-key",
        "m1.tiny",
        "set",
        "trust:trusted_host",
        "trusted",
    ]);
    let shown = ok(&["flavor-show", "m1.tiny", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["extra_specs"]["trust:trusted_host"], "trusted");
    ok(&["flavor-key", "m1.tiny", "unset", "trust:trusted_host"]);
    let r = run(
        &env,
        &["flavor-key", "m1.tiny", "set", "trusted_host=trusted"],
    );
    assert!(
        r.stderr.contains("did you mean trust:trusted_host"),
        "{}",
        r.stderr
    );
    ok(&[
        "flavor",
        "set",
        "--property",
        "trust:trusted_host=untrusted",
        "m1.tiny",
    ]);
    let list = ok(&["flavor-list", "--extra-specs"]);
    assert!(list.contains("| ID | Name    | Memory_MB | Disk | Ephemeral | Swap | VCPUs | RXTX_Factor | Is_Public | extra_specs"), "{list}");
    assert!(
        list.contains("\"trust:trusted_host\":\"untrusted\""),
        "{list}"
    );
    ok(&[
        "flavor",
        "unset",
        "--property",
        "trust:trusted_host",
        "m1.tiny",
    ]);
    ok(&[
        "flavor", "create", "--ram", "4096", "--disk", "1", "--vcpus", "1", "--id", "9", "m1.big",
    ]);

    let hv = ok(&["hypervisor-list"]);
    assert!(
        hv.contains("| ID | Hypervisor hostname | State | Status  | Trust   |"),
        "{hv}"
    );
    assert!(
        hv.contains("| 1  | compute-1           | up    | enabled | unknown |"),
        "{hv}"
    );
    ok(&[
        "service-disable",
        "compute-1",
        "nova-compute",
        "--reason",
        "maintenance",
    ]);
    let services = ok(&["service-list"]);
    assert!(
        services.contains("disabled") && services.contains("maintenance"),
        "{services}"
    );

    let booted = ok(&[
        "boot", "--flavor", "m1.tiny", "--image", "cirros", "--wait", "vm1",
    ]);
    assert!(
        booted.contains("| OS-EXT-SRV-ATTR:host                | compute-2"),
        "{booted}"
    );
    let listed = ok(&["list"]);
    assert!(
        listed.contains("| vm1  | ACTIVE | -          | compute-2 |"),
        "{listed}"
    );
    ok(&["server", "show", "vm1"]);
    // No host has 4 GiB free: Nova's fault, exit 1.
    let r = run(
        &env,
        &["server", "create", "--flavor", "m1.big", "--wait", "vm2"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("No valid host was found. There are not enough hosts available."),
        "{}",
        r.stderr
    );
    ok(&["service-enable", "compute-1"]);
    ok(&["aggregate-create", "rack1", "az1"]);
    ok(&["aggregate-add-host", "rack1", "compute-1"]);
    let zones = ok(&["availability-zone-list"]);
    assert!(
        zones.contains("| az1  | available | compute-1 |"),
        "{zones}"
    );
    let placed = ok(&[
        "boot",
        "--flavor",
        "m1.tiny",
        "--availability-zone",
        "az1",
        "--wait",
        "vm3",
    ]);
    assert!(placed.contains("compute-1"), "{placed}");
    ok(&["delete", "vm1"]);

    // Errors read like Nova's and exit 1.
    let r = run(&env, &["flavor-show", "m9"]);
    assert_eq!(
        (r.code, r.stderr.trim()),
        (1, "trustpool: Flavor m9 could not be found.")
    );
    let r = run(&env, &["show", "nothing"]);
    assert_eq!(
        (r.code, r.stderr.trim()),
        (1, "trustpool: Instance nothing could not be found.")
    );
    let r = run(&env, &["flavor-key", "m1.tiny", "set", "a=1", "b"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    sched.stop().await;
}
