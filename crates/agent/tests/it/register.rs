//! The agent's half of enrollment, against a minimal registration endpoint written here
//! with the real crypto (`trustpool-evidence`'s AK checks and `make_credential`); the
//! attestation server issue brings the real one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use trustpool_api::Base64Bytes;
use trustpool_api::enrollment::{
    ActivationProof, CredentialChallenge, EnrollmentState, EnrollmentStatus, RegisterRequest,
    RegisterResponse,
};
use trustpool_evidence::{AttestationKey, Public, VerifyOptions, make_credential};

use crate::harness::Harness;

#[derive(Default)]
struct Registry {
    pending: HashMap<String, Vec<u8>>,
    enrolled: Vec<String>,
    attempts: usize,
}

type Shared = Arc<Mutex<Registry>>;

async fn register(
    State(reg): State<Shared>,
    Json(req): Json<RegisterRequest>,
) -> Result<Json<RegisterResponse>, StatusCode> {
    let ek = Public::parse_tpm2b(req.ek_public.as_slice())
        .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    let ak = Public::parse_tpm2b(req.ak_public.as_slice())
        .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    let name = ak.name();
    AttestationKey::new(ak, VerifyOptions::default())
        .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    assert!(
        req.ek_certificate.is_some(),
        "swtpm's EK certificate is sent"
    );
    assert!(req.agent_certificate.contains("BEGIN CERTIFICATE"));
    let secret: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(name[5]))
        .collect();
    let credential =
        make_credential(&ek, &name, &secret).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    let agent_id: String = name.iter().map(|b| format!("{b:02x}")).collect();
    let mut r = reg.lock().unwrap();
    r.attempts += 1;
    r.pending.insert(agent_id.clone(), secret);
    Ok(Json(RegisterResponse {
        agent_id: agent_id.clone(),
        challenge: CredentialChallenge {
            challenge_id: format!("c-{agent_id}"),
            id_object: Base64Bytes(credential.id_object),
            encrypted_secret: Base64Bytes(credential.encrypted_secret),
        },
    }))
}

async fn activation(
    State(reg): State<Shared>,
    Path(id): Path<String>,
    Json(proof): Json<ActivationProof>,
) -> Result<Json<EnrollmentStatus>, StatusCode> {
    let mut r = reg.lock().unwrap();
    let secret = r.pending.remove(&id).ok_or(StatusCode::NOT_FOUND)?;
    if secret != proof.secret.as_slice() || proof.challenge_id != format!("c-{id}") {
        return Err(StatusCode::FORBIDDEN);
    }
    r.enrolled.push(id.clone());
    Ok(Json(EnrollmentStatus {
        agent_id: id,
        state: EnrollmentState::Enrolled,
    }))
}

async fn serve(h: &Harness, addr: SocketAddr, reg: Shared) -> axum_server::Handle<SocketAddr> {
    let pki = h.dir.join("pki");
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        pki.join("server.crt"),
        pki.join("server.key"),
    )
    .await
    .unwrap();
    let app = Router::new()
        .route("/v1/agents/register", post(register))
        .route("/v1/agents/{id}/activation", post(activation))
        .with_state(reg);
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(addr, tls).handle(handle.clone());
    tokio::spawn(server.serve(app.into_make_service()));
    handle.listening().await.unwrap();
    handle
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_registers_and_proves_its_ak_after_the_server_comes_up() {
    let h = Harness::new();
    let port = trustpool_testkit::ports::free_port();
    let extra = format!(
        "[server]\nurl = \"https://127.0.0.1:{port}\"\nca = \"{}\"\nretry_max_secs = 1\n",
        h.pki.ca_cert().display()
    );
    let agent = trustpool_agent::start(h.config(None, &extra))
        .await
        .unwrap();
    // The server is away for a while: the agent keeps retrying.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let registry: Shared = Arc::default();
    let server = serve(
        &h,
        SocketAddr::from(([127, 0, 0, 1], port)),
        registry.clone(),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if !registry.lock().unwrap().enrolled.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent did not enroll"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (enrolled, attempts) = {
        let r = registry.lock().unwrap();
        (r.enrolled.len(), r.attempts)
    };
    assert_eq!(enrolled, 1);
    assert_eq!(
        attempts, 1,
        "one successful registration once the server was up"
    );
    server.shutdown();
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_reports_its_resources_to_the_scheduler() {
    use trustpool_api::compute::HostReport;
    let h = Harness::new();
    type Reports = Arc<Mutex<Vec<(Option<String>, HostReport)>>>;
    /// What the scheduler saw, and the one token it accepts.
    type Scheduler = (Reports, Arc<Mutex<String>>);
    let reports: Reports = Arc::default();
    let accepted = Arc::new(Mutex::new("compute-secret".to_owned()));
    let pki = h.dir.join("pki");
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        pki.join("server.crt"),
        pki.join("server.key"),
    )
    .await
    .unwrap();
    let app = Router::new()
        .route(
            trustpool_api::compute::HOST_REPORT_PATH,
            post(
                |State((r, accepted)): State<Scheduler>,
                 headers: axum::http::HeaderMap,
                 Json(report): Json<HostReport>| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let ok = auth.as_deref()
                        == Some(format!("Bearer {}", accepted.lock().unwrap()).as_str());
                    r.lock().unwrap().push((auth, report));
                    if ok {
                        (StatusCode::OK, Json(serde_json::json!({})))
                    } else {
                        (StatusCode::UNAUTHORIZED, Json(serde_json::json!({})))
                    }
                },
            ),
        )
        .with_state((reports.clone(), accepted.clone()));
    let handle = axum_server::Handle::new();
    tokio::spawn(
        axum_server::bind_rustls(SocketAddr::from(([127, 0, 0, 1], 0)), tls)
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );
    let addr = handle.listening().await.unwrap();
    let token = h.dir.join("compute.token");
    std::fs::write(&token, "compute-secret\n").unwrap();
    let extra = format!(
        "[scheduler]\nurl = \"https://127.0.0.1:{}\"\nca = \"{}\"\ntoken_file = \"{}\"\nheartbeat_secs = 1\n[resources]\navailability_zone = \"az-trusted\"\nvcpus = 48\n",
        addr.port(),
        h.pki.ca_cert().display(),
        token.display()
    );
    let agent = trustpool_agent::start(h.config(None, &extra))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reports.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no heartbeats");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (auth, first) = reports.lock().unwrap()[0].clone();
    assert_eq!(auth.as_deref(), Some("Bearer compute-secret"));
    assert_eq!(first.host_name, "compute-test");
    assert_eq!(first.availability_zone, "az-trusted");
    assert_eq!(first.vcpus, 48, "config overrides the OS");
    assert!(first.memory_mb > 0 && first.local_gb > 0, "{first:?}");
    // The token is rotated: the scheduler refuses the old one (401), the agent reads the
    // file again and the next heartbeat carries the new one.
    std::fs::write(&token, "compute-secret-2\n").unwrap();
    *accepted.lock().unwrap() = "compute-secret-2".to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !reports
        .lock()
        .unwrap()
        .iter()
        .any(|(auth, _)| auth.as_deref() == Some("Bearer compute-secret-2"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated token was never sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.shutdown();
    agent.stop().await;
}
