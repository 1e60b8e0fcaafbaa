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
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Bucket;

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
