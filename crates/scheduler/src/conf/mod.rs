//! The scheduler's configuration, read from a `nova.conf` — the seed's block as written
//! (`[DEFAULT] compute_scheduler_driver … scheduler_default_filters=…,TrustedFilter` and
//! `[trusted_computing] server/port/server_ca_file/api_url/auth_blob`), the later names
//! (`attestation_*`, `[filter_scheduler] enabled_filters` …) and trustpool's own
//! `[trustpool]` section. Every error names the option (`[section] key`, line).

mod check;
pub mod ini;
mod reader;

pub use check::check;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::filters::{Filter, Ratios};
use crate::weights::{Weigher, Weighing};
use ini::Ini;
use reader::{Reader, where_};

/// Where the TrustedFilter asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// Host name or IP (`attestation_server` / `server`).
    pub server: String,
    /// Port (8443).
    pub port: u16,
    /// CA file that verifies the server.
    pub ca_file: PathBuf,
    /// `PollHosts` prefix (`/OpenAttestationWebServices/V1.0` by default).
    pub api_url: String,
    /// Sent as `x-auth-blob`.
    pub auth_blob: Option<Secret>,
    /// Cache lifetime from `vtime` (60 s).
    pub auth_timeout: Duration,
    /// Read token for the attestation server's trust stream (`[trustpool]
    /// attestation_read_token`); None: no stream, polls only.
    pub stream_token: Option<Secret>,
    /// Per-request timeout (Nova had none).
    pub request_timeout: Duration,
}

impl Attestation {
    /// `https://server:port`.
    #[must_use]
    pub fn base_url(&self) -> String {
        if self.server.contains(':') && !self.server.starts_with('[') {
            format!("https://[{}]:{}", self.server, self.port)
        } else {
            format!("https://{}:{}", self.server, self.port)
        }
    }

    /// The full `PollHosts` URL.
    #[must_use]
    pub fn poll_hosts_url(&self) -> String {
        format!(
            "{}{}/PollHosts",
            self.base_url(),
            self.api_url.trim_end_matches('/')
        )
    }
}

/// A value that never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Everything the scheduler runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Compute API listener (`osapi_compute_listen`:`osapi_compute_listen_port`, 8774).
    pub listen: SocketAddr,
    /// `[database] connection` (SQLite by default).
    pub database_url: String,
    /// `[ssl] cert_file` and `key_file`. None: plain HTTP on a loopback address, behind a
    /// TLS-terminating proxy (the production layout without `[ssl]`).
    pub tls: Option<TlsFiles>,
    /// Filters in order.
    pub filters: Vec<Filter>,
    /// Weighers and multipliers.
    pub weighing: Weighing,
    /// `host_subset_size`.
    pub host_subset_size: usize,
    /// `max_attempts`.
    pub max_attempts: u32,
    /// Allocation ratios.
    pub ratios: Ratios,
    /// `service_down_time`.
    pub service_down_time: Duration,
    /// `default_availability_zone`.
    pub default_availability_zone: String,
    /// `default_schedule_zone`: the zone a request without one gets.
    pub default_schedule_zone: Option<String>,
    /// The attestation server (required when TrustedFilter is enabled).
    pub attestation: Option<Attestation>,
    /// SHA-256 of admin tokens (writes).
    pub admin_tokens: Vec<Vec<u8>>,
    /// SHA-256 of read tokens.
    pub read_tokens: Vec<Vec<u8>>,
    /// Most compute nodes an administrator may create (`[trustpool] max_compute_nodes`,
    /// at most what one `PollHosts` request carries). Heartbeats are authenticated by
    /// each node's own token, kept in the database, not here.
    pub max_compute_nodes: usize,
    /// How long the host of a running trusted instance may stay `unknown` (no current
    /// verdict: agent stopped, network cut, attestation server unreachable) before the
    /// instance gets a `trust_alert` (`[trustpool] trust_alert_grace_seconds`, 60 s).
    pub trust_alert_grace: Duration,
    /// Notes for the operator (`--check-config` prints them; start logs them).
    pub notes: Vec<String>,
}

/// The compute API's certificate and key (`[ssl]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `[ssl] cert_file` (chain, leaf first).
    pub cert: PathBuf,
    /// `[ssl] key_file`.
    pub key: PathBuf,
}

/// `[ssl] cert_file` and `key_file`: both or neither.
fn tls_files(r: &Reader<'_>) -> Result<Option<TlsFiles>, ConfigError> {
    let cert = r.string(&[("ssl", "cert_file")]).map(PathBuf::from);
    let key = r.string(&[("ssl", "key_file")]).map(PathBuf::from);
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError(
            "[ssl] key_file is required with cert_file".to_owned(),
        )),
        (None, Some(_)) => Err(ConfigError(
            "[ssl] cert_file is required with key_file".to_owned(),
        )),
    }
}

