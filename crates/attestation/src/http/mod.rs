//! The HTTPS API: agent enrollment, OAT `PollHosts` (at the three prefixes Nova deployments
//! use), and the v1 API. Handlers are thin: extractors in, one service call, `ApiError` out.

mod auth;
mod dashboard;
mod error;

pub use error::ApiError;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;
use trustpool_api::enrollment::{
    ActivationProof, EnrollmentStatus, REGISTER_PATH, RegisterRequest, RegisterResponse,
};
use trustpool_api::oat::{POLL_HOSTS_PREFIXES, PollHostsRequest};
use trustpool_api::v1::{
    AddHost, AssignPolicies, EnrollmentGrant, HostView, Reenroll, SetAliases, VerdictView,
};
use trustpool_policy::PolicyDocument;

use crate::service::cache::rfc3339;
use crate::service::policies::ImportRequest;
use crate::service::{Service, ServiceError};
use crate::store::{HostRecord, VerdictRecord, now_ms};
use auth::{Admin, Reader};

/// Largest body: a registration with an EK certificate, or a policy document.
const MAX_BODY: usize = 1 << 20;

/// Largest PollHosts body: Nova sends every compute node it knows in one request, and the
/// parser takes up to `MAX_POLL_HOSTS` (100,000) names — 4.3 MB with 40-character FQDNs,
/// 25.6 MB at the longest name a host may have (253 bytes, quoted, comma).
const MAX_POLL_HOSTS_BODY: usize = 32 << 20;

/// JSON extractor whose rejections become [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// The router (tests call this).
pub fn router(service: Arc<Service>) -> Router {
    let mut router = Router::new()
        .route(REGISTER_PATH, post(register))
        .route("/v1/agents/{agent_id}/activation", post(activation))
        .route("/v1/hosts", get(list_hosts).post(add_host))
        .route("/v1/hosts/{name}/aliases", put(set_aliases))
        .route(
            "/v1/hosts/{name}/grant",
            axum::routing::delete(revoke_grant),
        )
        .route("/v1/hosts/{name}/clock-reset", post(reset_clock))
        .route("/v1/hosts/{name}", get(show_host).delete(delete_host))
        .route("/v1/hosts/{name}/verdicts", get(host_verdicts))
        .route("/v1/hosts/{name}/evidence", get(host_evidence))
        .route("/v1/hosts/{name}/policies", put(assign_policies))
        .route("/v1/hosts/{name}/approve", post(approve))
        .route("/v1/hosts/{name}/re-enroll", post(reenroll))
        .route("/v1/hosts/{name}/attest", post(attest_now))
        .route("/v1/policies", get(list_policies).post(create_policy))
        .route("/v1/policies/import", post(import_policy))
        .route("/v1/trust/stream", get(trust_stream))
        .route("/v1/hosts/{name}/ear", get(host_ear))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/audit", get(audit_log))
        .route("/metrics", get(metrics))
        .route("/dashboard", get(dashboard::dashboard));
    for prefix in POLL_HOSTS_PREFIXES {
        router = router.route(
            &format!("{prefix}/PollHosts"),
            post(poll_hosts).layer(DefaultBodyLimit::max(MAX_POLL_HOSTS_BODY)),
        );
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(60),
        ))
        .with_state(service)
}

/// The client's address, when the listener knows it (per-client rate limits).
struct Source(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

async fn register(
    State(s): State<Arc<Service>>,
    Source(source): Source,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.register(&req, source).await?)))
}

async fn activation(
    State(s): State<Arc<Service>>,
    Source(source): Source,
    Path(agent_id): Path<String>,
    ApiJson(proof): ApiJson<ActivationProof>,
) -> Result<Json<EnrollmentStatus>, ApiError> {
    Ok(Json(s.prove(&agent_id, &proof, source).await?))
}

/// OAT `PollHosts`: answered from the trust cache, never by attesting inline (Nova's client
/// has no timeout). One entry per requested name, echoed unchanged; `vtime` = now.
async fn poll_hosts(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    if let Some(blob) = &s.config.poll_hosts_auth_blob {
        let sent = headers
            .get("x-auth-blob")
            .or_else(|| headers.get("auth_blob"))
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if verify_slices_are_equal(sent, blob.0.as_bytes()).is_err() {
            return Err(ApiError::Unauthorized("x-auth-blob does not match"));
        }
    }
    // Read only once the caller is known: an unauthenticated peer never makes the server
    // buffer a 32 MiB body.
    let body = axum::body::to_bytes(body, MAX_POLL_HOSTS_BODY)
        .await
        .map_err(|_| ApiError::TooLarge("PollHosts body over 32 MiB (100,000 names)"))?;
    let started = std::time::Instant::now();
    let request: PollHostsRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Service(ServiceError::Rejected(format!("PollHosts body: {e}"))))?;
    let vtime = rfc3339(now_ms());
    let levels = s.cache.levels(&request.hosts, s.config.verdict_ttl);
    // `PollHostsResponse`'s shape, borrowed: no copy of the names or of `vtime` per host
    // (Nova sends every compute node it knows, 10,000 names is ordinary).
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        host_name: &'a str,
        trust_lvl: trustpool_api::oat::TrustLevel,
        vtime: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        hosts: Vec<Entry<'a>>,
    }
    let answer = Answer {
        hosts: request
            .hosts
            .iter()
            .zip(levels)
            .map(|(host_name, trust_lvl)| Entry {
                host_name,
                trust_lvl,
                vtime: &vtime,
            })
            .collect(),
    };
    let body = serde_json::to_vec(&answer)
        .map_err(|e| ApiError::Service(ServiceError::Rejected(format!("PollHosts answer: {e}"))))?;
    s.metrics
        .record_poll_hosts(request.hosts.len(), started.elapsed());
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

