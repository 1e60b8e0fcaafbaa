//! `nova.conf` as operators wrote it.

use super::*;

const SSL: &str = "[ssl]\ncert_file = /etc/trustpool/api.crt\nkey_file = /etc/trustpool/api.key\n";

/// The seed's block, byte for byte (with its comments and the commented-out api_url).
const SEED: &str = "[DEFAULT]
compute_scheduler_driver=nova.scheduler.filter_scheduler.FilterScheduler
scheduler_available_filters=nova.scheduler.filters.all_filters
scheduler_default_filters=AvailabilityZoneFilter,RamFilter,ComputeFilter,TrustedFilter
[trusted_computing]
server=10.1.71.206
port=8443
server_ca_file=/etc/nova/ssl.10.1.71.206.crt
# If using OAT v1.5, use this api_url:
api_url=/AttestationService/resources
# If using OAT pre-v1.5, use this api_url:
#api_url=/OpenAttestationWebServices/V1.0
auth_blob=i-am-openstack
";

#[test]
fn the_seed_block_as_written() {
    let c = Config::parse(&format!("{SEED}{SSL}")).unwrap();
    assert_eq!(
        c.filters,
        vec![
            Filter::AvailabilityZone,
            Filter::Ram,
            Filter::Compute,
            Filter::Trusted
        ]
    );
    let a = c.attestation.as_ref().unwrap();
    assert_eq!(a.server, "10.1.71.206");
    assert_eq!(a.port, 8443);
    assert_eq!(a.ca_file, PathBuf::from("/etc/nova/ssl.10.1.71.206.crt"));
    assert_eq!(a.api_url, "/AttestationService/resources");
    assert_eq!(a.auth_blob, Some(Secret("i-am-openstack".into())));
    assert_eq!(a.auth_timeout, Duration::from_secs(60));
    assert_eq!(
        a.poll_hosts_url(),
        "https://10.1.71.206:8443/AttestationService/resources/PollHosts"
    );
    assert_eq!(c.ratios, Ratios::default());
    assert_eq!(c.max_attempts, 3);
    assert_eq!(c.listen.port(), 8774);
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("compute_scheduler_driver"))
    );
    assert!(c.notes.iter().any(|n| n.contains("RetryFilter")));
    let summary = c.summary();
    assert!(summary.contains(
        "filters (in order): AvailabilityZoneFilter, RamFilter, ComputeFilter, TrustedFilter"
    ));
    assert!(
        summary.contains("POST https://10.1.71.206:8443/AttestationService/resources/PollHosts")
    );
    assert!(
        !summary.contains("i-am-openstack"),
        "the auth blob is never printed"
    );
}

#[test]
fn the_later_names_and_sections() {
    let text = format!(
        "[DEFAULT]
ram_allocation_ratio = 0.0
cpu_allocation_ratio = 4.0
service_down_time = 30
default_availability_zone = az0
[filter_scheduler]
enabled_filters = RetryFilter, AvailabilityZoneFilter, ComputeFilter, RamFilter, DiskFilter, CoreFilter, ComputeCapabilitiesFilter, AggregateInstanceExtraSpecsFilter, TrustedFilter
available_filters = nova.scheduler.filters.all_filters
weight_classes = nova.scheduler.weights.ram.RAMWeigher
host_subset_size = 3
ram_weight_multiplier = -1.0
[scheduler]
max_attempts = 5
[trusted_computing]
attestation_server = attest.example.com
attestation_port = 8181
attestation_server_ca_file = /etc/ca.pem
attestation_api_url = /mtwilson/v2/integrations/openstack/
attestation_auth_blob = blob
attestation_auth_timeout = 120
attestation_insecure_ssl = True
[trustpool]
attestation_read_token = reader
[database]
connection = postgresql+psycopg2://nova:pw@db/nova
[api_database]
connection = mysql://ignored
{SSL}"
    );
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.filters.len(), 9);
    assert_eq!(c.filters[0], Filter::Retry);
    assert_eq!(c.weighing.weighers, vec![(Weigher::Ram, -1.0)]);
    assert_eq!(c.host_subset_size, 3);
    assert_eq!(c.max_attempts, 5);
    assert_eq!(c.ratios.ram, 1.5, "0.0 means the default");
    assert_eq!(c.ratios.cpu, 4.0);
    assert_eq!(c.service_down_time, Duration::from_secs(30));
    assert_eq!(c.default_availability_zone, "az0");
    assert_eq!(c.database_url, "postgres://nova:pw@db/nova");
    let a = c.attestation.unwrap();
    assert_eq!(
        a.poll_hosts_url(),
        "https://attest.example.com:8181/mtwilson/v2/integrations/openstack/PollHosts"
    );
    assert_eq!(a.auth_timeout, Duration::from_secs(120));
    assert!(a.stream_token.is_some());
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("attestation_insecure_ssl"))
    );
}

