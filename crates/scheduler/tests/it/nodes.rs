//! Compute nodes and their credentials (issue 11): an administrator creates each node and
//! gets its compute token once; the token reports heartbeats for that node's name only; a
//! heartbeat never creates a node; the number of nodes is bounded; a rotated or deleted
//! node's old token is void.

use trustpool_client::ClientError;

use super::*;

fn status_of(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Status {
            status, message, ..
        } => (status, message),
        other => panic!("expected an HTTP error, got {other}"),
    }
}

async fn names(c: &ComputeClient) -> Vec<String> {
    let mut names: Vec<String> = c
        .hypervisors()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.hypervisor_hostname)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_token_reports_for_its_own_node_only() {
    let h = Harness::new("own-node");
    let s = h
        .scheduler(&h.nova_conf(&h.sqlite(), "RamFilter,ComputeFilter", None))
        .await;
    let admin = h.client(&s, ADMIN);
    let one = h.compute(&s, "compute-1").await;
    let _two = h.compute(&s, "compute-2").await;
    one.report(&report("compute-1", 4096, 4, 40)).await.unwrap();

    // compute-1's token heartbeating as compute-2: refused, and compute-2 is untouched.
    let (code, msg) = status_of(
        one.report(&report("compute-2", 999_999, 99, 999))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.contains("compute token is host compute-1's")
            && msg.contains("cannot report for \"compute-2\""),
        "{msg}"
    );
    let two = admin.hypervisor("compute-2").await.unwrap();
    assert_eq!((two.memory_mb, two.state.as_str()), (0, "down"));
    assert_eq!(admin.hypervisor("compute-1").await.unwrap().memory_mb, 4096);

    // No other credential reports: not the admin's, not a reader's, not a made-up one.
    for (token, want) in [(ADMIN, 403), (READER, 403), ("compute-token", 401)] {
        let (code, msg) = status_of(
            h.client(&s, token)
                .report(&report("compute-2", 1, 1, 1))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, want, "{token}: {msg}");
    }
    assert_eq!(admin.hypervisor("compute-2").await.unwrap().memory_mb, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_for_a_name_no_admin_created_is_refused_and_creates_nothing() {
    let h = Harness::new("no-new-node");
    let s = h
        .scheduler(&h.nova_conf(&h.sqlite(), "RamFilter,ComputeFilter", None))
        .await;
    let admin = h.client(&s, ADMIN);
    let one = h.compute(&s, "compute-1").await;
    for name in ["ghost", "compute-1.example", "x/../compute-1"] {
        let (code, msg) = status_of(one.report(&report(name, 4096, 4, 40)).await.unwrap_err());
        assert_eq!(code, 403, "{name}: {msg}");
        let (code, _) = status_of(admin.report(&report(name, 4096, 4, 40)).await.unwrap_err());
        assert_eq!(
            code, 403,
            "{name}: not even an admin's heartbeat creates a node"
        );
    }
    assert_eq!(names(&admin).await, ["compute-1"]);
    let (code, _) = status_of(admin.hypervisor("ghost").await.unwrap_err());
    assert_eq!(code, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_are_created_by_an_administrator_and_bounded() {
    let h = Harness::new("bounded");
    let conf = h
        .nova_conf(&h.sqlite(), "RamFilter,ComputeFilter", None)
        .replace("[trustpool]\n", "[trustpool]\nmax_compute_nodes = 2\n");
    let s = h.scheduler(&conf).await;
    let admin = h.client(&s, ADMIN);

    // Only an administrator creates a node, and only under a DNS name.
    let (code, _) = status_of(
        h.client(&s, READER)
            .create_hypervisor("compute-1")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    for bad in ["x/../compute-1", "..", "", "a\u{202e}b", "a b", "a?b#c"] {
        let (code, msg) = status_of(admin.create_hypervisor(bad).await.unwrap_err());
        assert_eq!(code, 400, "{bad:?}: {msg}");
        assert!(msg.contains("hypervisor_hostname"), "{msg}");
    }
    let first = admin.create_hypervisor("compute-1").await.unwrap();
    assert_eq!(first.hypervisor.hypervisor_hostname, "compute-1");
    assert_eq!(
        first.hypervisor.state, "down",
        "down until its first heartbeat"
    );
    assert_eq!(first.compute_token.len(), 64);
    let (code, msg) = status_of(admin.create_hypervisor("compute-1").await.unwrap_err());
    assert_eq!(
        (code, msg.as_str()),
        (409, "Compute host compute-1 already exists.")
    );
    let second = h.compute(&s, "compute-2").await;
    let (code, msg) = status_of(admin.create_hypervisor("compute-3").await.unwrap_err());
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains("max_compute_nodes"), "{msg}");
    assert_eq!(names(&admin).await, ["compute-1", "compute-2"]);

    // Deleting a node frees its place and voids its token.
    admin.delete_service("compute-2").await.unwrap();
    let (code, _) = status_of(
        second
            .report(&report("compute-2", 4096, 4, 40))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 401, "a deleted node's token is no token");
    admin.create_hypervisor("compute-3").await.unwrap();
    assert_eq!(names(&admin).await, ["compute-1", "compute-3"]);
    let (code, _) = status_of(admin.delete_service("compute-2").await.unwrap_err());
    assert_eq!(code, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_token_voids_the_old_one_and_survives_a_restart() {
    let h = Harness::new("rotate");
    let conf = h.nova_conf(&h.sqlite(), "RamFilter,ComputeFilter", None);
    let s = h.scheduler(&conf).await;
    let admin = h.client(&s, ADMIN);
    let old = h.node(&s, "compute-1").await;
    let id = admin.hypervisor("compute-1").await.unwrap().id.to_string();
    let (code, _) = status_of(
        h.client(&s, READER)
            .rotate_compute_token(&id)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    let new = admin.rotate_compute_token(&id).await.unwrap().compute_token;
    assert_ne!(new, old);
    let (code, _) = status_of(
        h.client(&s, &old)
            .report(&report("compute-1", 4096, 4, 40))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 401);
    s.stop().await;

    // The database keeps the token's hash: the new token still works after a restart.
    let s = h.scheduler(&conf).await;
    h.client(&s, &new)
        .report(&report("compute-1", 4096, 4, 40))
        .await
        .unwrap();
    let (code, _) = status_of(
        h.client(&s, &old)
            .report(&report("compute-1", 4096, 4, 40))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 401);
    assert_eq!(
        h.client(&s, ADMIN)
            .hypervisor("compute-1")
            .await
            .unwrap()
            .state,
        "up"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_hosting_servers_is_not_deleted() {
    let h = Harness::new("delete-busy");
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
        .create_flavor(&api::flavor("m1.tiny", "1", 512, 1, 1))
        .await
        .unwrap();
    let id = admin.boot(api::boot("vm", "m1.tiny", None)).await.unwrap();
    assert_eq!(settled(&admin, &id).await.status, "ACTIVE");
    let (code, msg) = status_of(admin.delete_service("compute-1").await.unwrap_err());
    assert_eq!(code, 409, "{msg}");
    admin.delete_server(&id).await.unwrap();
    admin.delete_service("compute-1").await.unwrap();
    assert!(names(&admin).await.is_empty());
    s.stop().await;
}
