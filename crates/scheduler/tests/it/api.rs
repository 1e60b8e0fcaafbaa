//! The compute API as a Nova user and a Nova operator use it: flavors and extra specs,
//! hosts appearing from heartbeats, services, aggregates and zones, boots that consume
//! and deletes that free, concurrent boots that never overcommit, a restart that forgets
//! nothing — on SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use trustpool_api::compute::flavor::{CreateFlavor, NewFlavor};
use trustpool_api::compute::host::AggregateAction;
use trustpool_api::compute::server::NewServer;
use trustpool_client::{ClientError, ComputeClient};

use super::*;

pub(crate) fn flavor(name: &str, id: &str, ram: u64, disk: u64, vcpus: u32) -> CreateFlavor {
    CreateFlavor {
        flavor: NewFlavor {
            name: name.to_owned(),
            ram,
            vcpus,
            disk,
            id: Some(id.to_owned()),
            ephemeral: None,
            swap: None,
            rxtx_factor: None,
            is_public: None,
            description: None,
        },
    }
}

pub(crate) fn boot(name: &str, flavor: &str, zone: Option<&str>) -> NewServer {
    NewServer {
        name: name.to_owned(),
        image_ref: "cirros".to_owned(),
        flavor_ref: flavor.to_owned(),
        availability_zone: zone.map(str::to_owned),
        min_count: None,
        max_count: None,
        metadata: BTreeMap::new(),
    }
}

