//! Prometheus metrics (text exposition format 0.0.4), kept in atomics: attestations by
//! result, attestation latency, hosts by trust level, challenge failures.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    trusted: AtomicU64,
    untrusted: AtomicU64,
    unknown: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
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
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
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
        let _ = writeln!(
            out,
            "# HELP trustpool_attestation_seconds Challenge, verification and appraisal of one host.\n# TYPE trustpool_attestation_seconds histogram"
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "trustpool_attestation_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "trustpool_attestation_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "trustpool_attestation_seconds_sum {}",
            Duration::from_micros(self.latency_micros.load(Ordering::Relaxed)).as_secs_f64()
        );
        let _ = writeln!(out, "trustpool_attestation_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP trustpool_hosts Enrolled hosts by current trust level.\n# TYPE trustpool_hosts gauge"
        );
        for (level, n) in hosts {
            let _ = writeln!(out, "trustpool_hosts{{trust_lvl=\"{level}\"}} {n}");
        }
        out
    }
}
