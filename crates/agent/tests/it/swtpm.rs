//! The agent on a real swtpm.

use std::time::Duration;

use trustpool_api::agent::{ActivateRequest, QuoteRequest, QuoteResponse};
use trustpool_api::{Base64Bytes, Nonce, PcrSelection};
use trustpool_client::{AgentClient, ClientError, TlsOptions};
use trustpool_evidence::{
    AttestationKey, Challenge, Digest, EventLog, HashAlg, PcrIndex, PcrSelection as EvSelection,
    PcrValues, Public, QuoteEvidence, VerifiedQuote, VerifyOptions, make_credential, replay,
    verify_quote,
};

use crate::harness::Harness;

fn selection(json: &str) -> PcrSelection {
    serde_json::from_str(json).unwrap()
}

const SELECTION: &str = r#"[{"bank":"sha256","pcrs":[0,1,2,3,4,5,6,7,17,18,19]}]"#;

fn nonce(byte: u8) -> Nonce {
    Nonce::new(vec![byte; 32]).unwrap()
}

fn values(response: &QuoteResponse) -> PcrValues {
    let mut values = PcrValues::new();
    for bank in &response.pcrs {
        let alg = HashAlg::from_name(bank.bank.name()).unwrap();
        for (i, v) in &bank.values {
            values.insert(
                PcrIndex::new(*i).unwrap(),
                Digest::new(alg, v.as_slice()).unwrap(),
            );
        }
    }
    values
}

/// What the attestation server will do: verify with the AK from enrolment, replay the log.
fn verify(ak_public: &[u8], nonce: &Nonce, asked: &str, response: &QuoteResponse) -> VerifiedQuote {
    let ak = AttestationKey::new(
        Public::parse_tpm2b(ak_public).unwrap(),
        VerifyOptions::default(),
    )
    .unwrap();
    let asked = EvSelection::parse_list(asked).unwrap();
    let pcrs = values(response);
    let quote = verify_quote(
        &ak,
        &Challenge {
            nonce: nonce.as_bytes(),
            selection: &asked,
        },
        &QuoteEvidence {
            attest: response.attest.as_slice(),
            signature: response.signature.as_slice(),
            pcrs: &pcrs,
        },
    )
    .unwrap();
    let log = response.event_log.as_ref().expect("event log");
    replay(&EventLog::parse(log.as_slice()).unwrap())
        .unwrap()
        .verify_against(&quote)
        .unwrap();
    quote
}

