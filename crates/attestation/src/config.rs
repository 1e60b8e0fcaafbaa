//! The server's configuration (TOML), validated once at start; errors name the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    database_url: String,
    server_id: Option<String>,
    tls: RawTls,
    agents: RawAgents,
    enrollment: RawEnrollment,
    #[serde(default)]
    attestation: RawAttestation,
    #[serde(default)]
    auth: RawAuth,
    /// PKCS#8 key signing EAR results (created on first start).
    result_signing_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgents {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnrollment {
    #[serde(default)]
    ek_ca: Vec<PathBuf>,
    #[serde(default)]
    dev_ek_ca: Vec<PathBuf>,
    #[serde(default)]
    ek_crl: Vec<PathBuf>,
    #[serde(default)]
    allow_software_tpm: bool,
    #[serde(default)]
    require_approval: bool,
    max_registrations_per_second: Option<u32>,
    max_registrations_per_source_per_second: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAttestation {
    interval_secs: Option<u64>,
    verdict_ttl_secs: Option<u64>,
    agent_timeout_secs: Option<u64>,
    max_concurrency: Option<usize>,
    max_concurrency_failing: Option<usize>,
    history_days: Option<u32>,
    audit_days: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    admin_token_sha256: Vec<String>,
    #[serde(default)]
    read_token_sha256: Vec<String>,
    poll_hosts_auth_blob: Option<String>,
}

/// A string that never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// `sqlite:///path` (default) or `postgres://…`.
    pub database_url: Secret,
    /// This server's name in leases (several servers may share a database).
    pub server_id: String,
    /// Server certificate chain (PEM); its SAN lists what operators write in
    /// `[trusted_computing] server`. Served also to clients that send no SNI.
    pub tls_cert: PathBuf,
    /// Its key.
    pub tls_key: PathBuf,
    /// CA of the agents' TLS certificates.
    pub agents_ca: PathBuf,
    /// Client certificate presented to agents.
    pub agents_client_cert: PathBuf,
    /// Its key.
    pub agents_client_key: PathBuf,
    /// Manufacturer EK CA certificates (roots and intermediates).
    pub ek_ca: Vec<PathBuf>,
    /// Software-TPM EK CAs (swtpm-localca): accepted only with `allow_software_tpm`.
    pub dev_ek_ca: Vec<PathBuf>,
    /// CRLs of the EK CAs (revoked EK or intermediate certificates are refused).
    pub ek_crl: Vec<PathBuf>,
    /// Accept software TPMs (development pools only).
    pub allow_software_tpm: bool,
    /// New hosts wait for an administrator's approval.
    pub require_approval: bool,
    /// Registrations + activation proofs per second, server-wide (default 50; burst twice).
    pub max_registrations_per_second: u32,
    /// The same, per client address (default 5; burst twice), so one client cannot starve
    /// everyone's enrollment.
    pub max_registrations_per_source_per_second: u32,
    /// Challenge interval per host.
    pub interval: Duration,
    /// Verdicts older than this are `unknown`.
    pub verdict_ttl: Duration,
    /// Per-agent timeout.
    pub agent_timeout: Duration,
    /// Concurrent challenges of hosts whose agents answer.
    pub max_concurrency: usize,
    /// Concurrent challenges of hosts whose agents did not answer their last challenge, or
    /// are not known to answer yet: a budget of their own, so that stalling agents never
    /// take the permits answering hosts need (default `max(1, max_concurrency / 8)`).
    pub max_concurrency_failing: usize,
    /// Verdict runs that ended longer ago are deleted (each host's current one never).
    pub history: Duration,
    /// Audit rows older than this are deleted.
    pub audit_retention: Duration,
    /// Admin bearer tokens (hashed, named).
    pub admin_tokens: Vec<NamedToken>,
    /// Read-only bearer tokens (hashed, named).
    pub read_tokens: Vec<NamedToken>,
    /// The `x-auth-blob` PollHosts requires, when set.
    pub poll_hosts_auth_blob: Option<Secret>,
    /// The key signing EAR results (PKCS#8 DER; created if missing).
    pub result_signing_key: PathBuf,
}

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

/// A bearer token as configured: its SHA-256 and the name audit rows record it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedToken {
    /// Who holds it (`alice`, `nova-scheduler`); `<role>-<first 8 hex digits>` when the
    /// configuration gave no name.
    pub name: String,
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
}

