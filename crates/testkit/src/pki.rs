//! A throwaway PKI for tests and local pools: a CA, and the server and client certificates
//! it issues (ECDSA P-256, rcgen), written as PEM files. A pool uses two: one for TLS
//! servers (agents, attestation server, scheduler) and one that issues only the
//! attestation server's client certificate, the one client agents serve.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// A CA on disk.
pub struct TestPki {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A certificate and key issued by the test CA.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Certificate (PEM) path.
    pub cert: PathBuf,
    /// Private key (PEM) path.
    pub key: PathBuf,
}

impl Issued {
    /// The certificate PEM.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        std::fs::read_to_string(&self.cert).expect("read cert")
    }

    /// The key PEM.
    #[must_use]
    pub fn key_pem(&self) -> String {
        std::fs::read_to_string(&self.key).expect("read key")
    }
}

impl TestPki {
    /// Creates a CA named `name` in `dir` (`ca.crt`).
    #[must_use]
    pub fn new(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mkdir pki");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("CA cert");
        std::fs::write(dir.join("ca.crt"), issuer.pem()).expect("write CA");
        Self {
            dir: dir.to_path_buf(),
            issuer,
        }
    }

    /// The CA certificate path.
    #[must_use]
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The CA certificate PEM.
    #[must_use]
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues `<file_stem>.crt`/`.key` for `names` (DNS names or IP addresses), usable as a
    /// TLS server and client certificate (a server's own, for tests where it is both).
    #[must_use]
    pub fn issue(&self, file_stem: &str, names: &[&str]) -> Issued {
        self.issue_for(
            file_stem,
            names,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// A TLS server certificate only (an agent's: it must never be usable as a client).
    #[must_use]
    pub fn issue_server(&self, file_stem: &str, names: &[&str]) -> Issued {
        self.issue_for(file_stem, names, &[ExtendedKeyUsagePurpose::ServerAuth])
    }

    /// A TLS client certificate only (the attestation server's, presented to agents).
    #[must_use]
    pub fn issue_client(&self, file_stem: &str, name: &str) -> Issued {
        self.issue_for(file_stem, &[name], &[ExtendedKeyUsagePurpose::ClientAuth])
    }

    fn issue_for(
        &self,
        file_stem: &str,
        names: &[&str],
        usages: &[ExtendedKeyUsagePurpose],
    ) -> Issued {
        let sans: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("DNS name")),
            })
            .collect();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or(file_stem),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages.to_vec();
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("issue");
        let issued = Issued {
            cert: self.dir.join(format!("{file_stem}.crt")),
            key: self.dir.join(format!("{file_stem}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write cert");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write key");
        issued
    }
}
