//! `check-config`'s second half: every file the configuration names is opened and parsed
//! with the loaders the server uses at start (TLS identity, agents' CA, client identity, EK
//! CAs, CRLs, the EAR signing key), and the database is reached (SQLite: the file opens or
//! its directory is writable; PostgreSQL: a connection within 3 s). Every problem names its
//! option: `tls.key (/etc/trustpool/attestation.key): not a private key (…)`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Connection as _;
use trustpool_client::preflight::{Problems, Report, sqlite_path};

use crate::config::Config;
use crate::ekcert::EkCaStore;

/// How long PostgreSQL gets to accept a connection.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks the files and the database `config` names.
///
/// # Errors
/// Every problem found, each naming its option.
pub async fn check(config: &Config) -> Result<Vec<String>, Problems> {
    let mut report = Report::new();
    report.identity(("tls.cert", &config.tls_cert), ("tls.key", &config.tls_key));
    report.ca_bundle("agents.ca", &config.agents_ca);
    report.identity(
        ("agents.client_cert", &config.agents_client_cert),
        ("agents.client_key", &config.agents_client_key),
    );
    let none: &[PathBuf] = &[];
    for path in &config.ek_ca {
        ek_file(
            &mut report,
            "enrollment.ek_ca",
            path,
            EkCaStore::load(&[path], none),
        );
    }
    for path in &config.dev_ek_ca {
        ek_file(
            &mut report,
            "enrollment.dev_ek_ca",
            path,
            EkCaStore::load(none, &[path]),
        );
    }
    for path in &config.ek_crl {
        ek_file(
            &mut report,
            "enrollment.ek_crl",
            path,
            EkCaStore::default().with_crls(&[path]),
        );
    }
    signing_key(&mut report, &config.result_signing_key);
    database(&mut report, &config.database_url.0).await;
    report.finish()
}

/// An EK CA or CRL file as the enrollment loader read it.
fn ek_file<T>(
    report: &mut Report,
    option: &str,
    path: &Path,
    loaded: Result<T, crate::ekcert::CaFileError>,
) {
    match loaded {
        Ok(_) => report.passed(format!("{option} ({}): parsed", path.display())),
        Err(e) => {
            // The loader's message starts with the path; the report prints it once.
            let text = e.to_string();
            let prefix = format!("{}: ", path.display());
            let reason = text.strip_prefix(&prefix).unwrap_or(&text);
            if path.exists() {
                report.problem(option, path, reason);
            } else {
                report.problem(option, path, format!("cannot open: {reason}"));
            }
        }
    }
}

/// `result_signing_key`: a PKCS#8 ECDSA P-256 key if it exists, else a place it can be
/// created (the server creates it on first start).
fn signing_key(report: &mut Report, path: &Path) {
    const OPTION: &str = "result_signing_key";
    if !path.exists() {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        match dir {
            Some(d) if d.exists() && !d.is_dir() => {
                report.problem(OPTION, path, format!("{} is not a directory", d.display()))
            }
            _ => report.passed(format!(
                "{OPTION} ({}): absent, created on first start",
                path.display()
            )),
        }
        return;
    }
    let Some(der) = report.read(OPTION, path) else {
        return;
    };
    match aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
    ) {
        Ok(_) => report.passed(format!("{OPTION} ({}): ECDSA P-256 key", path.display())),
        Err(_) => report.problem(
            OPTION,
            path,
            "not a PKCS#8 DER ECDSA P-256 private key (remove it to have one created)",
        ),
    }
}

async fn database(report: &mut Report, url: &str) {
    const OPTION: &str = "database_url";
    if let Some(path) = sqlite_path(url) {
        report.sqlite_file(OPTION, &path);
        return;
    }
    if url.starts_with("sqlite:") {
        report.passed(format!("{OPTION}: in-memory SQLite"));
        return;
    }
    match tokio::time::timeout(DATABASE_TIMEOUT, sqlx::PgConnection::connect(url)).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            report.passed(format!("{OPTION}: PostgreSQL answers"));
        }
        Ok(Err(e)) => {
            report.problem_without_file(OPTION, format!("cannot connect to PostgreSQL: {e}"));
        }
        Err(_) => report.problem_without_file(
            OPTION,
            format!(
                "PostgreSQL did not answer within {} s",
                DATABASE_TIMEOUT.as_secs()
            ),
        ),
    }
}
