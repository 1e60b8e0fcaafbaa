//! EK certificate validation: one test per refusal, each with a chain in which only that
//! check fails (certificates made with rcgen; EK public areas built as TPMT_PUBLIC).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use trustpool_attestation::ekcert::{EkCaKind, EkCaStore, EkCertError};
use trustpool_evidence::alg::alg_id;
use trustpool_evidence::{Public, Writer};

const NOW: i64 = 1_795_651_199; // 2026-11-25

/// An ECC P-256 EK public area (TCG template shape) for a raw `04 ‖ x ‖ y` point.
fn ek_public(point: &[u8]) -> Public {
    let (x, y) = point[1..].split_at(32);
    let mut w = Writer::new();
    w.u16_be(alg_id::ECC)
        .u16_be(alg_id::SHA256)
        .u32_be(0x0003_00b2);
    w.tpm2b(&[], "policy").unwrap();
    w.u16_be(alg_id::AES).u16_be(128).u16_be(alg_id::CFB);
    w.u16_be(alg_id::NULL).u16_be(0x0003).u16_be(alg_id::NULL);
    w.tpm2b(x, "x").unwrap().tpm2b(y, "y").unwrap();
    Public::parse(&w.into_bytes()).unwrap()
}

fn ca(name: &str, is_ca: bool) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = if is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

struct Ek {
    der: Vec<u8>,
    public: Public,
}

fn ek_cert(issuer: &CertifiedIssuer<'static, KeyPair>, eku: Option<Vec<u64>>, expired: bool) -> Ek {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    if let Some(oid) = eku {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(oid)];
    }
    if expired {
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2001, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    Ek {
        der: cert.der().to_vec(),
        public: ek_public(key.public_key_raw()),
    }
}