pub(super) async fn host_view(s: &Service, host: HostRecord) -> Result<HostView, ApiError> {
    let latest = s
        .store
        .verdict_history(&host.agent_id, 1)
        .await
        .map_err(ServiceError::from)?;
    Ok(view_of(s, host, latest.first()))
}

/// A host with its current verdict (`None`: never attested).
fn view_of(s: &Service, host: HostRecord, latest: Option<&VerdictRecord>) -> HostView {
    HostView {
        // By agent id: a pending host's name may resolve to another host (its short name).
        trust_lvl: s.cache.host_by_id(&host.agent_id).map_or(
            trustpool_api::oat::TrustLevel::Unknown,
            |h| {
                h.level_at(
                    now_ms(),
                    i64::try_from(s.config.verdict_ttl.as_millis()).unwrap_or(i64::MAX),
                )
            },
        ),
        vtime: latest.map(|v| rfc3339(v.until)),
        policy: latest.and_then(|v| v.policy.clone()),
        reasons: latest.map(|v| v.reasons.clone()).unwrap_or_default(),
        host_name: host.host_name,
        agent_id: host.agent_id,
        aliases: host.aliases,
        state: host.state.as_str().to_owned(),
        policies: host.policies,
        software_tpm: host.software_tpm,
        agent_url: host.agent_url,
    }
}

/// Every host with its current verdict, in two queries (not one per host).
pub(super) async fn host_views(s: &Service) -> Result<Vec<HostView>, ApiError> {
    let hosts = s.store.hosts().await.map_err(ServiceError::from)?;
    let latest: std::collections::HashMap<String, VerdictRecord> = s
        .store
        .latest_verdicts()
        .await
        .map_err(ServiceError::from)?
        .into_iter()
        .map(|v| (v.agent_id.clone(), v))
        .collect();
    Ok(hosts
        .into_iter()
        .map(|host| {
            let current = latest.get(&host.agent_id);
            view_of(s, host, current)
        })
        .collect())
}

async fn list_hosts(
    State(s): State<Arc<Service>>,
    _: Reader,
) -> Result<Json<Vec<HostView>>, ApiError> {
    Ok(Json(host_views(&s).await?))
}

async fn show_host(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(name): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    let host = s.host_named(&name).await?;
    Ok(Json(host_view(&s, host).await?))
}

fn verdict_view(v: VerdictRecord) -> VerdictView {
    VerdictView {
        at: rfc3339(v.at),
        until: Some(rfc3339(v.until)),
        repeats: v.repeats,
        trust_lvl: v.level,
        policy: v.policy,
        reasons: v.reasons,
        reset_count: v.reset_count,
    }
}

async fn host_verdicts(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(name): Path<String>,
) -> Result<Json<Vec<VerdictView>>, ApiError> {
    let host = s.host_named(&name).await?;
    Ok(Json(
        s.store
            .verdict_history(&host.agent_id, 100)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .map(verdict_view)
            .collect(),
    ))
}

/// The latest verified evidence: PCRs next to each accepted policy, the decoded log.
async fn host_evidence(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(s.host_evidence(&name).await?))
}

async fn delete_host(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_host(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn assign_policies(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AssignPolicies>,
) -> Result<Json<HostView>, ApiError> {
    let host = s.assign_policies(&actor, &name, body.policies).await?;
    Ok(Json(host_view(&s, host).await?))
}

async fn approve(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    let host = s.approve(&actor, &name).await?;
    Ok(Json(host_view(&s, host).await?))
}

/// Lets an enrolled host enroll again (another TPM, named by its EK certificate; or the
/// same TPM with a new AK, URL or certificate): the credential, shown once.
async fn reenroll(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<EnrollmentGrant>), ApiError> {
    // An empty body: the same TPM, the default window.
    let req: Reenroll = if body.iter().all(u8::is_ascii_whitespace) {
        Reenroll::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ServiceError::BadRequest(format!("body: {e}")))?
    };
    Ok((
        StatusCode::CREATED,
        Json(s.allow_reenroll(&actor, &name, &req).await?),
    ))
}

/// Lets a new host enroll under a name: the credential, shown once.
async fn add_host(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    ApiJson(req): ApiJson<AddHost>,
) -> Result<(StatusCode, Json<EnrollmentGrant>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.add_host(&actor, &req).await?)))
}