#[test]
fn errors_name_the_option() {
    for (text, needle) in [
        (
            "[DEFAULT]\nscheduler_default_filters=AvailabilityZoneFilter,TrustFilter\n",
            "[DEFAULT] scheduler_default_filters (line 2): unknown filter \"TrustFilter\"",
        ),
        (
            "[DEFAULT]\nscheduler_default_filters=ImagePropertiesFilter\n",
            "ImagePropertiesFilter is a Nova filter that trustpool does not implement",
        ),
        (
            "[DEFAULT]\nscheduler_available_filters=nova.scheduler.filters.ram_filter.RamFilter\nscheduler_default_filters=RamFilter,ComputeFilter\n",
            "ComputeFilter is not in available_filters",
        ),
        (
            "[DEFAULT]\nscheduler_default_filters=TrustedFilter\n",
            "[trusted_computing] server (or attestation_server) is required",
        ),
        (
            "[DEFAULT]\nscheduler_default_filters=TrustedFilter\n[trusted_computing]\nserver=a\n",
            "server_ca_file (or attestation_server_ca_file) is required",
        ),
        (
            "[DEFAULT]\nscheduler_default_filters=RamFilter\n[trusted_computing]\nserver=a\nserver_ca_file=/c\nport=8443 # OAT\n",
            "[trusted_computing] port (line 6): \"8443 # OAT\" is not a port number",
        ),
        (
            "[trusted_computing]\nsever=a\n",
            "[trusted_computing] sever (line 2): unknown option",
        ),
        (
            "[trustpool]\nadmin_token=x\n",
            "[trustpool] admin_token (line 2): unknown option",
        ),
        (
            "[trustpool]\nadmin_token_sha256=abc\n",
            "[trustpool] admin_token_sha256 (line 2): not a hex SHA-256",
        ),
        (
            "[DEFAULT]\nram_allocation_ratio=-1\n",
            "[DEFAULT] ram_allocation_ratio must be positive",
        ),
        (
            "[DEFAULT]\nscheduler_max_attempts=x\n",
            "[DEFAULT] scheduler_max_attempts (line 2)",
        ),
        (
            "[scheduler]\nmax_attempts=0\n",
            "max_attempts must be at least 1",
        ),
        (
            "[DEFAULT]\nscheduler_driver=nova.scheduler.chance.ChanceScheduler\n",
            "[DEFAULT] scheduler_driver (line 2)",
        ),
        (
            "[database]\nconnection=mysql://x\n",
            "[database] connection (line 2)",
        ),
        (
            "[DEFAULT]\nweight_classes=x\n[filter_scheduler]\nweight_classes=Foo\n",
            "[filter_scheduler] weight_classes (line 4): unknown weigher",
        ),
        (
            "[DEFAULT]\nosapi_compute_listen=nowhere\n",
            "[DEFAULT] osapi_compute_listen (line 2)",
        ),
        ("[DEFAULT]\nrandom line\n", "line 2: expected key = value"),
        (
            "[trustpool]\ncompute_token_sha256 = 1111111111111111111111111111111111111111111111111111111111111111\n",
            "[trustpool] compute_token_sha256 (line 2): no longer read",
        ),
        (
            "[trustpool]\ncompute_token_sha256 = 11\n",
            "trustpool hypervisor-create NAME",
        ),
        (
            "[trustpool]\nmax_compute_nodes = 0\n",
            "max_compute_nodes must be 1 to 100000",
        ),
        (
            "[trustpool]\nmax_compute_nodes = 100001\n",
            "max_compute_nodes must be 1 to 100000",
        ),
        (
            "[trustpool]\nmax_compute_nodes = many\n",
            "[trustpool] max_compute_nodes (line 2)",
        ),
        (
            "[trustpool]\ntrust_alert_grace_seconds = 0\n",
            "[trustpool] trust_alert_grace_seconds must be 1 to 86400 (how long the host of a running trusted instance may go without a current verdict before the instance is alerted), not 0",
        ),
        (
            "[trustpool]\ntrust_alert_grace_seconds = 86401\n",
            "trust_alert_grace_seconds must be 1 to 86400",
        ),
        (
            "[trustpool]\ntrust_alert_grace_seconds = 1m\n",
            "[trustpool] trust_alert_grace_seconds (line 2): \"1m\" is not a number of seconds",
        ),
    ] {
        // A file without a filter list gets the defaults, TrustedFilter included: give
        // it an attestation server so only the option under test is wrong.
        let server = "[trusted_computing]\nserver=a\nserver_ca_file=/c\n";
        let full = if text.contains("filters=") || text.contains("[trusted_computing]") {
            format!("{text}{SSL}")
        } else {
            format!("{text}{server}{SSL}")
        };
        let err = Config::parse(&full).unwrap_err().to_string();
        assert!(
            err.contains(needle),
            "{text:?}\n  got: {err}\n  want: {needle}"
        );
    }
    for (ssl, needle) in [
        (
            "[ssl]\ncert_file = /a.crt\n",
            "[ssl] key_file is required with cert_file",
        ),
        (
            "[ssl]\nkey_file = /a.key\n",
            "[ssl] cert_file is required with key_file",
        ),
    ] {
        let err = Config::parse(&format!(
            "[DEFAULT]\nscheduler_default_filters=RamFilter\n{ssl}"
        ))
        .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}

/// The seed's block alone, no `[ssl]`: accepted, and the compute API is plain HTTP on
/// loopback (a TLS-terminating proxy in front is the production layout).
#[test]
fn the_seed_block_without_ssl_serves_plain_http_on_loopback() {
    let c = Config::parse(SEED).unwrap();
    assert_eq!(c.tls, None);
    assert_eq!(c.listen, "127.0.0.1:8774".parse().unwrap());
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("plain HTTP on 127.0.0.1:8774")
                && n.contains("TLS-terminating proxy")),
        "{:?}",
        c.notes
    );
    assert!(
        c.summary()
            .contains("compute API: http://127.0.0.1:8774/v2.1"),
        "{}",
        c.summary()
    );
    // Any loopback address will do.
    for host in ["127.0.0.2", "::1"] {
        let c =
            Config::parse(&format!("{SEED}[DEFAULT]\nosapi_compute_listen = {host}\n")).unwrap();
        assert!(c.listen.ip().is_loopback(), "{host}");
    }
    // With [ssl], the default stays every interface, over HTTPS.
    let c = Config::parse(&format!("{SEED}{SSL}")).unwrap();
    assert_eq!(c.listen, "0.0.0.0:8774".parse().unwrap());
    assert!(
        c.summary()
            .contains("compute API: https://0.0.0.0:8774/v2.1")
    );
}

