//! `check-config`'s second half: every file the configuration names is opened and parsed
//! with the loaders the agent uses at start (its TLS identity, the CA of the attestation
//! server's client certificate, the pinned `listen.server_certificate`, the servers' CAs,
//! token files, the boot manifest, the event log). Every problem names its option:
//! `listen.key (/etc/trustpool/agent.key): not a private key (…)`.

use std::path::Path;

use trustpool_client::preflight::{Problems, Report};

use crate::config::Config;
use crate::{http, measure};

/// Checks the files `config` names.
///
/// # Errors
/// Every problem found, each naming its option.
pub fn check(config: &Config) -> Result<Vec<String>, Problems> {
    let mut report = Report::new();
    let identity = report.identity(("listen.cert", &config.cert), ("listen.key", &config.key));
    let client_ca = report.ca_bundle("listen.client_ca", &config.client_ca);
    let mut pins = config.server_spki_sha256.clone();
    let mut pinned = true;
    if let Some(file) = &config.server_certificate {
        pinned = report.certificate_chain("listen.server_certificate", file);
        if pinned {
            match http::pins_from_file(file) {
                Ok(found) => pins.extend(found),
                Err(e) => {
                    report.problem("listen.server_certificate", file, e.to_string());
                    pinned = false;
                }
            }
        }
    }
    if identity && client_ca && pinned {
        // The agent's whole TLS configuration, built as `start` builds it.
        let server = http::ServerIdentity {
            client_ca: &config.client_ca,
            spki_sha256: pins,
        };
        if let Err(e) = http::server_config(&config.cert, &config.key, &server) {
            report.problem("listen", &config.cert, e.to_string());
        }
    }
    if let Some(server) = &config.server {
        report.ca_bundle("server.ca", &server.ca);
        if let Some(file) = &server.enrollment_token_file {
            // Optional once enrolled: an administrator may remove it.
            if file.exists() {
                token(&mut report, "server.enrollment_token_file", file);
            } else {
                report.passed(format!(
                    "server.enrollment_token_file ({}): absent (needed only to enroll)",
                    file.display()
                ));
            }
        }
    }
    if let Some(scheduler) = &config.scheduler {
        report.ca_bundle("scheduler.ca", &scheduler.ca);
        token(&mut report, "scheduler.token_file", &scheduler.token_file);
    }
    match &config.boot_manifest {
        Some(file) => match measure::Manifest::load(file) {
            Ok(_) => report.passed(format!("tpm.boot_manifest ({}): parsed", file.display())),
            Err(e) => report.problem("tpm.boot_manifest", file, e.to_string()),
        },
        // Without an emulated boot, the log must be there to serve with quotes.
        None => {
            if report.read("tpm.event_log", &config.event_log).is_some() {
                report.passed(format!(
                    "tpm.event_log ({}): opens",
                    config.event_log.display()
                ));
            }
        }
    }
    if let Some(dir) = &config.resources.disk_path {
        if dir.is_dir() {
            report.passed(format!(
                "resources.disk_path ({}): a directory",
                dir.display()
            ));
        } else {
            report.problem("resources.disk_path", dir, "not a directory");
        }
    }
    report.finish()
}

/// A token file: readable text with a token in it.
fn token(report: &mut Report, option: &str, file: &Path) {
    if let Some(text) = report.read_text(option, file) {
        if text.trim().is_empty() {
            report.problem(option, file, "empty: no token in it");
        } else {
            report.passed(format!("{option} ({}): holds a token", file.display()));
        }
    }
}
