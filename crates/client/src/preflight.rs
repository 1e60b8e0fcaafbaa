//! What every binary's `check-config` does with the files its configuration names: open
//! each one and parse it with the loaders the binary uses at start ([`crate::tls`]), so a
//! missing file, a PEM without a certificate, a key that is not a key or a CA bundle with
//! a leaf in it is reported before start, naming the option:
//! `tls.key (/etc/trustpool/attestation.key): not a private key (…)`. Every problem is
//! collected (not only the first), and what passed is listed. Feature `server`.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::tls;

/// One problem: the option, the file it names, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The option as the configuration spells it (`tls.key`, `[ssl] key_file`).
    pub option: String,
    /// The file it names (None for problems not about a file, such as a database URL).
    pub path: Option<PathBuf>,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} ({}): {}", self.option, path.display(), self.reason),
            None => write!(f, "{}: {}", self.option, self.reason),
        }
    }
}

/// What a check found: lines for what passed, and the problems.
#[derive(Debug, Default)]
pub struct Report {
    checked: Vec<String>,
    problems: Vec<Problem>,
}

/// The problems of a failed check, one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Problems(pub Vec<Problem>);

impl Report {
    /// An empty report.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what passed.
    pub fn passed(&mut self, line: impl Into<String>) {
        self.checked.push(line.into());
    }

    /// Records a problem with a file.
    pub fn problem(&mut self, option: &str, path: &Path, reason: impl Into<String>) {
        self.problems.push(Problem {
            option: option.to_owned(),
            path: Some(path.to_path_buf()),
            reason: reason.into(),
        });
    }