fn store(cas: &[&CertifiedIssuer<'static, KeyPair>], software: bool) -> EkCaStore {
    let dir = std::env::temp_dir().join(format!(
        "trustpool-ekcert-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<std::path::PathBuf> = cas
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = dir.join(format!("ca{i}.pem"));
            std::fs::write(&p, c.pem()).unwrap();
            p
        })
        .collect();
    let none: Vec<std::path::PathBuf> = Vec::new();
    if software {
        EkCaStore::load(&none, &paths).unwrap()
    } else {
        EkCaStore::load(&paths, &none).unwrap()
    }
}

fn rand_suffix() -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

const TCG_EK_EKU: &[u64] = &[2, 23, 133, 8, 1];

#[test]
fn a_good_chain_is_accepted_and_its_kind_reported() {
    let root = ca("EK root", true);
    let ek = ek_cert(&root, Some(TCG_EK_EKU.to_vec()), false);
    assert_eq!(
        store(&[&root], false).validate(&ek.der, &ek.public, NOW),
        Ok(EkCaKind::Manufacturer)
    );
    assert_eq!(
        store(&[&root], true).validate(&ek.der, &ek.public, NOW),
        Ok(EkCaKind::Software)
    );
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let root = ca("EK root", true);
    let ek = ek_cert(&root, None, false);
    let other = ek_public(KeyPair::generate().unwrap().public_key_raw());
    assert_eq!(
        store(&[&root], false).validate(&ek.der, &other, NOW),
        Err(EkCertError::KeyMismatch)
    );
}

#[test]
fn an_unknown_issuer_is_refused() {
    let root = ca("EK root", true);
    let stranger = ca("someone else", true);
    let ek = ek_cert(&stranger, None, false);
    assert_eq!(
        store(&[&root], false).validate(&ek.der, &ek.public, NOW),
        Err(EkCertError::UnknownIssuer)
    );
}

#[test]
fn a_forged_issuer_with_the_same_name_fails_the_signature() {
    let root = ca("EK root", true);
    let forger = ca("EK root", true);
    let ek = ek_cert(&forger, None, false);
    assert!(matches!(
        store(&[&root], false).validate(&ek.der, &ek.public, NOW),
        Err(EkCertError::BadSignature(_))
    ));
}

#[test]
fn an_expired_certificate_is_refused() {
    let root = ca("EK root", true);
    let ek = ek_cert(&root, None, true);
    assert_eq!(
        store(&[&root], false).validate(&ek.der, &ek.public, NOW),
        Err(EkCertError::Expired)
    );
}

#[test]
fn an_issuer_that_is_not_a_ca_is_refused() {
    let not_ca = ca("EK root", false);
    let ek = ek_cert(&not_ca, None, false);
    assert_eq!(
        store(&[&not_ca], false).validate(&ek.der, &ek.public, NOW),
        Err(EkCertError::NotCa)
    );
}

#[test]
fn a_certificate_for_another_purpose_is_refused() {
    let root = ca("EK root", true);
    let ek = ek_cert(&root, Some(vec![1, 3, 6, 1, 5, 5, 7, 3, 1]), false);
    assert_eq!(
        store(&[&root], false).validate(&ek.der, &ek.public, NOW),
        Err(EkCertError::WrongEku)
    );
}

#[test]
fn garbage_is_malformed() {
    let root = ca("EK root", true);
    let ek = ek_cert(&root, None, false);
    assert_eq!(
        store(&[&root], false).validate(b"not a certificate", &ek.public, NOW),
        Err(EkCertError::Malformed)
    );
    let mut trailing = ek.der.clone();
    trailing.push(0);
    assert_eq!(
        store(&[&root], false).validate(&trailing, &ek.public, NOW),
        Err(EkCertError::Malformed)
    );
}

/// A CRL from `issuer` listing `serials`, valid until `next_update` (year).
fn crl_file(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    serials: &[&[u8]],
    next_update_year: i32,
) -> std::path::PathBuf {
    use rcgen::{
        CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams,
        SerialNumber,
    };
    let params = CertificateRevocationListParams {
        this_update: date_time_ymd(2020, 1, 1),
        next_update: date_time_ymd(next_update_year, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(s),
                revocation_time: date_time_ymd(2024, 1, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(issuer).unwrap();
    let path = std::env::temp_dir().join(format!(
        "trustpool-crl-{}-{}.pem",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::write(&path, crl.pem().unwrap()).unwrap();
    path
}

fn serial(der: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::FromDer as _;
    x509_parser::certificate::X509Certificate::from_der(der)
        .unwrap()
        .1
        .raw_serial()
        .to_vec()
}

#[test]
fn a_revoked_ek_certificate_is_refused() {
    let root = ca("EK root", true);
    let ek = ek_cert(&root, Some(TCG_EK_EKU.to_vec()), false);
    let other = ek_cert(&root, Some(TCG_EK_EKU.to_vec()), false);
    let crl = crl_file(&root, &[&serial(&ek.der)], 2099);
    let with_crl = store(&[&root], false).with_crls(&[crl]).unwrap();
    assert_eq!(
        with_crl.validate(&ek.der, &ek.public, NOW),
        Err(EkCertError::Revoked)
    );
    assert_eq!(
        with_crl.validate(&other.der, &other.public, NOW),
        Ok(EkCaKind::Manufacturer),
        "only the listed serial is refused"
    );
}

#[test]
fn an_out_of_date_crl_refuses_until_refreshed() {
    let root = ca("EK root", true);
    let ek = ek_cert(&root, Some(TCG_EK_EKU.to_vec()), false);
    let stale = crl_file(&root, &[], 2021);
    assert_eq!(
        store(&[&root], false)
            .with_crls(&[stale])
            .unwrap()
            .validate(&ek.der, &ek.public, NOW),
        Err(EkCertError::CrlExpired)
    );
}

#[test]
fn a_crl_not_signed_by_the_issuer_is_ignored() {
    let root = ca("EK root", true);
    let forger = ca("EK root", true);
    let ek = ek_cert(&root, Some(TCG_EK_EKU.to_vec()), false);
    let forged = crl_file(&forger, &[&serial(&ek.der)], 2099);
    assert_eq!(
        store(&[&root], false)
            .with_crls(&[forged])
            .unwrap()
            .validate(&ek.der, &ek.public, NOW),
        Ok(EkCaKind::Manufacturer)
    );
    let garbage = std::env::temp_dir().join(format!("trustpool-crl-bad-{}", rand_suffix()));
    std::fs::write(&garbage, b"not a CRL").unwrap();
    assert!(
        store(&[&root], false).with_crls(&[garbage]).is_err(),
        "unusable CRL files fail at start"
    );
}

/// An EK certificate revoked after its host enrolled (a refreshed CRL file): the hourly
/// re-check re-reads the CRLs, and the host is untrusted at its next challenge, naming the
/// revocation (before: CRLs were read once at start and checked only at enrollment).
#[tokio::test(flavor = "multi_thread")]
async fn a_host_whose_ek_certificate_is_revoked_later_becomes_untrusted() {
    let dir = std::env::temp_dir().join(format!("trustpool-ekrecheck-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = ca("EK root", true);
    let ek = ek_cert(&root, None, false);
    let root_path = dir.join("ek-root.pem");
    std::fs::write(&root_path, root.pem()).unwrap();
    let crl_path = dir.join("ek.crl");
    std::fs::copy(crl_file(&root, &[], 2099), &crl_path).unwrap();
    let mut config = crate::fixtures::server_config(&dir);
    config.ek_ca = vec![root_path];
    config.ek_crl = vec![crl_path.clone()];
    let server = trustpool_attestation::start(config).await.unwrap();
    let service = &server.service;
    let mut record = crate::fixtures::host("a", "compute-1", &[]);
    record.ek_public = ek.public.to_tpm2b();
    record.ek_certificate = Some(ek.der.clone());
    service
        .store
        .enroll_host(&record, Some("ek-of-a"), None, None)
        .await
        .unwrap();
    service.refresh_cache().await.unwrap();
    assert_eq!(service.recheck_ek_certificates().await.unwrap(), 0);

    std::fs::copy(crl_file(&root, &[&serial(&ek.der)], 2099), &crl_path).unwrap();
    assert_eq!(service.recheck_ek_certificates().await.unwrap(), 1);
    let verdict = service.attest_now("test", "compute-1").await.unwrap();
    assert_eq!(verdict.level, trustpool_api::oat::TrustLevel::Untrusted);
    assert!(
        verdict.reasons.iter().any(|r| r.contains("revoked")),
        "{verdict:?}"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
