//! What a pool writes into its directory: the configuration of each part (readable, so a
//! newcomer can see how the parts are wired), the tokens, `nova.conf` for Nova or the CLI,
//! and an `env` file for the CLI.

use std::fmt::Write as _;
use std::path::Path;

/// The measured-boot manifests agents emulate (`packaging/boot`).
pub(super) const KNOWN_GOOD: &str = include_str!("../../../../packaging/boot/known-good.toml");
/// A BIOS whose digest differs from the known-good one.
pub(super) const TAMPERED_BIOS: &str =
    include_str!("../../../../packaging/boot/tampered-bios.toml");

/// The shared secret Nova sends as `x-auth-blob` (the seed's value).
pub(super) const AUTH_BLOB: &str = "i-am-openstack";

/// Hex SHA-256 of a token (how the servers store them).
pub(super) fn sha256_hex(token: &str) -> String {
    trustpool_api::bytes::to_hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    )
}

/// A random 128-bit token, hex.
pub(super) fn new_token() -> String {
    let mut b = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut b);
    trustpool_api::bytes::to_hex(&b)
}

/// The tokens of a pool.
#[derive(Debug, Clone)]
pub(super) struct Tokens {
    pub(super) admin: String,
    pub(super) read: String,
}

/// Everything the attestation server's config names.
pub(super) struct AttestationFile<'a> {
    pub(super) dir: &'a Path,
    pub(super) port: u16,
    pub(super) database_url: &'a str,
    pub(super) ek_cas: &'a [std::path::PathBuf],
    pub(super) interval_secs: u64,
    pub(super) tokens: &'a Tokens,
}

pub(super) fn attestation_toml(f: &AttestationFile<'_>) -> String {
    let p = f.dir.join("pki");
    let cas: Vec<String> = f
        .ek_cas
        .iter()
        .map(|c| format!("\"{}\"", c.display()))
        .collect();
    format!(
        "# trustpool-attestation, written by `trustpool dev up`.\n\
         listen = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nserver_id = \"dev\"\nresult_signing_key = \"{dir}/ear.p8\"\n\n\
         [tls]\ncert = \"{p}/server.crt\"\nkey = \"{p}/server.key\"\n\n\
         # Agents' TLS certificates come from the pool CA; agents serve only this client certificate.\n\
         [agents]\nca = \"{p}/ca.crt\"\nclient_cert = \"{p}/server-client/attestation-client.crt\"\nclient_key = \"{p}/server-client/attestation-client.key\"\n\n\
         [enrollment]\n# swtpm-localca issued these EK certificates (software TPMs: development only).\ndev_ek_ca = [{cas}]\nallow_software_tpm = true\n\n\
         [attestation]\ninterval_secs = {interval}\nverdict_ttl_secs = {ttl}\nagent_timeout_secs = 10\n\n\
         [auth]\nadmin_token_sha256 = [\"operator:{admin}\"]\nread_token_sha256 = [\"dashboard:{read}\"]\npoll_hosts_auth_blob = \"{AUTH_BLOB}\"\n",
        port = f.port,
        db = f.database_url,
        dir = f.dir.display(),
        p = p.display(),
        cas = cas.join(", "),
        interval = f.interval_secs,
        ttl = f.interval_secs * 4,
        admin = sha256_hex(&f.tokens.admin),
        read = sha256_hex(&f.tokens.read),
    )
}