fn status_of(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Status {
            status, message, ..
        } => (status, message),
        other => panic!("expected an HTTP error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flavors_extra_specs_and_tokens_like_nova() {
    let h = Harness::new("flavors");
    let s = h
        .scheduler(&h.nova_conf(&h.sqlite(), "RamFilter,ComputeFilter", None))
        .await;
    let admin = h.client(&s, ADMIN);
    let reader = h.client(&s, READER);
    let created = admin
        .create_flavor(&flavor("m1.tiny", "1", 512, 1, 1))
        .await
        .unwrap();
    assert_eq!(
        (created.id.as_str(), created.ram, created.vcpus),
        ("1", 512, 1)
    );
    // The seed's command: `nova flavor-key m1.tiny set trust:trusted_host trusted`.
    let specs = admin
        .set_extra_specs(
            "m1.tiny",
            BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
        )
        .await
        .unwrap();
    assert_eq!(
        specs.get("trust:trusted_host").map(String::as_str),
        Some("trusted")
    );
    let shown = reader.flavor("1").await.unwrap();
    assert_eq!(shown.extra_specs, specs);
    assert_eq!(reader.flavors().await.unwrap().len(), 1);
    // Numbers are accepted as values (Nova's schema) and stored as strings.
    let v = admin
        .raw(
            reqwest::Method::POST,
            "/v2.1/flavors/1/os-extra_specs",
            Some(&serde_json::json!({"extra_specs": {"hw:cpu_cores": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(v["extra_specs"]["hw:cpu_cores"], "2");
    // One key; PUT must match the URI.
    let one = reader
        .raw(
            reqwest::Method::GET,
            "/v2.1/flavors/1/os-extra_specs/trust:trusted_host",
            None,
        )
        .await
        .unwrap();
    assert_eq!(one, serde_json::json!({"trust:trusted_host": "trusted"}));
    let (code, msg) = status_of(
        admin
            .raw(
                reqwest::Method::PUT,
                "/v2.1/flavors/1/os-extra_specs/a",
                Some(&serde_json::json!({"b": "1"})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((code, msg.as_str()), (400, "Request body and URI mismatch"));
    let (code, msg) = status_of(
        admin
            .set_extra_specs("1", BTreeMap::from([("bad/key".into(), "x".into())]))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    assert!(
        msg.contains("does not match '^[a-zA-Z0-9-_:. ]{1,255}$'"),
        "{msg}"
    );
    let (code, _) = status_of(
        admin
            .set_extra_specs("1", BTreeMap::from([("k".into(), "x".repeat(256))]))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    admin.unset_extra_spec("1", "hw:cpu_cores").await.unwrap();
    let (code, msg) = status_of(
        admin
            .unset_extra_spec("1", "hw:cpu_cores")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, msg.as_str()),
        (404, "Flavor 1 has no extra specs with key hw:cpu_cores.")
    );
    let (code, msg) = status_of(reader.flavor("m9").await.unwrap_err());
    assert_eq!((code, msg.as_str()), (404, "Flavor m9 could not be found."));
    let (code, msg) = status_of(
        admin
            .create_flavor(&flavor("m1.tiny", "2", 1, 1, 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, msg.as_str()),
        (409, "Flavor with name m1.tiny already exists.")
    );
    // Tokens: none → 401 (Keystone's words); read token cannot write; compute token only
    // reports heartbeats; an unknown token is no token.
    let (code, msg) = status_of(h.client(&s, "wrong").flavors().await.unwrap_err());
    assert_eq!(code, 401, "{msg}");
    let (code, _) = status_of(
        reader
            .create_flavor(&flavor("m2", "3", 1, 1, 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    let (code, _) = status_of(h.compute(&s, "h1").await.flavors().await.unwrap_err());
    assert_eq!(code, 403);
    let (code, _) = status_of(reader.report(&report("h1", 1024, 1, 10)).await.unwrap_err());
    assert_eq!(code, 403);
    admin.delete_flavor("m1.tiny").await.unwrap();
    assert!(reader.flavors().await.unwrap().is_empty());
    s.stop().await;
}

async fn placements(c: &ComputeClient) -> BTreeMap<String, usize> {
    let mut per_host = BTreeMap::new();
    for server in c.servers().await.unwrap() {
        if let Some(host) = server.host {
            *per_host.entry(host).or_default() += 1;
        }
    }
    per_host
}

/// Boot, consume, no valid host, delete, boot again — then a restart on the same
/// database rebuilds usage.
async fn boot_consume_free_and_restart(h: &Harness, db: &str) {
    let conf = h.nova_conf(
        db,
        "RetryFilter,AvailabilityZoneFilter,RamFilter,ComputeFilter",
        None,
    );
    let s = h.scheduler(&conf).await;
    let admin = h.client(&s, ADMIN);
    let token = h.node(&s, "compute-1").await;
    let compute = h.client(&s, &token);
    compute
        .report(&report("compute-1", 2048, 4, 40))
        .await
        .unwrap();
    admin
        .create_flavor(&flavor("m1.small", "2", 1024, 1, 1))
        .await
        .unwrap();
    let mut two = boot("web", "m1.small", None);
    two.min_count = Some(2);
    two.max_count = Some(2);
    let first = admin.boot(two).await.unwrap();
    let first = settled(&admin, &first).await;
    assert_eq!(first.status, "ACTIVE");
    assert_eq!(first.name, "web-1");
    assert_eq!(first.host.as_deref(), Some("compute-1"));
    assert_eq!(first.hypervisor_hostname.as_deref(), Some("compute-1"));
    assert_eq!(first.availability_zone, "nova");
    assert_eq!(placements(&admin).await.get("compute-1"), Some(&2));
    let hv = admin.hypervisor("compute-1").await.unwrap();
    assert_eq!(
        (hv.memory_mb_used, hv.free_ram_mb, hv.running_vms),
        (2048, 0, 2)
    );
    assert_eq!((hv.state.as_str(), hv.status.as_str()), ("up", "enabled"));
    // Full: the third fails as Nova's did, with the filter counts in the fault.
    let third = admin.boot(boot("db", "m1.small", None)).await.unwrap();
    let third = settled(&admin, &third).await;
    assert_eq!(third.status, "ERROR");
    assert!(third.host.is_none());
    let fault = third.fault.unwrap();
    assert_eq!(fault.code, 500);
    assert_eq!(
        fault.message,
        "No valid host was found. There are not enough hosts available."
    );
    assert!(
        fault
            .details
            .as_deref()
            .unwrap()
            .contains("'RamFilter: (start: 1, end: 0)'"),
        "{fault:?}"
    );
    admin.delete_server(&first.id).await.unwrap();
    let (code, msg) = status_of(admin.server(&first.id).await.unwrap_err());
    assert_eq!(
        (code, msg),
        (404, format!("Instance {} could not be found.", first.id))
    );
    let again = admin.boot(boot("db2", "2", Some("nova"))).await.unwrap();
    assert_eq!(settled(&admin, &again).await.status, "ACTIVE");
    s.stop().await;

    // A restart on the same database rebuilds the host's usage: still full.
    let s = h.scheduler(&conf).await;
    let admin = h.client(&s, ADMIN);
    // The node and its token are in the database too.
    h.client(&s, &token)
        .report(&report("compute-1", 2048, 4, 40))
        .await
        .unwrap();
    let hv = admin.hypervisor("compute-1").await.unwrap();
    assert_eq!((hv.free_ram_mb, hv.running_vms), (0, 2));
    let full = admin.boot(boot("db3", "m1.small", None)).await.unwrap();
    assert_eq!(settled(&admin, &full).await.status, "ERROR");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn boot_consume_free_and_restart_on_sqlite() {
    let h = Harness::new("boot");
    boot_consume_free_and_restart(&h, &h.sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn boot_consume_free_and_restart_on_postgres() {
    let Ok(url) = std::env::var("TRUSTPOOL_TEST_POSTGRES") else {
        eprintln!("TRUSTPOOL_TEST_POSTGRES not set: PostgreSQL test skipped (make test runs it)");
        assert!(
            std::env::var("TRUSTPOOL_REQUIRE_POSTGRES").is_err(),
            "TRUSTPOOL_REQUIRE_POSTGRES is set but TRUSTPOOL_TEST_POSTGRES is not"
        );
        return;
    };
    // A database of its own: the attestation server's tests use the shared one.
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&url).await.unwrap();
    let name = format!("trustpool_sched_{}", free_port());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let h = Harness::new("boot-pg");
    boot_consume_free_and_restart(&h, &format!("{base}/{name}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_boots_never_overcommit_a_host() {
    let h = Harness::new("race");
    let s = h
        .scheduler(&h.nova_conf(
            &h.sqlite(),
            "RetryFilter,RamFilter,CoreFilter,ComputeFilter",
            None,
        ))
        .await;
    let admin = h.client(&s, ADMIN);
    for i in 1..=3 {
        let name = format!("compute-{i}");
        h.compute(&s, &name)
            .await
            .report(&report(&name, 4096, 64, 100))
            .await
            .unwrap();
    }
    admin
        .create_flavor(&flavor("m1.small", "2", 1024, 1, 1))
        .await
        .unwrap();
    let admin = Arc::new(admin);
    let mut boots = Vec::new();
    for i in 0..30 {
        let c = admin.clone();
        boots.push(tokio::spawn(async move {
            let id = c.boot(boot(&format!("vm{i}"), "2", None)).await.unwrap();
            settled(&c, &id).await.status
        }));
    }
    let mut active = 0;
    for b in boots {
        if b.await.unwrap() == "ACTIVE" {
            active += 1;
        }
    }
    assert_eq!(active, 12, "3 hosts × 4 instances of 1 GiB fit, no more");
    for (host, n) in placements(&admin).await {
        assert_eq!(n, 4, "{host}");
    }
    for hv in admin.hypervisors().await.unwrap() {
        assert_eq!(hv.free_ram_mb, 0, "{}", hv.hypervisor_hostname);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn services_aggregates_and_zones() {
    let h = Harness::new("zones");
    let s = h
        .scheduler(&h.nova_conf(
            &h.sqlite(),
            "AvailabilityZoneFilter,ComputeFilter,AggregateInstanceExtraSpecsFilter",
            None,
        ))
        .await;
    let admin = h.client(&s, ADMIN);
    for name in ["compute-1", "compute-2"] {
        let compute = h.compute(&s, name).await;
        compute.report(&report(name, 4096, 8, 100)).await.unwrap();
    }
    admin
        .create_flavor(&flavor("m1.tiny", "1", 512, 1, 1))
        .await
        .unwrap();
    let services = admin.services().await.unwrap();
    assert_eq!(services.len(), 2);
    assert!(
        services
            .iter()
            .all(|s| s.binary == "nova-compute" && s.state == "up" && s.status == "enabled")
    );
    // A disabled host takes nothing.
    let st = admin
        .set_service("compute-1", false, Some("maintenance".into()))
        .await
        .unwrap();
    assert_eq!(
        (st.status.as_str(), st.disabled_reason.as_deref()),
        ("disabled", Some("maintenance"))
    );
    for i in 0..3 {
        let id = admin.boot(boot(&format!("a{i}"), "1", None)).await.unwrap();
        assert_eq!(
            settled(&admin, &id).await.host.as_deref(),
            Some("compute-2")
        );
    }
    admin.set_service("compute-1", true, None).await.unwrap();
    // A zone from an aggregate.
    let agg = admin
        .create_aggregate("rack1", Some("az1".into()))
        .await
        .unwrap();
    let agg = admin
        .aggregate_action(
            agg.id,
            &AggregateAction::AddHost {
                host: "compute-1".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (agg.hosts.clone(), agg.availability_zone.as_deref()),
        (vec!["compute-1".to_owned()], Some("az1"))
    );
    let id = admin.boot(boot("z", "1", Some("az1"))).await.unwrap();
    let placed = settled(&admin, &id).await;
    assert_eq!(
        (placed.host.as_deref(), placed.availability_zone.as_str()),
        (Some("compute-1"), "az1")
    );
    let (code, msg) = status_of(admin.boot(boot("z", "1", Some("az9"))).await.unwrap_err());
    assert_eq!(
        (code, msg.as_str()),
        (400, "The requested availability zone is not available")
    );
    let zones = admin.availability_zones().await.unwrap();
    let names: Vec<&str> = zones
        .availability_zone_info
        .iter()
        .map(|z| z.zone_name.as_str())
        .collect();
    assert_eq!(names, vec!["az1", "nova"]);
    // A pool by aggregate metadata (the classic non-attestation "trusted pool").
    admin
        .aggregate_action(
            agg.id,
            &AggregateAction::SetMetadata {
                metadata: BTreeMap::from([("ssd".into(), Some("true".into()))]),
            },
        )
        .await
        .unwrap();
    admin
        .create_flavor(&flavor("m1.ssd", "5", 512, 1, 1))
        .await
        .unwrap();
    admin
        .set_extra_specs(
            "5",
            BTreeMap::from([("aggregate_instance_extra_specs:ssd".into(), "true".into())]),
        )
        .await
        .unwrap();
    for i in 0..3 {
        let id = admin
            .boot(boot(&format!("s{i}"), "m1.ssd", None))
            .await
            .unwrap();
        assert_eq!(
            settled(&admin, &id).await.host.as_deref(),
            Some("compute-1")
        );
    }
    let (code, _) = status_of(admin.delete_aggregate(agg.id).await.unwrap_err());
    assert_eq!(code, 400, "an aggregate with hosts cannot be deleted");
    admin
        .aggregate_action(
            agg.id,
            &AggregateAction::RemoveHost {
                host: "compute-1".into(),
            },
        )
        .await
        .unwrap();
    admin.delete_aggregate(agg.id).await.unwrap();
    // A host that stops reporting is down and takes nothing (service_down_time).
    s.stop().await;
}

/// A flavor that asks for a trusted host fails when TrustedFilter is not enabled, instead of
/// landing anywhere (Nova ignored the extra spec).
#[tokio::test(flavor = "multi_thread")]
async fn a_trust_flavor_without_the_trusted_filter_fails() {
    let h = Harness::new("notrust");
    let s = h
        .scheduler(&h.nova_conf(&h.sqlite(), "RamFilter,ComputeFilter", None))
        .await;
    let admin = h.client(&s, ADMIN);
    h.compute(&s, "compute-1")
        .await
        .report(&report("compute-1", 4096, 4, 40))
        .await
        .unwrap();
    admin
        .create_flavor(&flavor("m1.tiny", "1", 512, 1, 1))
        .await
        .unwrap();
    let plain = admin.boot(boot("plain", "1", None)).await.unwrap();
    assert_eq!(settled(&admin, &plain).await.status, "ACTIVE");
    admin
        .set_extra_specs(
            "1",
            BTreeMap::from([("trust:trusted_host".into(), "trusted".into())]),
        )
        .await
        .unwrap();
    let id = admin.boot(boot("trusted", "1", None)).await.unwrap();
    let vm = settled(&admin, &id).await;
    assert_eq!(vm.status, "ERROR");
    assert!(
        vm.fault
            .unwrap()
            .message
            .contains("TrustedFilter is not enabled"),
        "refused because of the missing filter alone"
    );
    s.stop().await;
}
