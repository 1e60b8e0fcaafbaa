//! Starting up: a listen address already taken is reported with the reason, so an operator
//! is not left with "did not start".

use super::fixtures::server_config;

#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_is_named_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("trustpool-serving-{}", std::process::id()));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = server_config(&dir);
    config.listen = taken.local_addr().unwrap();
    let Err(e) = trustpool_attestation::start(config).await else {
        panic!("started on a port already in use");
    };
    let text = format!("{e:#}");
    assert!(
        text.contains(&format!("listening on {}", taken.local_addr().unwrap()))
            && text.contains("in use"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