/// `osapi_compute_listen`:`osapi_compute_listen_port`. With `[ssl]` the default address
/// is every interface; without, the compute API is plain HTTP and is served on loopback
/// only (default 127.0.0.1): a non-loopback address is refused.
fn listen(r: &mut Reader<'_>, tls: bool) -> Result<SocketAddr, ConfigError> {
    let key = (DEFAULT, "osapi_compute_listen");
    let host: Option<std::net::IpAddr> = r.parsed(&[key], "an IP address")?;
    let port: u16 = r
        .parsed(&[(DEFAULT, "osapi_compute_listen_port")], "a port number")?
        .unwrap_or(8774);
    let host = match (host, tls) {
        (Some(host), true) => host,
        (None, true) => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        (Some(host), false) if host.is_loopback() => host,
        (Some(host), false) => {
            let at = r.find(&[key]).map_or_else(
                || format!("[{DEFAULT}] osapi_compute_listen"),
                |(s, k, item)| where_(s, k, item),
            );
            return Err(ConfigError(format!(
                "{at}: {host} is not a loopback address, and without [ssl] cert_file and key_file the compute API is plain HTTP: set [ssl], or listen on 127.0.0.1 behind a TLS-terminating proxy"
            )));
        }
        (None, false) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    let listen = SocketAddr::new(host, port);
    if !tls {
        r.notes.push(format!(
            "no [ssl] cert_file/key_file: the compute API is plain HTTP on {listen} (loopback only); in production a TLS-terminating proxy in front serves HTTPS"
        ));
    }
    Ok(listen)
}

/// A configuration error naming the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

const DEFAULT: &str = "DEFAULT";
const TRUSTED: &str = "trusted_computing";
const FILTER_SCHEDULER: &str = "filter_scheduler";
const SCHEDULER: &str = "scheduler";
const TRUSTPOOL: &str = "trustpool";

/// Every option of `[trusted_computing]` any Nova had.
const TRUSTED_KEYS: [&str; 12] = [
    "server",
    "port",
    "server_ca_file",
    "api_url",
    "auth_blob",
    "attestation_server",
    "attestation_port",
    "attestation_server_ca_file",
    "attestation_api_url",
    "attestation_auth_blob",
    "attestation_auth_timeout",
    "attestation_insecure_ssl",
];

const TRUSTPOOL_KEYS: [&str; 6] = [
    "admin_token_sha256",
    "read_token_sha256",
    "max_compute_nodes",
    "attestation_read_token",
    "attestation_request_timeout",
    "trust_alert_grace_seconds",
];

/// Default `[trustpool] max_compute_nodes`: what one `PollHosts` request carries.
pub const DEFAULT_MAX_COMPUTE_NODES: usize = trustpool_api::oat::MAX_POLL_HOSTS;

/// `[trustpool] max_compute_nodes`: 1 to [`DEFAULT_MAX_COMPUTE_NODES`] (more nodes than
/// one `PollHosts` carries would make every poll fail, and every host read unknown).
fn max_compute_nodes(r: &Reader<'_>) -> Result<usize, ConfigError> {
    let key = (TRUSTPOOL, "max_compute_nodes");
    let n: usize = r
        .parsed(&[key], "a whole number")?
        .unwrap_or(DEFAULT_MAX_COMPUTE_NODES);
    if n == 0 || n > DEFAULT_MAX_COMPUTE_NODES {
        return Err(ConfigError(format!(
            "[{TRUSTPOOL}] max_compute_nodes must be 1 to {DEFAULT_MAX_COMPUTE_NODES} (what one PollHosts request carries), not {n}"
        )));
    }
    Ok(n)
}

/// Default `[trustpool] trust_alert_grace_seconds`: two of the attestation server's default
/// challenge intervals (30 s; the scheduler cannot know the server's own setting), so one
/// late or lost verdict never raises an alert.
pub const DEFAULT_TRUST_ALERT_GRACE_SECS: u64 = 60;

/// Longest `[trustpool] trust_alert_grace_seconds`: a day.
const MAX_TRUST_ALERT_GRACE_SECS: u64 = 86_400;

/// `[trustpool] trust_alert_grace_seconds`: 1 to a day (0 would alert on every blip).
fn trust_alert_grace(r: &Reader<'_>) -> Result<Duration, ConfigError> {
    let key = (TRUSTPOOL, "trust_alert_grace_seconds");
    let secs: u64 = r
        .parsed(&[key], "a number of seconds")?
        .unwrap_or(DEFAULT_TRUST_ALERT_GRACE_SECS);
    if secs == 0 || secs > MAX_TRUST_ALERT_GRACE_SECS {
        return Err(ConfigError(format!(
            "[{TRUSTPOOL}] trust_alert_grace_seconds must be 1 to {MAX_TRUST_ALERT_GRACE_SECS} (how long the host of a running trusted instance may go without a current verdict before the instance is alerted), not {secs}"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// `available_filters`: `nova.scheduler.filters.all_filters` or explicit class paths.
fn available_filters(r: &Reader<'_>) -> Result<Option<Vec<Filter>>, ConfigError> {
    let mut items = r.ini.all(FILTER_SCHEDULER, "available_filters");
    let mut at = (FILTER_SCHEDULER, "available_filters");
    if items.is_empty() {
        items = r.ini.all(DEFAULT, "scheduler_available_filters");
        at = (DEFAULT, "scheduler_available_filters");
    }
    if items.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in items {
        for name in item
            .value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if name == "nova.scheduler.filters.all_filters" {
                return Ok(None);
            }
            out.push(
                Filter::parse(name)
                    .map_err(|e| ConfigError(format!("{}: {e}", where_(at.0, at.1, item))))?,
            );
        }
    }
    Ok(Some(out))
}

fn enabled_filters(r: &mut Reader<'_>) -> Result<Vec<Filter>, ConfigError> {
    let Some((s, k, item)) = r.find(&[
        (FILTER_SCHEDULER, "enabled_filters"),
        (DEFAULT, "scheduler_default_filters"),
    ]) else {
        r.notes.push(
            "no enabled_filters / scheduler_default_filters: using Nova's Liberty defaults plus TrustedFilter"
                .to_owned(),
        );
        return Ok(vec![
            Filter::Retry,
            Filter::AvailabilityZone,
            Filter::Ram,
            Filter::Disk,
            Filter::Compute,
            Filter::ComputeCapabilities,
            Filter::Trusted,
        ]);
    };
    let available = available_filters(r)?;
    let mut filters = Vec::new();
    for name in item
        .value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let filter =
            Filter::parse(name).map_err(|e| ConfigError(format!("{}: {e}", where_(s, k, item))))?;
        if available.as_ref().is_some_and(|a| !a.contains(&filter)) {
            return Err(ConfigError(format!(
                "{}: {filter} is not in available_filters (SchedulerHostFilterNotFound)",
                where_(s, k, item)
            )));
        }
        if !filters.contains(&filter) {
            filters.push(filter);
        }
    }
    if filters.is_empty() {
        return Err(ConfigError(format!(
            "{}: no filters listed",
            where_(s, k, item)
        )));
    }
    if !filters.contains(&Filter::Retry) {
        r.notes.push(
            "RetryFilter is not enabled: a retried placement may pick the host that just failed its claim"
                .to_owned(),
        );
    }
    Ok(filters)
}

fn attestation(r: &mut Reader<'_>, needed: bool) -> Result<Option<Attestation>, ConfigError> {
    if let Some(section) = r.ini.sections.get(TRUSTED)
        && let Some((key, items)) = section
            .iter()
            .find(|(k, _)| !TRUSTED_KEYS.contains(&k.as_str()))
    {
        let line = items.first().map_or(0, |i| i.line);
        return Err(ConfigError(format!(
            "[{TRUSTED}] {key} (line {line}): unknown option (known: {})",
            TRUSTED_KEYS.join(", ")
        )));
    }
    let names = |later: &'static str, seed: &'static str| [(TRUSTED, later), (TRUSTED, seed)];
    let Some(server) = r.string(&names("attestation_server", "server")) else {
        if needed {
            return Err(ConfigError(format!(
                "[{TRUSTED}] server (or attestation_server) is required: TrustedFilter is enabled"
            )));
        }
        return Ok(None);
    };
    let port: u16 = r
        .parsed(&names("attestation_port", "port"), "a port number")?
        .unwrap_or(8443);
    let ca_file = r
        .string(&names("attestation_server_ca_file", "server_ca_file"))
        .map(PathBuf::from)
        .ok_or_else(|| {
            ConfigError(format!(
                "[{TRUSTED}] server_ca_file (or attestation_server_ca_file) is required: the attestation server's certificate is always verified"
            ))
        })?;
    let api_url = r
        .string(&names("attestation_api_url", "api_url"))
        .unwrap_or_else(|| "/OpenAttestationWebServices/V1.0".to_owned());
    if !api_url.starts_with('/') {
        return Err(ConfigError(format!(
            "[{TRUSTED}] api_url {api_url:?} must be a path starting with /"
        )));
    }
    let auth_timeout: u64 = r
        .parsed(
            &[(TRUSTED, "attestation_auth_timeout")],
            "a number of seconds",
        )?
        .unwrap_or(60);
    if r.boolean(&[(TRUSTED, "attestation_insecure_ssl")])? == Some(true) {
        r.notes.push(format!(
            "[{TRUSTED}] attestation_insecure_ssl = True is ignored: the server certificate is still verified against server_ca_file"
        ));
    }
    let timeout: u64 = r
        .parsed(
            &[(TRUSTPOOL, "attestation_request_timeout")],
            "a number of seconds",
        )?
        .unwrap_or(10);
    let stream_token = r
        .string(&[(TRUSTPOOL, "attestation_read_token")])
        .map(Secret);
    if stream_token.is_none() {
        r.notes.push(
            "no [trustpool] attestation_read_token: trust changes are seen when the cache expires, not pushed"
                .to_owned(),
        );
    }
    Ok(Some(Attestation {
        server,
        port,
        ca_file,
        api_url,
        auth_blob: r
            .string(&names("attestation_auth_blob", "auth_blob"))
            .map(Secret),
        auth_timeout: Duration::from_secs(auth_timeout),
        stream_token,
        request_timeout: Duration::from_secs(timeout.max(1)),
    }))
}

fn weighing(r: &Reader<'_>) -> Result<Weighing, ConfigError> {
    let weighers = match r.find(&[
        (FILTER_SCHEDULER, "weight_classes"),
        (DEFAULT, "scheduler_weight_classes"),
    ]) {
        None => vec![Weigher::Ram, Weigher::Disk],
        Some((s, k, item)) => Weigher::parse_list(&item.value)
            .map_err(|e| ConfigError(format!("{}: {e}", where_(s, k, item))))?,
    };
    let mut out = Vec::new();
    for w in weighers {
        let key = match w {
            Weigher::Ram => "ram_weight_multiplier",
            Weigher::Disk => "disk_weight_multiplier",
        };
        let m: f64 = r
            .parsed(&[(FILTER_SCHEDULER, key), (DEFAULT, key)], "a number")?
            .unwrap_or(1.0);
        out.push((w, m));
    }
    Ok(Weighing { weighers: out })
}

/// The SQLite URL sqlx wants from oslo.db's `sqlite:////abs/path` / `sqlite:///rel`, and
/// `postgresql(+driver)://` as `postgres://`.
fn database_url(text: &str) -> Result<String, String> {
    if let Some(rest) = text.strip_prefix("sqlite:///") {
        return Ok(format!("sqlite://{rest}"));
    }
    if text.starts_with("sqlite:") {
        return Ok(text.to_owned());
    }
    for prefix in ["postgresql+psycopg2://", "postgresql://", "postgres://"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return Ok(format!("postgres://{rest}"));
        }
    }
    Err("only sqlite:/// and postgresql:// databases are supported".to_owned())
}

impl Config {
    /// Reads a `nova.conf`.
    ///
    /// # Errors
    /// A message naming the file, the option and its line.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let ini = Ini::parse(text).map_err(|e| ConfigError(e.to_string()))?;
        let mut r = Reader {
            ini: &ini,
            notes: Vec::new(),
        };
        if let Some(item) = ini.get(TRUSTPOOL, "compute_token_sha256") {
            return Err(ConfigError(format!(
                "{}: no longer read: a token every host shared let any holder report as any host \
                 and create nodes without bound. Each compute node now has its own token: create \
                 it with `trustpool hypervisor-create NAME` (or rotate one in for an existing node \
                 with `trustpool hypervisor-token-rotate NAME`), put it in that host's agent \
                 [scheduler] token_file, and remove this option",
                where_(TRUSTPOOL, "compute_token_sha256", item)
            )));
        }
        if let Some(section) = ini.sections.get(TRUSTPOOL)
            && let Some((key, items)) = section
                .iter()
                .find(|(k, _)| !TRUSTPOOL_KEYS.contains(&k.as_str()))
        {
            let line = items.first().map_or(0, |i| i.line);
            return Err(ConfigError(format!(
                "[{TRUSTPOOL}] {key} (line {line}): unknown option"
            )));
        }
        for key in ["compute_scheduler_driver", "scheduler_driver"] {
            if let Some(item) = ini.get(DEFAULT, key) {
                let v = item.value.as_str();
                if !matches!(
                    v,
                    "nova.scheduler.filter_scheduler.FilterScheduler" | "filter_scheduler"
                ) {
                    return Err(ConfigError(format!(
                        "{}: {v:?}: trustpool is a FilterScheduler",
                        where_(DEFAULT, key, item)
                    )));
                }
                r.notes.push(format!(
                    "[DEFAULT] {key} accepted: trustpool always runs the FilterScheduler"
                ));
            }
        }
        let filters = enabled_filters(&mut r)?;
        let attestation = attestation(&mut r, filters.contains(&Filter::Trusted))?;
        let tls = tls_files(&r)?;
        let listen = listen(&mut r, tls.is_some())?;
        let database_url = match r.find(&[("database", "connection")]) {
            None => "sqlite:///var/lib/trustpool/scheduler.db".to_owned(),
            Some((s, k, item)) => database_url(&item.value)
                .map_err(|e| ConfigError(format!("{}: {e}", where_(s, k, item))))?,
        };
        let subset: usize = r
            .parsed(
                &[
                    (FILTER_SCHEDULER, "host_subset_size"),
                    (DEFAULT, "scheduler_host_subset_size"),
                ],
                "a whole number",
            )?
            .unwrap_or(1);
        let max_attempts: u32 = r
            .parsed(
                &[
                    (SCHEDULER, "max_attempts"),
                    (DEFAULT, "scheduler_max_attempts"),
                ],
                "a whole number",
            )?
            .unwrap_or(3);
        if max_attempts == 0 {
            return Err(ConfigError(
                "[scheduler] max_attempts must be at least 1".to_owned(),
            ));
        }
        let down: u64 = r
            .parsed(&[(DEFAULT, "service_down_time")], "a number of seconds")?
            .unwrap_or(60);
        let config = Self {
            listen,
            database_url,
            tls,
            weighing: weighing(&r)?,
            host_subset_size: subset.max(1),
            max_attempts,
            ratios: Ratios {
                ram: r.ratio("ram_allocation_ratio", 1.5)?,
                cpu: r.ratio("cpu_allocation_ratio", 16.0)?,
                disk: r.ratio("disk_allocation_ratio", 1.0)?,
            },
            service_down_time: Duration::from_secs(down),
            default_availability_zone: r
                .string(&[(DEFAULT, "default_availability_zone")])
                .unwrap_or_else(|| "nova".to_owned()),
            default_schedule_zone: r.string(&[(DEFAULT, "default_schedule_zone")]),
            attestation,
            admin_tokens: r.hashes("admin_token_sha256")?,
            read_tokens: r.hashes("read_token_sha256")?,
            max_compute_nodes: max_compute_nodes(&r)?,
            trust_alert_grace: trust_alert_grace(&r)?,
            filters,
            notes: Vec::new(),
        };
        Ok(Self {
            notes: r.notes,
            ..config
        })
    }

    /// Reads a `nova.conf` file.
    ///
    /// # Errors
    /// The file cannot be read, or [`Config::parse`] failed (the message names the file).
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// What `--check-config` prints.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let filters: Vec<&str> = self.filters.iter().map(|f| f.name()).collect();
        out.push_str(&format!("filters (in order): {}\n", filters.join(", ")));
        let weighers: Vec<String> = self
            .weighing
            .weighers
            .iter()
            .map(|(w, m)| format!("{w} (multiplier {m})"))
            .collect();
        out.push_str(&format!("weighers: {}\n", weighers.join(", ")));
        out.push_str(&format!(
            "host_subset_size: {}; max_attempts: {}; allocation ratios: ram {} cpu {} disk {}; service_down_time: {} s\n",
            self.host_subset_size,
            self.max_attempts,
            self.ratios.ram,
            self.ratios.cpu,
            self.ratios.disk,
            self.service_down_time.as_secs()
        ));
        match &self.attestation {
            Some(a) => out.push_str(&format!(
                "attestation: POST {} (CA {}, x-auth-blob {}, cache {} s, trust stream {}, trust alert after {} s without a verdict)\n",
                a.poll_hosts_url(),
                a.ca_file.display(),
                if a.auth_blob.is_some() {
                    "set"
                } else {
                    "not set"
                },
                a.auth_timeout.as_secs(),
                if a.stream_token.is_some() {
                    "on"
                } else {
                    "off"
                },
                self.trust_alert_grace.as_secs()
            )),
            None => out.push_str("attestation: none (TrustedFilter not enabled)\n"),
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        out.push_str(&format!("compute API: {scheme}://{}/v2.1\n", self.listen));
        out.push_str(&format!(
            "compute nodes: created by an administrator, at most {}; each reports with its own token\n",
            self.max_compute_nodes
        ));
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests;
