//! A token bucket: registrations and activation proofs cost the server a credential (RSA-OAEP
//! or ECDH) and a database write each, so a flood of them is refused early (429) instead of
//! starving the challenger.

use std::sync::Mutex;
use std::time::Instant;

/// `rate` tokens per second, at most `burst` saved.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket.
    #[must_use]
    pub fn new(rate: f64, burst: f64) -> Self {
        Self::new_at(rate, burst, Instant::now())
    }

    fn new_at(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            state: Mutex::new((burst, now)),
        }
    }

    /// When a token was last taken or refused.
    fn last_use(&self) -> Option<Instant> {
        self.state.lock().ok().map(|s| s.1)
    }

    /// Takes a token if one is there.
    pub fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let (tokens, last) = *state;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate)
            .min(self.burst);
        if refilled >= 1.0 {
            *state = (refilled - 1.0, now);
            true
        } else {
            *state = (refilled, now);
            false
        }
    }
}

/// Most sources tracked at once; past it, sources idle long enough to have a full bucket
/// again are forgotten (they lose nothing), and if none is, the map starts afresh.
const MAX_SOURCES: usize = 10_000;

/// One bucket per client address, so one client cannot spend the server-wide budget of
/// everyone's enrollments.
#[derive(Debug)]
pub struct PerSource {
    rate: f64,
    burst: f64,
    buckets: Mutex<std::collections::HashMap<std::net::IpAddr, Bucket>>,
}

impl PerSource {
    /// `rate` per second per address, at most `burst` saved.
    #[must_use]
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `source` if it has one.
    pub fn try_take(&self, source: std::net::IpAddr) -> bool {
        self.try_take_at(source, Instant::now())
    }

    fn try_take_at(&self, source: std::net::IpAddr, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&source) {
            let full_after = std::time::Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, b| {
                b.last_use()
                    .is_some_and(|t| now.saturating_duration_since(t) < full_after)
            });
            if buckets.len() >= MAX_SOURCES {
                buckets.clear();
            }
        }
        buckets
            .entry(source)
            .or_insert_with(|| Bucket::new_at(self.rate, self.burst, now))
            .try_take_at(now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Bucket, PerSource};

    #[test]
    fn each_source_has_its_own_bucket() {
        let p = PerSource::new(1.0, 2.0);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = std::time::Instant::now();
        assert!(p.try_take_at(a, t0) && p.try_take_at(a, t0));
        assert!(!p.try_take_at(a, t0), "a spent its burst");
        assert!(p.try_take_at(b, t0), "b is not starved by a");
        assert!(p.try_take_at(a, t0 + Duration::from_secs(1)), "a refills");
    }

    #[test]
    fn the_map_of_sources_is_bounded() {
        let p = PerSource::new(1.0, 1.0);
        let t0 = std::time::Instant::now();
        for i in 0..(super::MAX_SOURCES as u32 + 10) {
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = p.try_take_at(ip, t0);
        }
        assert!(p.buckets.lock().unwrap().len() <= super::MAX_SOURCES);
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let b = Bucket::new(2.0, 3.0);
        let t0 = std::time::Instant::now();
        assert!((0..3).all(|_| b.try_take_at(t0)), "the burst");
        assert!(!b.try_take_at(t0), "empty");
        assert!(!b.try_take_at(t0 + Duration::from_millis(400)), "0.8 token");
        assert!(
            b.try_take_at(t0 + Duration::from_millis(500)),
            "one token after 0.5 s"
        );
        assert!(!b.try_take_at(t0 + Duration::from_millis(500)));
        assert!(
            (0..3).all(|_| b.try_take_at(t0 + Duration::from_secs(60))),
            "capped at burst"
        );
        assert!(!b.try_take_at(t0 + Duration::from_secs(60)));
    }
}
