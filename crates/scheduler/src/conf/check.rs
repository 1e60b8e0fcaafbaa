//! `--check-config`'s second half: every file the configuration names is opened and parsed
//! with the loaders the scheduler uses at start, and the database is reached (SQLite: the
//! file opens or its directory is writable; PostgreSQL: a connection within 3 s). Every
//! problem names its option.

use std::time::Duration;

use sqlx::Connection as _;
use trustpool_client::preflight::{Problems, Report, sqlite_path};

use super::Config;

/// How long PostgreSQL gets to accept a connection.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks the files and the database `config` names.
///
/// # Errors
/// Every problem found, each naming its option.
pub async fn check(config: &Config) -> Result<Vec<String>, Problems> {
    let mut report = Report::new();
    match &config.tls {
        Some(tls) => {
            report.identity(("[ssl] cert_file", &tls.cert), ("[ssl] key_file", &tls.key));
        }
        None => report.passed(format!(
            "no [ssl]: plain HTTP on {} (loopback only, behind a TLS-terminating proxy)",
            config.listen
        )),
    }
    if let Some(a) = &config.attestation {
        report.ca_bundle("[trusted_computing] server_ca_file", &a.ca_file);
    }
    database(&mut report, &config.database_url).await;
    report.finish()
}

async fn database(report: &mut Report, url: &str) {
    const OPTION: &str = "[database] connection";
    if let Some(path) = sqlite_path(url) {
        report.sqlite_file(OPTION, &path);
        return;
    }
    if !url.starts_with("postgres://") {
        report.passed(format!("{OPTION}: in-memory SQLite"));
        return;
    }
    match tokio::time::timeout(DATABASE_TIMEOUT, sqlx::PgConnection::connect(url)).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            report.passed(format!("{OPTION}: PostgreSQL answers"));
        }
        Ok(Err(e)) => {
            report.problem_without_file(OPTION, format!("cannot connect to PostgreSQL: {e}"))
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
