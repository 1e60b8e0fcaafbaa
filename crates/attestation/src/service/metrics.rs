//! Prometheus metrics (text exposition format 0.0.4), kept in atomics: attestations by
//! result, attestation latency, challenge failures, hosts by trust level, the challenger's
//! budgets (hosts by standing, challenges in flight per budget), and PollHosts (requests,
//! names asked for, time to answer: is the attestation server slowing Nova's scheduler?).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    micros: AtomicU64,
}

impl Histogram {
    fn record(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            Duration::from_micros(self.micros.load(Ordering::Relaxed)).as_secs_f64()
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// What the challenger is doing now (gauges it sets after every pass).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChallengerGauges {
    /// Hosts whose agents answered their last challenge (main budget).
    pub answering: u64,
    /// Hosts not known to answer yet: new to this server, or last verdict `unknown`
    /// (failing budget, not backing off).
    pub unproven: u64,
    /// Hosts whose agents did not answer their last challenge, backing off (failing budget).
    pub backing_off: u64,
    /// Challenges in flight on the main budget.
    pub in_flight_main: u64,
    /// Challenges in flight on the failing budget.
    pub in_flight_failing: u64,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    trusted: AtomicU64,
    untrusted: AtomicU64,
    unknown: AtomicU64,
    attestation: Histogram,
    poll_hosts: Histogram,
    polled_names: AtomicU64,
    answering: AtomicU64,
    unproven: AtomicU64,
    backing_off: AtomicU64,
    in_flight_main: AtomicU64,
    in_flight_failing: AtomicU64,
}

impl Metrics {
    /// Records one attestation.
    pub fn record(&self, level: trustpool_api::oat::TrustLevel, elapsed: Duration) {
        use trustpool_api::oat::TrustLevel;
        let counter = match level {
            TrustLevel::Trusted => &self.trusted,
            TrustLevel::Untrusted => &self.untrusted,
            TrustLevel::Unknown => &self.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.attestation.record(elapsed);
    }

    /// Records one PollHosts answer: how many names it had and how long it took.
    pub fn record_poll_hosts(&self, names: usize, elapsed: Duration) {
        self.polled_names
            .fetch_add(u64::try_from(names).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.poll_hosts.record(elapsed);
    }

    /// Sets the challenger's gauges.
    pub fn set_challenger(&self, gauges: ChallengerGauges) {
        self.answering.store(gauges.answering, Ordering::Relaxed);
        self.unproven.store(gauges.unproven, Ordering::Relaxed);
        self.backing_off
            .store(gauges.backing_off, Ordering::Relaxed);
        self.in_flight_main
            .store(gauges.in_flight_main, Ordering::Relaxed);
        self.in_flight_failing
            .store(gauges.in_flight_failing, Ordering::Relaxed);
    }

    /// The exposition text; `hosts` is (level, count) from the trust cache.
    #[must_use]
    pub fn render(&self, hosts: &[(&str, usize)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP trustpool_attestations_total Attestations by result.\n# TYPE trustpool_attestations_total counter"
        );
        for (result, counter) in [
            ("trusted", &self.trusted),
            ("untrusted", &self.untrusted),
            ("unknown", &self.unknown),
        ] {
            let _ = writeln!(
                out,
                "trustpool_attestations_total{{result=\"{result}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP trustpool_challenge_failures_total Challenges the agent did not answer (verdict unknown).\n# TYPE trustpool_challenge_failures_total counter"
        );
        let _ = writeln!(
            out,
            "trustpool_challenge_failures_total {}",
            self.unknown.load(Ordering::Relaxed)
        );
        self.attestation.render(
            &mut out,
            "trustpool_attestation_seconds",
            "Challenge, verification and appraisal of one host.",
        );
        let _ = writeln!(
            out,
            "# HELP trustpool_hosts Enrolled hosts by current trust level.\n# TYPE trustpool_hosts gauge"
        );
        for (level, n) in hosts {
            let _ = writeln!(out, "trustpool_hosts{{trust_lvl=\"{level}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP trustpool_challenger_hosts Enrolled hosts by challenge standing: answering (main budget), unproven and backing_off (failing budget).\n# TYPE trustpool_challenger_hosts gauge"
        );
        for (standing, gauge) in [
            ("answering", &self.answering),
            ("unproven", &self.unproven),
            ("backing_off", &self.backing_off),
        ] {
            let _ = writeln!(
                out,
                "trustpool_challenger_hosts{{standing=\"{standing}\"}} {}",
                gauge.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP trustpool_challenges_in_flight Challenges running now, by concurrency budget.\n# TYPE trustpool_challenges_in_flight gauge"
        );
        for (budget, gauge) in [
            ("main", &self.in_flight_main),
            ("failing", &self.in_flight_failing),
        ] {
            let _ = writeln!(
                out,
                "trustpool_challenges_in_flight{{budget=\"{budget}\"}} {}",
                gauge.load(Ordering::Relaxed)
            );
        }
        self.poll_hosts.render(
            &mut out,
            "trustpool_poll_hosts_seconds",
            "Time to answer one OAT PollHosts request (parse, look up, serialise).",
        );
        let _ = writeln!(
            out,
            "# HELP trustpool_poll_hosts_names_total Host names asked for in PollHosts requests.\n# TYPE trustpool_poll_hosts_names_total counter\ntrustpool_poll_hosts_names_total {}",
            self.polled_names.load(Ordering::Relaxed)
        );
        out
    }
}
