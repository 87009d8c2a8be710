//! Reconnect delays: capped exponential backoff with jitter, reset once data flows again.
//!
//! Attempt *n* (from 0) waits a delay drawn uniformly from `[d/2, d]` where
//! `d = min(initial × 2ⁿ, max)` ("equal jitter": never less than half the nominal delay, so
//! a fleet of clients restarting together spreads out without any of them hammering the feed).

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

/// Backoff state of one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: Pcg64,
}

impl Backoff {
    /// Starts at `initial`, doubling up to `max`; jitter seeded from the clock.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff::seeded(initial, max, super::now_ns())
    }

    /// Same, with a fixed jitter seed (tests).
    pub fn seeded(initial: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
            rng: Pcg64::seed_from_u64(seed),
        }
    }

    /// The nominal (un-jittered) delay of the next attempt.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before the next attempt, and counts the attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        let span = (d - half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.rng.random_range(0..=span)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Data flows again: the next failure starts from `initial`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    /// 1 s doubling to 60 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_within_their_jitter_band() {
        let mut b = Backoff::seeded(Duration::from_millis(500), Duration::from_secs(8), 1);
        let nominal = [500, 1000, 2000, 4000, 8000, 8000, 8000];
        for n in nominal {
            let d = b.next_delay();
            let n = Duration::from_millis(n);
            assert!(d >= n / 2 && d <= n, "{d:?} outside [{:?}, {n:?}]", n / 2);
        }
        b.reset();
        assert_eq!(b.nominal(), Duration::from_millis(500));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn jitter_spreads_delays_and_is_reproducible_from_a_seed() {
        let draw = |seed| {
            let mut b = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(1), seed);
            (0..20).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        let d = draw(3);
        assert!(d.iter().any(|x| *x != d[0]), "no jitter: {d:?}");
    }

    #[test]
    fn a_huge_attempt_count_saturates_at_the_cap() {
        let mut b = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(30), 0);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.nominal(), Duration::from_secs(30));
    }
}