/// Accepts a host's TPM clock rollback.
async fn reset_clock(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    let host = s.reset_clock(&actor, &name).await?;
    Ok(Json(host_view(&s, host).await?))
}

/// Revokes the enrollment credential of a name.
async fn revoke_grant(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.revoke_grant(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a host's aliases.
async fn set_aliases(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SetAliases>,
) -> Result<Json<HostView>, ApiError> {
    let host = s.set_aliases(&actor, &name, body.aliases).await?;
    Ok(Json(host_view(&s, host).await?))
}

async fn attest_now(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> Result<Json<VerdictView>, ApiError> {
    Ok(Json(verdict_view(s.attest_now(&actor, &name).await?)))
}

async fn list_policies(
    State(s): State<Arc<Service>>,
    _: Reader,
) -> Result<Json<Vec<PolicyDocument>>, ApiError> {
    Ok(Json(
        s.policies()
            .await?
            .iter()
            .map(PolicyDocument::from)
            .collect(),
    ))
}

async fn create_policy(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    ApiJson(doc): ApiJson<PolicyDocument>,
) -> Result<(StatusCode, Json<PolicyDocument>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_policy(&actor, doc).await?),
    ))
}

async fn import_policy(
    State(s): State<Arc<Service>>,
    Admin(actor): Admin,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<Json<PolicyDocument>, ApiError> {
    Ok(Json(s.import_from_host(&actor, &req).await?))
}

/// Server-sent events: the current level of every host, then every change, as `trust`
/// events (JSON `TrustChange`), with keep-alive comments. The scheduler follows it so it
/// never waits for a cache to expire to exclude a host.
async fn trust_stream(
    State(s): State<Arc<Service>>,
    _: Reader,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt as _;
    // Subscribed before the snapshot is taken: a change in between is sent twice rather
    // than lost.
    let receiver = s.changes.subscribe();
    let snapshot = s.cache.snapshot();
    let event = |change: &trustpool_api::v1::TrustChange| {
        Event::default()
            .event("trust")
            .json_data(change)
            .unwrap_or_else(|_| Event::default().comment("unencodable"))
    };
    let initial =
        futures_util::stream::iter(snapshot.iter().map(event).map(Ok).collect::<Vec<_>>());
    let live = futures_util::stream::unfold(receiver, move |mut rx| async move {
        let item = match rx.recv().await {
            Ok(change) => event(&change),
            // A slow subscriber missed events: tell it to re-read the host list.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Event::default()
                .event("resync")
                .data("missed changes; GET /v1/hosts"),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(item), rx))
    });
    Sse::new(initial.chain(live)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Prometheus metrics (aggregates only: no host names).
async fn metrics(
    State(s): State<Arc<Service>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let counts = s.cache.counts(s.config.verdict_ttl);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(&counts),
    )
}

/// The latest verdict of a host as a signed EAR (`application/jwt`).
async fn host_ear(
    State(s): State<Arc<Service>>,
    _: Reader,
    Path(name): Path<String>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let host = s.host_named(&name).await?;
    let latest = s
        .store
        .verdict_history(&host.agent_id, 1)
        .await
        .map_err(ServiceError::from)?;
    let verdict = latest
        .first()
        .ok_or_else(|| ServiceError::NotFound(format!("a verdict for {name}")))?;
    let ttl = i64::try_from(s.config.verdict_ttl.as_millis()).unwrap_or(i64::MAX);
    let jwt = s
        .signer
        .ear(&host.host_name, verdict, host.software_tpm, ttl)
        .ok_or_else(|| ServiceError::Rejected("signing failed".to_owned()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/jwt")], jwt))
}

/// The key that verifies EAR results.
async fn jwks(State(s): State<Arc<Service>>) -> Json<serde_json::Value> {
    Json(s.signer.jwks())
}

/// The OpenAPI document of this API.
async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

/// The audit log, newest first (admin only).
async fn audit_log(
    State(s): State<Arc<Service>>,
    _: Admin,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let entries = s.store.audit_log(1000).await.map_err(ServiceError::from)?;
    Ok(Json(
        entries
            .into_iter()
            .map(|(at, actor, action, subject, detail)| serde_json::json!({"at": rfc3339(at), "actor": actor, "action": action, "subject": subject, "detail": detail}))
            .collect(),
    ))
}
