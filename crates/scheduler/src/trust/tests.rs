//! Nova's `test_trusted_filters.py` (pike-eol), all twelve cases, ported
//! (`../shared/reference/oat-nova.md` §1.7), plus the fail-closed behaviour Nova lacked.
//! The poller records every request and answers what the case says; the real HTTPS
//! client is tested against a real `PollHosts` endpoint in `tests/it/trust.rs`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};
use trustpool_api::oat::TrustLevel;
use trustpool_api::time::{parse_iso8601, rfc3339};
use trustpool_api::v1::TrustChange;

use super::*;
use crate::filters::{Filter, FilterContext, Ratios};
use crate::host_state::HostState;
use crate::request::{FlavorSpec, RequestSpec};

struct Recorder {
    answer: Mutex<Result<Value, String>>,
    calls: Mutex<Vec<Vec<String>>>,
}

impl Recorder {
    fn answering(answer: Value) -> Self {
        Self {
            answer: Mutex::new(Ok(answer)),
            calls: Mutex::new(Vec::new()),
        }
    }
    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

impl Poller for Recorder {
    async fn poll_hosts(&self, hosts: Vec<String>) -> Result<Vec<u8>, String> {
        self.calls.lock().unwrap().push(hosts);
        self.answer
            .lock()
            .unwrap()
            .clone()
            .map(|v| v.to_string().into_bytes())
    }
}

struct Clock(AtomicI64);

impl Clock {
    fn at(text: &str) -> Self {
        Self(AtomicI64::new(parse_iso8601(text).unwrap()))
    }
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    fn advance_secs(&self, s: i64) {
        self.0.fetch_add(s * 1000, Ordering::SeqCst);
    }
}

const TIMEOUT_S: i64 = 60;

fn spec(trust: Option<&str>) -> RequestSpec {
    let mut flavor = FlavorSpec {
        memory_mb: 1024,
        ..FlavorSpec::default()
    };
    if let Some(t) = trust {
        flavor
            .extra_specs
            .insert("trust:trusted_host".into(), t.into());
    }
    RequestSpec {
        flavor,
        num_instances: 1,
        ..RequestSpec::default()
    }
}

/// The filter as the scheduler runs it: prepare the cache, then `host_passes`.
async fn passes(
    cache: &TrustCache,
    poller: &Recorder,
    clock: &Clock,
    node: &str,
    spec: &RequestSpec,
) -> bool {
    let now = || clock.now();
    cache.prepare(spec, &[node], poller, &now).await;
    let ctx = FilterContext {
        ratios: Ratios::default(),
        now_ms: clock.now(),
        service_down_time_ms: 60_000,
        default_zone: "nova",
        trust_timeout_ms: cache.timeout_ms(),
    };
    let mut host = HostState::new(node, 2048, 10, 4);
    host.trust = cache.slot(node);
    Filter::Trusted.host_passes(&host, spec, &ctx)
}

fn one_host(name: &str, level: &str, vtime: &str) -> Value {
    json!({"hosts": [{"host_name": name, "trust_lvl": level, "vtime": vtime}]})
}

fn cache_with(nodes: &[&str]) -> TrustCache {
    let cache = TrustCache::new(TIMEOUT_S * 1000);
    cache.add_hosts(nodes.iter().copied());
    cache
}

const NOW: &str = "2026-11-26T12:00:00Z";

#[tokio::test]
async fn default_passes_without_a_request() {
    let (clock, poller, cache) = (
        Clock::at(NOW),
        Recorder::answering(json!({})),
        cache_with(&["node1"]),
    );
    assert!(passes(&cache, &poller, &clock, "node1", &spec(None)).await);
    assert!(passes(&cache, &poller, &clock, "node1", &spec(Some(""))).await);
    assert!(poller.calls().is_empty());
}

async fn level_vs_spec(level: &str, wanted: &str) -> (bool, Vec<Vec<String>>) {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node1", level, NOW));
    let cache = cache_with(&["node1"]);
    let ok = passes(&cache, &poller, &clock, "node1", &spec(Some(wanted))).await;
    (ok, poller.calls())
}

#[tokio::test]
async fn trusted_and_trusted_passes() {
    let (ok, calls) = level_vs_spec("trusted", "trusted").await;
    assert!(ok);
    assert_eq!(calls, vec![vec!["node1".to_owned()]]);
}

#[tokio::test]
async fn trusted_and_untrusted_fails() {
    assert!(!level_vs_spec("untrusted", "trusted").await.0);
}

#[tokio::test]
async fn untrusted_and_trusted_fails() {
    // The answer is about "node", not node1: node1 stays unknown and fails.
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node", "trusted", NOW));
    let cache = cache_with(&["node1"]);
    assert!(!passes(&cache, &poller, &clock, "node1", &spec(Some("untrusted"))).await);
    assert!(!passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
}

#[tokio::test]
async fn untrusted_and_untrusted_passes() {
    assert!(level_vs_spec("untrusted", "untrusted").await.0);
}

#[tokio::test]
async fn update_cache() {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node1", "trusted", NOW));
    let cache = cache_with(&["node1"]);
    let trusted = spec(Some("trusted"));
    assert!(passes(&cache, &poller, &clock, "node1", &trusted).await);
    assert_eq!(poller.calls().len(), 1);
    assert!(passes(&cache, &poller, &clock, "node1", &trusted).await);
    assert_eq!(poller.calls().len(), 1, "a fresh entry is reused");
    clock.advance_secs(TIMEOUT_S + 80);
    *poller.answer.lock().unwrap() = Ok(one_host("node1", "trusted", &rfc3339(clock.now())));
    assert!(passes(&cache, &poller, &clock, "node1", &trusted).await);
    assert_eq!(poller.calls().len(), 2, "an expired entry is re-polled");
}

#[tokio::test]
async fn update_cache_timezone() {
    let clock = Clock::at("2012-09-09T09:10:40Z");
    let poller = Recorder::answering(one_host("node1", "trusted", "2012-09-09T05:10:40-04:00"));
    let cache = cache_with(&["node1"]);
    let trusted = spec(Some("trusted"));
    assert!(passes(&cache, &poller, &clock, "node1", &trusted).await);
    assert!(passes(&cache, &poller, &clock, "node1", &trusted).await);
    assert_eq!(poller.calls().len(), 1);
    clock.advance_secs(TIMEOUT_S - 10);
    assert!(passes(&cache, &poller, &clock, "node1", &trusted).await);
    assert_eq!(poller.calls().len(), 1, "still valid at timeout - 10 s");
}

#[tokio::test]
async fn combine_hosts_in_one_request() {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node1", "trusted", NOW));
    let cache = cache_with(&["node1", "node2"]);
    let _ = passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await;
    let calls = poller.calls();
    assert_eq!(calls.len(), 1);
    let mut hosts = calls[0].clone();
    hosts.sort();
    assert_eq!(hosts, vec!["node1", "node2"]);
}

#[tokio::test]
async fn c_locale_vtime_passes_and_mmddyy_fails() {
    let clock = Clock::at("2012-02-14T09:02:48Z");
    let poller = Recorder::answering(json!({"hosts": [
        {"host_name": "host1", "trust_lvl": "trusted", "vtime": "Tue Feb 14 09:02:48 2012"},
        {"host_name": "host2", "trust_lvl": "trusted", "vtime": "02/14/12"},
    ]}));
    let cache = cache_with(&["host1", "host2"]);
    let trusted = spec(Some("trusted"));
    assert!(passes(&cache, &poller, &clock, "host1", &trusted).await);
    assert!(!passes(&cache, &poller, &clock, "host2", &trusted).await);
}

// Nova's AttestationServiceTestCase (cases 1–3: statuses 200/201/202/204 are success, 404
// is not, a non-JSON body is not a crash) is about the HTTP client: tests/it/trust.rs.

#[tokio::test]
async fn server_down_fails_closed_and_backs_off() {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(json!({}));
    *poller.answer.lock().unwrap() = Err("connection refused".into());
    let cache = cache_with(&["node1"]);
    for wanted in ["trusted", "untrusted", "unknown"] {
        assert!(!passes(&cache, &poller, &clock, "node1", &spec(Some(wanted))).await);
    }
    assert_eq!(
        poller.calls().len(),
        1,
        "no re-poll on every lookup while backing off"
    );
    assert_eq!(cache.last_error().as_deref(), Some("connection refused"));
    clock.advance_secs(2);
    *poller.answer.lock().unwrap() = Ok(one_host("node1", "trusted", &rfc3339(clock.now())));
    assert!(passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
    assert_eq!(poller.calls().len(), 2);
}

#[tokio::test]
async fn malformed_answers_are_errors_not_crashes() {
    for body in [
        json!("a string"),
        json!([1, 2]),
        json!({"hosts": {"node1": "trusted"}}),
        json!({}),
    ] {
        let clock = Clock::at(NOW);
        let poller = Recorder::answering(body.clone());
        let cache = cache_with(&["node1"]);
        assert!(
            !passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await,
            "{body}"
        );
        assert!(cache.last_error().is_some(), "{body}");
    }
    // Malformed entries leave their host unknown; good ones still count.
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(json!({"hosts": [
        "node1",
        {"host_name": "node1", "trust_lvl": "trusted"},
        {"host_name": "node1", "trust_lvl": "trusted", "vtime": null},
        {"host_name": "node1", "trust_lvl": 3, "vtime": NOW},
        {"host_name": "node2", "trust_lvl": "trusted", "vtime": NOW},
    ]}));
    let cache = cache_with(&["node1", "node2"]);
    assert!(!passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
    assert!(passes(&cache, &poller, &clock, "node2", &spec(Some("trusted"))).await);
}

#[tokio::test]
async fn future_vtime_cannot_stretch_the_cache() {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node1", "trusted", "2026-11-26T13:00:00Z"));
    let cache = cache_with(&["node1"]);
    assert!(passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
    clock.advance_secs(TIMEOUT_S + 1);
    *poller.answer.lock().unwrap() = Err("down".into());
    assert!(!passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
}

#[tokio::test]
async fn a_pushed_change_applies_at_once() {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node1", "trusted", NOW));
    let cache = cache_with(&["node1"]);
    assert!(passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
    cache.apply_change(
        &["node1".into()],
        TrustLevel::Untrusted,
        clock.now(),
        clock.now(),
    );
    assert!(!passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
    assert_eq!(poller.calls().len(), 1);
}

#[tokio::test]
async fn unknown_never_matches_and_the_trait_alias_reads_the_same_level() {
    assert!(!level_vs_spec("unknown", "unknown").await.0);
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node1", "untrusted", NOW));
    let cache = cache_with(&["node1"]);
    let mut req = spec(None);
    req.flavor
        .extra_specs
        .insert("trait:CUSTOM_TRUSTED_HOST".into(), "required".into());
    assert!(!passes(&cache, &poller, &clock, "node1", &req).await);
    req.flavor
        .extra_specs
        .insert("trait:CUSTOM_TRUSTED_HOST".into(), "forbidden".into());
    assert!(passes(&cache, &poller, &clock, "node1", &req).await);
}

// Issue 11: the cache holds the scheduler's own compute nodes and nothing else.

fn change(host: &str, aliases: &[&str], level: TrustLevel, vtime: &str) -> TrustChange {
    TrustChange {
        host_name: host.into(),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        trust_lvl: level,
        vtime: vtime.into(),
        reasons: Vec::new(),
    }
}

#[tokio::test]
async fn a_pushed_change_creates_no_slot_for_a_name_that_is_no_node() {
    let clock = Clock::at(NOW);
    let cache = cache_with(&["node1"]);
    cache.apply_change(
        &["node1".into(), "evil".into(), "node1.example".into()],
        TrustLevel::Trusted,
        clock.now(),
        clock.now(),
    );
    assert_eq!(cache.level("node1", clock.now()), Some(TrustLevel::Trusted));
    assert_eq!(cache.entry("evil"), None, "a change created a slot");
    assert_eq!(
        cache.entry("node1.example"),
        None,
        "a change created a slot"
    );
    // And so a later poll does not ask for them either.
    clock.advance_secs(TIMEOUT_S + 1);
    let poller = Recorder::answering(one_host("node1", "trusted", NOW));
    cache.refresh(&poller, &|| clock.now()).await;
    assert_eq!(poller.calls(), vec![vec!["node1".to_owned()]]);
}

#[tokio::test]
async fn a_pushed_change_with_an_unreadable_vtime_reads_unknown() {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(one_host("node1", "untrusted", NOW));
    let cache = cache_with(&["node1"]);
    for vtime in ["", "yesterday", "02/14/12", "2026-13-45T99:00:00Z"] {
        let written = cache.apply_stream_change(
            &change("node1", &[], TrustLevel::Trusted, vtime),
            clock.now(),
        );
        assert_eq!(written, vec!["node1".to_owned()]);
        assert_eq!(cache.level("node1", clock.now()), None, "{vtime:?}");
        assert_eq!(
            cache.current_level("node1", clock.now()),
            TrustLevel::Unknown
        );
    }
    // Nothing known: the next lookup polls, and the server's answer counts.
    assert!(!passes(&cache, &poller, &clock, "node1", &spec(Some("trusted"))).await);
    assert_eq!(poller.calls().len(), 1);
    // A readable vtime is applied to the node and its node-backed aliases only.
    let cache = cache_with(&["node1", "alias1"]);
    let written = cache.apply_stream_change(
        &change("node1", &["alias1", "other"], TrustLevel::Trusted, NOW),
        clock.now(),
    );
    assert_eq!(written, vec!["node1".to_owned(), "alias1".to_owned()]);
    assert_eq!(
        cache.level("alias1", clock.now()),
        Some(TrustLevel::Trusted)
    );
    assert_eq!(cache.entry("other"), None);
}

#[tokio::test]
async fn a_poll_asks_only_for_the_compute_nodes() {
    let clock = Clock::at(NOW);
    let poller = Recorder::answering(json!({"hosts": [
        {"host_name": "node1", "trust_lvl": "trusted", "vtime": NOW},
        {"host_name": "stranger", "trust_lvl": "trusted", "vtime": NOW},
    ]}));
    let cache = cache_with(&["node1"]);
    let now = || clock.now();
    // A lookup naming something that is no compute node neither polls for it nor caches it.
    cache
        .ensure_fresh(&["node1", "stranger"], &poller, &now, 0)
        .await;
    assert_eq!(poller.calls(), vec![vec!["node1".to_owned()]]);
    assert_eq!(
        cache.entry("stranger"),
        None,
        "a poll answer created a slot"
    );
    assert!(
        !cache.ensure_fresh(&["stranger"], &poller, &now, 0).await,
        "a name without a node never makes a poll"
    );
    // A deleted node's slot goes: it is no longer polled for.
    cache.forget("node1");
    assert_eq!(cache.entry("node1"), None);
    assert!(!cache.refresh(&poller, &now).await, "no node, no poll");
    assert_eq!(poller.calls().len(), 1);
}

// Issue 12, item 6: the stream and the poll cannot race a fresher `untrusted` back.

#[tokio::test]
async fn an_older_poll_answer_does_not_overwrite_a_newer_pushed_untrusted() {
    let clock = Clock::at(NOW);
    let cache = cache_with(&["node1"]);
    // The server computes a poll answer (trusted, as of 12:00:00) …
    let answer = one_host("node1", "trusted", NOW).to_string();
    // … meanwhile node1's verdict turns untrusted at 12:00:01 and is pushed first.
    clock.advance_secs(1);
    let pushed = rfc3339(clock.now());
    let written = cache.apply_stream_change(
        &change("node1", &[], TrustLevel::Untrusted, &pushed),
        clock.now(),
    );
    assert_eq!(written, vec!["node1".to_owned()]);
    // The answer arrives after the change: it is older, and is not applied.
    clock.advance_secs(1);
    cache.apply_poll(answer.as_bytes(), clock.now()).unwrap();
    assert_eq!(
        cache.level("node1", clock.now()),
        Some(TrustLevel::Untrusted)
    );
    // Computed in the same second as the verdict: ambiguous, and trusted does not win.
    cache
        .apply_poll(
            one_host("node1", "trusted", &pushed).to_string().as_bytes(),
            clock.now(),
        )
        .unwrap();
    assert_eq!(
        cache.level("node1", clock.now()),
        Some(TrustLevel::Untrusted)
    );
    // An older pushed change does not either.
    let written =
        cache.apply_stream_change(&change("node1", &[], TrustLevel::Trusted, NOW), clock.now());
    assert!(written.is_empty(), "{written:?}");
    assert_eq!(
        cache.level("node1", clock.now()),
        Some(TrustLevel::Untrusted)
    );
    // An answer computed after the verdict is applied, whatever it says.
    cache
        .apply_poll(
            one_host("node1", "trusted", &rfc3339(clock.now()))
                .to_string()
                .as_bytes(),
            clock.now(),
        )
        .unwrap();
    assert_eq!(cache.level("node1", clock.now()), Some(TrustLevel::Trusted));
}

#[tokio::test]
async fn a_newer_pushed_change_replaces_an_older_poll_answer() {
    let clock = Clock::at(NOW);
    let cache = cache_with(&["node1"]);
    cache
        .apply_poll(
            one_host("node1", "trusted", NOW).to_string().as_bytes(),
            clock.now(),
        )
        .unwrap();
    clock.advance_secs(5);
    cache.apply_stream_change(
        &change("node1", &[], TrustLevel::Untrusted, &rfc3339(clock.now())),
        clock.now(),
    );
    assert_eq!(
        cache.level("node1", clock.now()),
        Some(TrustLevel::Untrusted)
    );
    // A node the answer leaves out is forgotten (unknown), newer entry or not.
    cache
        .apply_poll(json!({"hosts": []}).to_string().as_bytes(), clock.now())
        .unwrap();
    assert_eq!(cache.level("node1", clock.now()), None);
}
