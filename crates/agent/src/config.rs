//! The agent's configuration: a TOML file (`/etc/trustpool/agent.toml`), validated once at
//! start into [`Config`]; errors name the key. Precedence: defaults < file < command-line
//! flags (`--tcti`, `--state-dir`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where the firmware event log lives on a Linux host.
pub const KERNEL_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

/// RSA or ECC, for the EK template and the AK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// RSA-2048 (the default; every TPM has it).
    #[default]
    Rsa,
    /// ECC NIST P-256.
    Ecc,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    host_name: Option<String>,
    /// Refused with a message: aliases are an administrator's now.
    aliases: Option<toml::Value>,
    state_dir: PathBuf,
    tpm: RawTpm,
    listen: RawListen,
    server: Option<RawServer>,
    scheduler: Option<RawScheduler>,
    #[serde(default)]
    resources: RawResources,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTpm {
    #[serde(default = "default_tcti")]
    tcti: String,
    #[serde(default)]
    ek_algorithm: KeyAlgorithm,
    #[serde(default)]
    ak_algorithm: KeyAlgorithm,
    event_log: Option<PathBuf>,
    boot_manifest: Option<PathBuf>,
}

fn default_tcti() -> String {
    "device:/dev/tpmrm0".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    address: SocketAddr,
    url: Option<String>,
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
    server_certificate: Option<PathBuf>,
    #[serde(default)]
    server_spki_sha256: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    url: String,
    ca: PathBuf,
    enrollment_token_file: Option<PathBuf>,
    #[serde(default = "default_retry_max")]
    retry_max_secs: u64,
}

fn default_retry_max() -> u64 {
    300
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    url: String,
    ca: PathBuf,
    token_file: PathBuf,
    #[serde(default = "default_heartbeat")]
    heartbeat_secs: u64,
}

/// Nova's `report_interval`.
fn default_heartbeat() -> u64 {
    10
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawResources {
    memory_mb: Option<u64>,
    vcpus: Option<u32>,
    local_gb: Option<u64>,
    availability_zone: Option<String>,
    disk_path: Option<PathBuf>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The host's name (`hypervisor_hostname`).
    pub host_name: String,
    /// Where the AK blobs and the emulated boot's log live.
    pub state_dir: PathBuf,
    /// The TCTI.
    pub tcti: String,
    /// EK template.
    pub ek_algorithm: KeyAlgorithm,
    /// AK algorithm.
    pub ak_algorithm: KeyAlgorithm,
    /// The event log served with quotes.
    pub event_log: PathBuf,
    /// Development hosts on swtpm: the boot manifest emulated before the agent starts.
    pub boot_manifest: Option<PathBuf>,
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// URL the server uses to reach the agent.
    pub url: String,
    /// TLS server certificate chain (PEM path).
    pub cert: PathBuf,
    /// TLS private key (PEM path; the key itself is never logged).
    pub key: PathBuf,
    /// CA that issued the attestation server's client certificate.
    pub client_ca: PathBuf,
    /// The attestation server's client certificate(s) (PEM): their keys are pinned.
    pub server_certificate: Option<PathBuf>,
    /// SHA-256 of the attestation server's client public keys (SPKI), pinned.
    pub server_spki_sha256: Vec<[u8; 32]>,
    /// Attestation server to register with.
    pub server: Option<ServerConfig>,
    /// Scheduler to report resources to.
    pub scheduler: Option<SchedulerConfig>,
    /// Resource overrides.
    pub resources: ResourceOverrides,
}

/// Registration target.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Base URL.
    pub url: String,
    /// CA of its certificate.
    pub ca: PathBuf,
    /// The bootstrap token an administrator made for this host (`trustpool host-add`).
    pub enrollment_token_file: Option<PathBuf>,
    /// Longest wait between registration attempts.
    pub retry_max: Duration,
}

/// Heartbeat target.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Base URL.
    pub url: String,
    /// CA of its certificate.
    pub ca: PathBuf,
    /// File holding the compute token the scheduler accepts heartbeats with.
    pub token_file: PathBuf,
    /// Heartbeat interval.
    pub interval: Duration,
}