/// Reads `["name:<hex SHA-256>", "<hex SHA-256>", "sha256:<hex>"]`.
fn hashes(
    list: &[String],
    key: &str,
    role: &str,
    path: &str,
) -> Result<Vec<NamedToken>, ConfigError> {
    let err = |message: String| ConfigError {
        path: path.to_owned(),
        message: format!("{key}: {message}"),
    };
    list.iter()
        .map(|entry| {
            let (name, hex) = match entry.rsplit_once(':') {
                Some(("sha256", hex)) => (None, hex),
                None => (None, entry.as_str()),
                Some((name, hex)) => (Some(name), hex),
            };
            let hash = trustpool_api::bytes::from_hex(hex)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| err("not a hex SHA-256 (name:<64 hex digits>)".to_owned()))?;
            let name = match name {
                Some(n)
                    if !n.is_empty()
                        && n.len() <= 64
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._@".contains(&b)) =>
                {
                    n.to_owned()
                }
                Some(n) => {
                    return Err(err(format!(
                        "token name {n:?}: 1-64 letters, digits, '-', '.', '_' or '@'"
                    )));
                }
                None => format!("{role}-{}", hex.get(..8).unwrap_or(hex)),
            };
            Ok(NamedToken { name, hash })
        })
        .collect()
}