/// The scheduler's `nova.conf`: the seed's `[DEFAULT]` block, `[trusted_computing]`
/// pointing at this pool's attestation server, and trustpool's own sections.
pub(super) fn nova_conf(
    dir: &Path,
    port: u16,
    attestation_port: u16,
    database: &str,
    tokens: &Tokens,
) -> String {
    let p = dir.join("pki");
    format!(
        "# nova.conf for trustpool-scheduler (and any Folsom–Pike Nova), written by `trustpool dev up`.\n\
         [DEFAULT]\n\
         compute_scheduler_driver=nova.scheduler.filter_scheduler.FilterScheduler\n\
         scheduler_available_filters=nova.scheduler.filters.all_filters\n\
         scheduler_default_filters=RetryFilter,AvailabilityZoneFilter,RamFilter,ComputeFilter,TrustedFilter\n\
         osapi_compute_listen = 127.0.0.1\nosapi_compute_listen_port = {port}\n\n\
         [trusted_computing]\n\
         server=127.0.0.1\nport={attestation_port}\nserver_ca_file={ca}\n\
         # If using OAT v1.5, use this api_url:\napi_url=/AttestationService/resources\n\
         auth_blob={AUTH_BLOB}\nattestation_auth_timeout = 60\n\n\
         [database]\nconnection = {database}\n\n\
         [ssl]\ncert_file = {p}/server.crt\nkey_file = {p}/server.key\n\n\
         [trustpool]\nadmin_token_sha256 = {admin}\nread_token_sha256 = {read}\n\
         # Compute hosts report with their own tokens: `trustpool dev up` creates each node\n\
         # (trustpool hypervisor-create NAME) and writes its token to hosts/NAME/compute.token.\n\
         # Follow the attestation server's trust stream (read token there).\nattestation_read_token = {stream}\n",
        ca = dir.join("ca.crt").display(),
        p = p.display(),
        admin = sha256_hex(&tokens.admin),
        read = sha256_hex(&tokens.read),
        stream = tokens.read,
    )
}

/// One agent's config.
pub(super) struct AgentFile<'a> {
    pub(super) dir: &'a Path,
    pub(super) name: &'a str,
    pub(super) tcti: &'a str,
    pub(super) port: u16,
    pub(super) attestation_port: u16,
    pub(super) scheduler_port: u16,
    pub(super) memory_mb: u64,
}

pub(super) fn agent_toml(f: &AgentFile<'_>) -> String {
    let p = f.dir.join("pki");
    format!(
        "# trustpool-agent for {name}, written by `trustpool dev up`.\n\
         host_name = \"{name}\"\nstate_dir = \"{dir}/hosts/{name}/agent\"\n\n\
         [tpm]\ntcti = \"{tcti}\"\n# Edit this manifest and restart the agent to change what its emulated boot measures.\nboot_manifest = \"{dir}/hosts/{name}/boot.toml\"\n\n\
         [listen]\naddress = \"127.0.0.1:{port}\"\nurl = \"https://127.0.0.1:{port}\"\ncert = \"{p}/{name}.crt\"\nkey = \"{p}/{name}.key\"\n# The only client served: the attestation server (its CA, and its certificate's key pinned).\nclient_ca = \"{p}/server-client/ca.crt\"\nserver_certificate = \"{p}/server-client/attestation-client.crt\"\n\n\
         [server]\nurl = \"https://127.0.0.1:{ap}\"\nca = \"{p}/ca.crt\"\n# From `trustpool host-add {name}` (single use).\nenrollment_token_file = \"{dir}/hosts/{name}/enrollment.token\"\nretry_max_secs = 2\n\n\
         [scheduler]\nurl = \"https://127.0.0.1:{sp}\"\nca = \"{p}/ca.crt\"\ntoken_file = \"{dir}/hosts/{name}/compute.token\"\nheartbeat_secs = 2\n\n\
         [resources]\nmemory_mb = {mem}\nvcpus = 8\nlocal_gb = 100\navailability_zone = \"nova\"\n",
        name = f.name,
        dir = f.dir.display(),
        tcti = f.tcti,
        port = f.port,
        p = p.display(),
        ap = f.attestation_port,
        sp = f.scheduler_port,
        mem = f.memory_mb,
    )
}

/// `DIR/env`: `source` it and the CLI talks to this pool.
pub(super) fn env_file(
    dir: &Path,
    attestation_port: u16,
    scheduler_port: u16,
    tokens: &Tokens,
) -> String {
    let mut out = String::from("# source this file: the trustpool CLI then talks to this pool.\n");
    let _ = writeln!(
        out,
        "export TRUSTPOOL_ATTESTATION_URL=https://127.0.0.1:{attestation_port}"
    );
    let _ = writeln!(
        out,
        "export TRUSTPOOL_COMPUTE_URL=https://127.0.0.1:{scheduler_port}"
    );
    let _ = writeln!(
        out,
        "export TRUSTPOOL_CA_FILE={}",
        dir.join("ca.crt").display()
    );
    let _ = writeln!(out, "export TRUSTPOOL_TOKEN={}", tokens.admin);
    out
}