/// Values that replace what the OS reports.
#[derive(Debug, Clone, Default)]
pub struct ResourceOverrides {
    /// RAM in MiB.
    pub memory_mb: Option<u64>,
    /// vCPUs.
    pub vcpus: Option<u32>,
    /// Disk in GiB.
    pub local_gb: Option<u64>,
    /// Availability zone (default `nova`).
    pub availability_zone: String,
    /// Filesystem whose size is `local_gb` (default: the state directory's).
    pub disk_path: Option<PathBuf>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// toml's message (names the key and line).
        message: String,
    },
    /// A value out of range.
    #[error("{path}: {key}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl Config {
    /// Reads and validates a TOML file.
    ///
    /// # Errors
    /// A `ConfigError` naming the file and key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` is for messages.
    ///
    /// # Errors
    /// A `ConfigError` naming the key.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            path: p.clone(),
            key,
            reason: reason.to_owned(),
        };
        let host_name = match raw.host_name {
            Some(name) => name,
            None => rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
        };
        if let Err(e) = trustpool_api::names::check_name(&host_name, "host_name") {
            return Err(invalid("host_name", &e.reason));
        }
        if raw.aliases.is_some() {
            return Err(invalid(
                "aliases",
                "a host's other names are set by an administrator on the attestation server (trustpool host-alias NAME set …), not claimed by its agent: remove this key",
            ));
        }
        let mut server_spki_sha256 = Vec::new();
        for pin in &raw.listen.server_spki_sha256 {
            let hex: String = pin.chars().filter(|c| *c != ':').collect();
            match trustpool_api::bytes::from_hex(&hex).and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                Some(b) => server_spki_sha256.push(b),
                None => {
                    return Err(invalid(
                        "listen.server_spki_sha256",
                        "each entry is a SHA-256 (64 hex digits) of a DER SubjectPublicKeyInfo",
                    ));
                }
            }
        }
        if raw.listen.server_certificate.is_none() && server_spki_sha256.is_empty() {
            return Err(invalid(
                "listen.server_certificate",
                "required (or listen.server_spki_sha256): the attestation server's client certificate, the only client the agent serves",
            ));
        }
        if !(raw.tpm.tcti.starts_with("device:")
            || raw.tpm.tcti.starts_with("swtpm:")
            || raw.tpm.tcti.starts_with("mssim:")
            || raw.tpm.tcti.starts_with("tabrmd"))
        {
            return Err(invalid(
                "tpm.tcti",
                "must start with device:, swtpm:, mssim: or tabrmd",
            ));
        }
        let event_log = raw.tpm.event_log.unwrap_or_else(|| {
            if raw.tpm.tcti.starts_with("device:") {
                PathBuf::from(KERNEL_EVENT_LOG)
            } else {
                raw.state_dir.join("boot/eventlog.bin")
            }
        });
        if raw.tpm.boot_manifest.is_some() && !raw.tpm.tcti.starts_with("swtpm:") {
            return Err(invalid(
                "tpm.boot_manifest",
                "measured-boot emulation needs an swtpm TCTI; a hardware TPM is measured by its firmware",
            ));
        }
        let url = raw
            .listen
            .url
            .unwrap_or_else(|| format!("https://{host_name}:{}", raw.listen.address.port()));
        if !url.starts_with("https://") {
            return Err(invalid("listen.url", "must be an https:// URL"));
        }
        let server = match raw.server {
            Some(s) if !s.url.starts_with("https://") => {
                return Err(invalid("server.url", "must be an https:// URL"));
            }
            Some(s) if s.retry_max_secs == 0 || s.retry_max_secs > 3600 => {
                return Err(invalid("server.retry_max_secs", "must be 1-3600"));
            }
            Some(s) => Some(ServerConfig {
                url: s.url,
                ca: s.ca,
                enrollment_token_file: s.enrollment_token_file,
                retry_max: Duration::from_secs(s.retry_max_secs),
            }),
            None => None,
        };
        let scheduler = match raw.scheduler {
            Some(s) if !s.url.starts_with("https://") => {
                return Err(invalid("scheduler.url", "must be an https:// URL"));
            }
            Some(s) if s.heartbeat_secs == 0 || s.heartbeat_secs > 3600 => {
                return Err(invalid("scheduler.heartbeat_secs", "must be 1-3600"));
            }
            Some(s) => Some(SchedulerConfig {
                url: s.url,
                ca: s.ca,
                token_file: s.token_file,
                interval: Duration::from_secs(s.heartbeat_secs),
            }),
            None => None,
        };
        let r = raw.resources;
        let availability_zone = r.availability_zone.unwrap_or_else(|| "nova".to_owned());
        if availability_zone.is_empty() || availability_zone.contains(':') {
            return Err(invalid(
                "resources.availability_zone",
                "must be non-empty and contain no ':'",
            ));
        }
        Ok(Self {
            host_name,
            state_dir: raw.state_dir,
            tcti: raw.tpm.tcti,
            ek_algorithm: raw.tpm.ek_algorithm,
            ak_algorithm: raw.tpm.ak_algorithm,
            event_log,
            boot_manifest: raw.tpm.boot_manifest,
            listen: raw.listen.address,
            url,
            cert: raw.listen.cert,
            key: raw.listen.key,
            client_ca: raw.listen.client_ca,
            server_certificate: raw.listen.server_certificate,
            server_spki_sha256,
            server,
            scheduler,
            resources: ResourceOverrides {
                memory_mb: r.memory_mb,
                vcpus: r.vcpus,
                local_gb: r.local_gb,
                availability_zone,
                disk_path: r.disk_path,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
host_name = "compute-1"
state_dir = "/var/lib/trustpool-agent"
[tpm]
tcti = "swtpm:path=/run/swtpm/sock"
[listen]
address = "0.0.0.0:9443"
cert = "/etc/trustpool/agent.crt"
key = "/etc/trustpool/agent.key"
client_ca = "/etc/trustpool/server-client-ca.crt"
server_certificate = "/etc/trustpool/attestation-client.crt"
[server]
url = "https://attest.example:8443"
ca = "/etc/trustpool/ca.crt"
"#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = Config::parse(GOOD, Path::new("agent.toml")).unwrap();
        assert_eq!(c.url, "https://compute-1:9443");
        assert_eq!(
            c.event_log,
            PathBuf::from("/var/lib/trustpool-agent/boot/eventlog.bin")
        );
        assert_eq!(c.resources.availability_zone, "nova");
        assert_eq!(c.server.unwrap().retry_max, Duration::from_secs(300));
        assert!(c.scheduler.is_none());
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let text = GOOD.replace("[tpm]", "[tpm]\ntcit = \"x\"");
        let err = Config::parse(&text, Path::new("agent.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tcit"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (from, to, key) in [
            (
                "tcti = \"swtpm:path=/run/swtpm/sock\"",
                "tcti = \"tcp:1\"",
                "tpm.tcti",
            ),
            (
                "url = \"https://attest.example:8443\"",
                "url = \"http://attest.example\"",
                "server.url",
            ),
            (
                "host_name = \"compute-1\"",
                "host_name = \"two words\"",
                "host_name",
            ),
            (
                "host_name = \"compute-1\"",
                "host_name = \"x/../compute-1\"",
                "host_name",
            ),
            (
                "host_name = \"compute-1\"",
                "host_name = \"compute-1\"\naliases = [\"compute-3\"]",
                "set by an administrator",
            ),
            (
                "server_certificate = \"/etc/trustpool/attestation-client.crt\"",
                "",
                "listen.server_certificate",
            ),
            (
                "server_certificate = \"/etc/trustpool/attestation-client.crt\"",
                "server_spki_sha256 = [\"abcd\"]",
                "listen.server_spki_sha256",
            ),
        ] {
            let err = Config::parse(&GOOD.replace(from, to), Path::new("agent.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