impl Config {
    /// Reads and validates a file.
    ///
    /// # Errors
    /// A `ConfigError` naming the key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: p.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &p)
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// A `ConfigError` naming the key.
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if !(raw.database_url.starts_with("sqlite:")
            || raw.database_url.starts_with("postgres://")
            || raw.database_url.starts_with("postgresql://"))
        {
            return Err(err(
                "database_url: must be sqlite:… or postgres://…".to_owned()
            ));
        }
        if raw.enrollment.ek_ca.is_empty() && raw.enrollment.dev_ek_ca.is_empty() {
            return Err(err("enrollment.ek_ca: at least one EK CA certificate is needed (no host can enroll otherwise)".to_owned()));
        }
        let a = raw.attestation;
        let interval = a.interval_secs.unwrap_or(30);
        if !(1..=3600).contains(&interval) {
            return Err(err("attestation.interval_secs: must be 1-3600".to_owned()));
        }
        let ttl = a.verdict_ttl_secs.unwrap_or(interval.saturating_mul(3));
        if ttl < interval {
            return Err(err(
                "attestation.verdict_ttl_secs: must be at least interval_secs".to_owned(),
            ));
        }
        let timeout = a.agent_timeout_secs.unwrap_or(20);
        if timeout == 0 || timeout > 300 {
            return Err(err(
                "attestation.agent_timeout_secs: must be 1-300".to_owned()
            ));
        }
        let max_concurrency = a.max_concurrency.unwrap_or(64).clamp(1, 4096);
        let max_concurrency_failing = a
            .max_concurrency_failing
            .unwrap_or((max_concurrency / 8).max(1));
        if !(1..=max_concurrency).contains(&max_concurrency_failing) {
            return Err(err(format!(
                "attestation.max_concurrency_failing: must be 1 to max_concurrency ({max_concurrency}): the failing hosts' budget is the small one"
            )));
        }
        let history_days = a.history_days.unwrap_or(90);
        if !(1..=3650).contains(&history_days) {
            return Err(err("attestation.history_days: must be 1-3650".to_owned()));
        }
        let audit_days = a.audit_days.unwrap_or(365);
        if !(1..=36500).contains(&audit_days) {
            return Err(err("attestation.audit_days: must be 1-36500".to_owned()));
        }
        // Default: beside a SQLite database, else in the state directory.
        let result_signing_key = raw.result_signing_key.clone().unwrap_or_else(|| {
            let db = raw
                .database_url
                .strip_prefix("sqlite://")
                .map(PathBuf::from);
            db.and_then(|p| p.parent().map(|d| d.join("ear-signing-key.p8")))
                .unwrap_or_else(|| PathBuf::from("/var/lib/trustpool/ear-signing-key.p8"))
        });
        let server_id = raw
            .server_id
            .unwrap_or_else(|| format!("attestation-{}", std::process::id()));
        Ok(Self {
            listen: raw.listen,
            database_url: Secret(raw.database_url),
            server_id,
            tls_cert: raw.tls.cert,
            tls_key: raw.tls.key,
            agents_ca: raw.agents.ca,
            agents_client_cert: raw.agents.client_cert,
            agents_client_key: raw.agents.client_key,
            ek_ca: raw.enrollment.ek_ca,
            dev_ek_ca: raw.enrollment.dev_ek_ca,
            ek_crl: raw.enrollment.ek_crl,
            allow_software_tpm: raw.enrollment.allow_software_tpm,
            require_approval: raw.enrollment.require_approval,
            max_registrations_per_second: raw
                .enrollment
                .max_registrations_per_second
                .unwrap_or(50)
                .max(1),
            max_registrations_per_source_per_second: raw
                .enrollment
                .max_registrations_per_source_per_second
                .unwrap_or(5)
                .max(1),
            interval: Duration::from_secs(interval),
            verdict_ttl: Duration::from_secs(ttl),
            agent_timeout: Duration::from_secs(timeout),
            max_concurrency,
            max_concurrency_failing,
            history: Duration::from_secs(u64::from(history_days) * 86_400),
            audit_retention: Duration::from_secs(u64::from(audit_days) * 86_400),
            admin_tokens: hashes(
                &raw.auth.admin_token_sha256,
                "auth.admin_token_sha256",
                "admin",
                path,
            )?,
            read_tokens: hashes(
                &raw.auth.read_token_sha256,
                "auth.read_token_sha256",
                "read",
                path,
            )?,
            poll_hosts_auth_blob: raw.auth.poll_hosts_auth_blob.map(Secret),
            result_signing_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    fn with_attestation(attestation: &str) -> String {
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite:///tmp/a.db\"\n\
             [tls]\ncert = \"s.crt\"\nkey = \"s.key\"\n\
             [agents]\nca = \"ca.crt\"\nclient_cert = \"c.crt\"\nclient_key = \"c.key\"\n\
             [enrollment]\nek_ca = [\"ek.crt\"]\n[attestation]\n{attestation}\n"
        )
    }

    #[test]
    fn the_failing_hosts_budget_defaults_to_an_eighth_and_is_at_most_the_main_one() {
        let config = Config::parse(&with_attestation(""), "t.toml").unwrap();
        assert_eq!(
            (config.max_concurrency, config.max_concurrency_failing),
            (64, 8)
        );
        let config = Config::parse(&with_attestation("max_concurrency = 4"), "t.toml").unwrap();
        assert_eq!(config.max_concurrency_failing, 1);
        let config = Config::parse(
            &with_attestation("max_concurrency = 16\nmax_concurrency_failing = 16"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(config.max_concurrency_failing, 16);
        for bad in ["0", "17"] {
            let err = Config::parse(
                &with_attestation(&format!(
                    "max_concurrency = 16\nmax_concurrency_failing = {bad}"
                )),
                "t.toml",
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                "t.toml: attestation.max_concurrency_failing: must be 1 to max_concurrency (16): the failing hosts' budget is the small one"
            );
        }
    }
}