async fn quote(client: &AgentClient, n: &Nonce, sel: &str) -> QuoteResponse {
    client
        .quote(&QuoteRequest {
            nonce: n.clone(),
            selection: selection(sel),
            include_event_log: true,
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn quotes_verify_and_replay_the_emulated_boot() {
    let h = Harness::new();
    let agent = h.start(Some("boot/known-good.toml")).await;
    let client = h.client(&agent);
    let info = client.info().await.unwrap();
    assert_eq!(info.host_name, "compute-test");
    assert!(info.tpm.software, "{:?}", info.tpm);
    assert!(
        info.ek_certificate.is_some(),
        "swtpm_setup put an EK certificate in NV"
    );
    let n = nonce(7);
    let response = quote(&client, &n, SELECTION).await;
    let verified = verify(
        info.ak_public.as_slice(),
        &n,
        "sha256:0,1,2,3,4,5,6,7,17,18,19",
        &response,
    );
    // A dynamic launch happened: PCR 17-19 are not the all-ones of a plain boot.
    let p17 = verified
        .pcrs()
        .get(HashAlg::Sha256, PcrIndex::new(17).unwrap())
        .unwrap();
    assert_ne!(p17, &Digest::ones(HashAlg::Sha256));

    // tpm2_checkquote accepts what the agent produced.
    let dir = h.tpm.dir().join("checkquote");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = trustpool_evidence::tpm2_tools::write_pcr_file(verified.selection(), verified.pcrs())
        .unwrap();
    for (file, bytes) in [
        ("ak.pub", info.ak_public.as_slice()),
        ("quote.msg", response.attest.as_slice()),
        ("quote.sig", response.signature.as_slice()),
        ("pcrs.bin", &raw[..]),
    ] {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    let out = std::process::Command::new("tpm2_checkquote")
        .current_dir(&dir)
        .args([
            "-u",
            "ak.pub",
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-f",
            "pcrs.bin",
            "-g",
            "sha256",
            "-q",
            &"07".repeat(32),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_bank_quotes_keep_the_requested_bank_order() {
    let h = Harness::new();
    let agent = h.start(Some("boot/known-good.toml")).await;
    let client = h.client(&agent);
    let info = client.info().await.unwrap();
    let sel = r#"[{"bank":"sha384","pcrs":[0,17]},{"bank":"sha256","pcrs":[0,4,18]},{"bank":"sha1","pcrs":[0]}]"#;
    let n = nonce(9);
    let response = quote(&client, &n, sel).await;
    verify(
        info.ak_public.as_slice(),
        &n,
        "sha384:0,17+sha256:0,4,18+sha1:0",
        &response,
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_survive_a_restart() {
    let h = Harness::new();
    let first = h.start(None).await;
    let before = h.client(&first).info().await.unwrap();
    first.stop().await;
    let second = h.start(None).await;
    let after = h.client(&second).info().await.unwrap();
    assert_eq!(before.ak_name, after.ak_name);
    assert_eq!(before.ek_public, after.ek_public);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_bios_changes_pcr0_and_its_log_still_replays() {
    let h = Harness::new();
    let good = h.start(Some("boot/known-good.toml")).await;
    let client = h.client(&good);
    let info = client.info().await.unwrap();
    let n = nonce(1);
    let good_quote = verify(
        info.ak_public.as_slice(),
        &n,
        "sha256:0,1,2,3,4,5,6,7,17,18,19",
        &quote(&client, &n, SELECTION).await,
    );
    good.stop().await;
    let bad = h.start(Some("boot/tampered-bios.toml")).await;
    let client = h.client(&bad);
    let bad_quote = verify(
        info.ak_public.as_slice(),
        &n,
        "sha256:0,1,2,3,4,5,6,7,17,18,19",
        &quote(&client, &n, SELECTION).await,
    );
    let pcr = |q: &VerifiedQuote, i: u8| {
        *q.pcrs()
            .get(HashAlg::Sha256, PcrIndex::new(i).unwrap())
            .unwrap()
    };
    assert_ne!(pcr(&good_quote, 0), pcr(&bad_quote, 0), "PCR 0 must differ");
    for i in [1, 2, 3, 4, 5, 6, 7, 17, 18, 19] {
        assert_eq!(
            pcr(&good_quote, i),
            pcr(&bad_quote, i),
            "PCR {i} must not differ"
        );
    }
    // The emulated boot is a reboot: the TPM's reset count went up.
    assert!(bad_quote.clock_info().reset_count > good_quote.clock_info().reset_count);
    bad.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_a_4xx_and_the_agent_keeps_working() {
    let h = Harness::new();
    let agent = h.start(Some("boot/known-good.toml")).await;
    let client = h.client(&agent);
    let url = format!("https://127.0.0.1:{}/v1/quote", agent.address.port());
    let pki = h.dir.join("pki");
    let identity = reqwest_identity(&pki);
    let raw = raw_client(&h, identity);
    for (body, want) in [
        (
            r#"{"nonce":"00","selection":[{"bank":"sha256","pcrs":[0]}]}"#,
            422,
        ),
        (
            r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"sha256","pcrs":[24]}]}"#,
            422,
        ),
        (
            r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"sha512","pcrs":[0]}]}"#,
            400,
        ),
        ("{not json", 400),
    ] {
        let response = raw
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), want, "{body}");
        let error: trustpool_api::ErrorBody = response.json().await.unwrap();
        assert!(!error.message.is_empty());
    }
    let huge = format!(r#"{{"nonce":"{}","selection":[]}}"#, "00".repeat(20_000));
    let response = raw
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // Still answering.
    quote(&client, &nonce(3), SELECTION).await;
    agent.stop().await;
}

fn reqwest_identity(pki: &std::path::Path) -> trustpool_client::Identity {
    trustpool_client::Identity {
        cert_chain_pem: std::fs::read_to_string(pki.join("server.crt")).unwrap(),
        key_pem: std::fs::read_to_string(pki.join("server.key")).unwrap(),
    }
}

fn raw_client(h: &Harness, identity: trustpool_client::Identity) -> reqwest::Client {
    let config = trustpool_client::tls::client_config(&TlsOptions {
        ca_pem: Some(h.pki.ca_pem()),
        identity: Some(identity),
    })
    .unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_quotes_leak_no_handles() {
    let h = Harness::new();
    let agent = h.start(None).await;
    let client = h.client(&agent);
    let before = agent.tpm.transient_objects().await.unwrap();
    assert_eq!(before, 1, "only the AK is loaded");
    for i in 0..200u32 {
        let n = Nonce::new(i.to_be_bytes().repeat(8)).unwrap();
        client
            .quote(&QuoteRequest {
                nonce: n,
                selection: selection(SELECTION),
                include_event_log: false,
            })
            .await
            .unwrap();
    }
    assert_eq!(agent.tpm.transient_objects().await.unwrap(), before);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn activation_recovers_only_credentials_for_this_ak() {
    let h = Harness::new();
    let agent = h.start(None).await;
    let client = h.client(&agent);
    let info = client.info().await.unwrap();
    let ek = Public::parse_tpm2b(info.ek_public.as_slice()).unwrap();
    let secret = b"0123456789abcdef0123456789abcdef";
    let credential = make_credential(&ek, info.ak_name.as_slice(), secret).unwrap();
    let request = ActivateRequest {
        id_object: Base64Bytes(credential.id_object),
        encrypted_secret: Base64Bytes(credential.encrypted_secret),
    };
    assert_eq!(
        client.activate(&request).await.unwrap().secret.as_slice(),
        secret
    );
    let mut other_name = info.ak_name.as_slice().to_vec();
    *other_name.last_mut().unwrap() ^= 1;
    let wrong = make_credential(&ek, &other_name, secret).unwrap();
    let err = client
        .activate(&ActivateRequest {
            id_object: Base64Bytes(wrong.id_object),
            encrypted_secret: Base64Bytes(wrong.encrypted_secret),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 422, .. }),
        "{err}"
    );
    // Sessions and the EK were flushed after both.
    assert_eq!(agent.tpm.transient_objects().await.unwrap(), 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_without_a_certificate_from_the_ca_are_refused() {
    let h = Harness::new();
    let agent = h.start(None).await;
    let anonymous = AgentClient::new(
        &format!("https://127.0.0.1:{}", agent.address.port()),
        &TlsOptions {
            ca_pem: Some(h.pki.ca_pem()),
            identity: None,
        },
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(
        anonymous.info().await,
        Err(ClientError::Connect { .. })
    ));
    let other = trustpool_testkit::pki::TestPki::new(&h.dir.join("other-pki"), "some other CA");
    let stranger = other.issue("stranger", &["stranger.test"]);
    let tls = TlsOptions {
        ca_pem: Some(h.pki.ca_pem()),
        identity: Some(trustpool_client::Identity {
            cert_chain_pem: stranger.cert_pem(),
            key_pem: stranger.key_pem(),
        }),
    };
    let stranger_client = AgentClient::new(
        &format!("https://127.0.0.1:{}", agent.address.port()),
        &tls,
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(
        stranger_client.info().await,
        Err(ClientError::Connect { .. })
    ));
    assert!(h.client(&agent).info().await.is_ok());
    agent.stop().await;
}

/// Another agent of the same pool holds a certificate from the same CA. Even one that is
/// also a client certificate (as every certificate of the old shared-CA layout was) gets
/// nothing: not `/v1/info`, not a quote, not an activation — only the attestation server's
/// pinned key is served. Before this, it could activate any agent's credential and enroll
/// that agent's TPM under a name of its choice.
#[tokio::test(flavor = "multi_thread")]
async fn another_agents_certificate_from_the_same_ca_is_refused_everywhere() {
    let h = Harness::new();
    let _ = h.pki.issue("other-agent", &["127.0.0.1"]);
    let _ = h.pki.issue_server("server-only-agent", &["127.0.0.1"]);
    let agent = h.start(None).await;
    let server = h.client(&agent);
    let info = server.info().await.unwrap();
    let ek = Public::parse_tpm2b(info.ek_public.as_slice()).unwrap();
    let credential = make_credential(&ek, info.ak_name.as_slice(), &[7u8; 32]).unwrap();
    let activate = ActivateRequest {
        id_object: Base64Bytes(credential.id_object),
        encrypted_secret: Base64Bytes(credential.encrypted_secret),
    };
    let quote = QuoteRequest {
        nonce: nonce(3),
        selection: selection(SELECTION),
        include_event_log: false,
    };
    for stem in ["other-agent", "server-only-agent"] {
        let other = h.client_as(&agent, stem);
        let i = other.info().await.map(|_| ());
        assert!(
            matches!(i, Err(ClientError::Connect { .. })),
            "{stem} /v1/info: {i:?}"
        );
        let q = other.quote(&quote).await.map(|_| ());
        assert!(
            matches!(q, Err(ClientError::Connect { .. })),
            "{stem} /v1/quote: {q:?}"
        );
        let a = other.activate(&activate).await.map(|_| ());
        assert!(
            matches!(a, Err(ClientError::Connect { .. })),
            "{stem} /v1/activate: {a:?}"
        );
    }
    // The server's own certificate still works, for all three.
    assert_eq!(
        server.activate(&activate).await.unwrap().secret.as_slice(),
        &[7u8; 32]
    );
    assert!(server.quote(&quote).await.is_ok());
    agent.stop().await;
}