    /// Records a problem that is not about one file.
    pub fn problem_without_file(&mut self, option: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            option: option.to_owned(),
            path: None,
            reason: reason.into(),
        });
    }

    /// The problems so far.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// What passed, one line each, or every problem.
    ///
    /// # Errors
    /// [`Problems`] when anything failed.
    pub fn finish(self) -> Result<Vec<String>, Problems> {
        if self.problems.is_empty() {
            Ok(self.checked)
        } else {
            Err(Problems(self.problems))
        }
    }

    /// The bytes of the file `option` names.
    pub fn read(&mut self, option: &str, path: &Path) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.problem(option, path, format!("cannot open: {e}"));
                None
            }
        }
    }

    /// The text of the file `option` names.
    pub fn read_text(&mut self, option: &str, path: &Path) -> Option<String> {
        let bytes = self.read(option, path)?;
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => {
                self.problem(option, path, "not a PEM file (binary content)");
                None
            }
        }
    }

    /// The PEM certificates of the file `option` names (at least one).
    pub fn certificates(
        &mut self,
        option: &str,
        path: &Path,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let bytes = self.read(option, path)?;
        match tls::certificates(&String::from_utf8_lossy(&bytes), "certificate") {
            Ok(certs) => {
                for (i, cert) in certs.iter().enumerate() {
                    if let Err(e) = X509Certificate::from_der(cert.as_ref()) {
                        self.problem(
                            option,
                            path,
                            format!(
                                "certificate {} is not a valid X.509 certificate: {e}",
                                i + 1
                            ),
                        );
                        return None;
                    }
                }
                Some(certs)
            }
            Err(_) => {
                self.problem(option, path, "holds no PEM certificate");
                None
            }
        }
    }

    /// A certificate chain file: its certificates, recorded as checked.
    pub fn certificate_chain(&mut self, option: &str, path: &Path) -> bool {
        match self.certificates(option, path) {
            Some(certs) => {
                self.passed(format!(
                    "{option} ({}): {} certificate(s)",
                    path.display(),
                    certs.len()
                ));
                true
            }
            None => false,
        }
    }

    /// The PEM private key of the file `option` names.
    pub fn private_key(&mut self, option: &str, path: &Path) -> Option<PrivateKeyDer<'static>> {
        let text = self.read_text(option, path)?;
        // Parsed as PEM, then loaded as the TLS stack loads it (a PEM block of garbage
        // is not a key).
        let loaded = tls::private_key(&text, "private key")
            .ok()
            .filter(|key| rustls::crypto::aws_lc_rs::sign::any_supported_type(key).is_ok());
        match loaded {
            Some(key) => Some(key),
            None => {
                self.problem(
                    option,
                    path,
                    "not a private key (a PEM PKCS#8, PKCS#1 or SEC1 RSA, ECDSA or Ed25519 key is expected)",
                );
                None
            }
        }
    }

    /// A CA bundle: PEM certificates that are all CA certificates (basicConstraints
    /// cA = TRUE), usable as a rustls root store.
    pub fn ca_bundle(&mut self, option: &str, path: &Path) -> bool {
        let Some(certs) = self.certificates(option, path) else {
            return false;
        };
        for (i, cert) in certs.iter().enumerate() {
            if !is_ca(cert.as_ref()) {
                self.problem(
                    option,
                    path,
                    format!(
                        "certificate {} ({}) is not a CA certificate (basicConstraints cA is not set): give the CA that issued it",
                        i + 1,
                        subject(cert.as_ref())
                    ),
                );
                return false;
            }
        }
        let pem = self.read_text(option, path).unwrap_or_default();
        if let Err(e) = tls::root_store(&pem) {
            self.problem(option, path, e.to_string());
            return false;
        }
        self.passed(format!(
            "{option} ({}): {} CA certificate(s)",
            path.display(),
            certs.len()
        ));
        true
    }

    /// A certificate chain and its key: each parses, and the key is the leaf's (checked
    /// by building the TLS configuration the servers build).
    pub fn identity(
        &mut self,
        (cert_option, cert): (&str, &Path),
        (key_option, key): (&str, &Path),
    ) -> bool {
        let certs = self.certificates(cert_option, cert);
        let key_der = self.private_key(key_option, key);
        let (Some(certs), Some(_)) = (certs, key_der) else {
            return false;
        };
        let chain_pem = self.read_text(cert_option, cert).unwrap_or_default();
        let key_pem = self.read_text(key_option, key).unwrap_or_default();
        if let Err(e) = tls::server_config(&chain_pem, &key_pem) {
            self.problem(
                key_option,
                key,
                format!(
                    "cannot be used with {cert_option} ({}): {e}",
                    cert.display()
                ),
            );
            return false;
        }
        self.passed(format!(
            "{cert_option} ({}): {} certificate(s); {key_option} ({}): its private key",
            cert.display(),
            certs.len(),
            key.display()
        ));
        true
    }

    /// A SQLite database file: it opens for reading and writing, or, when it does not
    /// exist yet, its directory exists and a file can be created in it.
    pub fn sqlite_file(&mut self, option: &str, path: &Path) -> bool {
        if path.exists() {
            return match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                Ok(_) => {
                    self.passed(format!("{option}: SQLite file {} opens", path.display()));
                    true
                }
                Err(e) => {
                    self.problem(option, path, format!("the SQLite file does not open: {e}"));
                    false
                }
            };
        }
        let dir = match path.parent() {
            Some(d) if d.as_os_str().is_empty() => Path::new("."),
            Some(d) => d,
            None => Path::new("/"),
        };
        if !dir.is_dir() {
            self.problem(
                option,
                path,
                format!("the database's directory {} does not exist", dir.display()),
            );
            return false;
        }
        let probe = dir.join(format!(".trustpool-check-config-{}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                self.passed(format!(
                    "{option}: SQLite file {} will be created (its directory is writable)",
                    path.display()
                ));
                true
            }
            Err(e) => {
                self.problem(
                    option,
                    path,
                    format!(
                        "the database's directory {} is not writable: {e}",
                        dir.display()
                    ),
                );
                false
            }
        }
    }
}

/// The file of a `sqlite:` URL (`sqlite:///abs/path`, `sqlite://rel`, `sqlite:path`, with
/// or without `?options`); None for an in-memory database.
#[must_use]
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split('?').next().unwrap_or(rest);
    (!file.is_empty() && file != ":memory:").then(|| PathBuf::from(file))
}

/// Whether a DER certificate says it is a CA (basicConstraints cA = TRUE).
fn is_ca(der: &[u8]) -> bool {
    X509Certificate::from_der(der)
        .ok()
        .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|bc| bc.value.ca))
        .unwrap_or(false)
}

/// The certificate's subject, for messages.
fn subject(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "unparsable".to_owned())
}