#[test]
fn a_non_loopback_listen_without_ssl_is_refused_naming_the_option() {
    for host in ["0.0.0.0", "10.1.71.5", "::"] {
        let text = format!("{SEED}[DEFAULT]\nosapi_compute_listen = {host}\n");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("[DEFAULT] osapi_compute_listen (line 15): ")
                && err.contains("not a loopback address")
                && err.contains("[ssl]"),
            "{host}: {err}"
        );
        Config::parse(&format!("{text}{SSL}")).unwrap();
    }
}

#[test]
fn compute_nodes_are_bounded_by_what_one_poll_carries() {
    let server = "[trusted_computing]\nserver=a\nserver_ca_file=/c\n";
    let c = Config::parse(&format!("{server}{SSL}")).unwrap();
    assert_eq!(c.max_compute_nodes, 100_000);
    let c = Config::parse(&format!(
        "{server}{SSL}[trustpool]\nmax_compute_nodes = 3\n"
    ))
    .unwrap();
    assert_eq!(c.max_compute_nodes, 3);
}

#[test]
fn the_trust_alert_grace_defaults_to_two_intervals() {
    let server = "[trusted_computing]\nserver=a\nserver_ca_file=/c\n";
    let c = Config::parse(&format!("{server}{SSL}")).unwrap();
    assert_eq!(c.trust_alert_grace, Duration::from_secs(60));
    assert!(
        c.summary()
            .contains("trust alert after 60 s without a verdict")
    );
    let c = Config::parse(&format!(
        "{server}{SSL}[trustpool]\ntrust_alert_grace_seconds = 300\n"
    ))
    .unwrap();
    assert_eq!(c.trust_alert_grace, Duration::from_secs(300));
}
