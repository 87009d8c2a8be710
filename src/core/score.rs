//! Score and signal, PHYSICS.md §6: component scores, the weighted break score, confidence,
//! one trigger state machine per level (with hysteresis, on event time) and EWMA smoothers.

use super::barrier::BarrierState;
use super::config::Config;
use super::fuel::FuelEffect;
use super::tape::TapeReading;

/// The three component scores (0–100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Components {
    pub liquidity: f64,
    pub hedge: f64,
    pub tape: f64,
}

/// S_L by barrier state.
pub fn liquidity_score(state: BarrierState) -> f64 {
    match state {
        BarrierState::Vacuum => 100.0,
        BarrierState::Weak => 75.0,
        BarrierState::Consumed => 60.0,
        BarrierState::Neutral => 50.0,
        BarrierState::Wall | BarrierState::Absorption => 0.0,
    }
}

/// S_H by fuel effect.
pub fn hedge_score(effect: FuelEffect) -> f64 {
    match effect {
        FuelEffect::Amplify => 100.0,
        FuelEffect::Neutral => 50.0,
        FuelEffect::Dampen => 0.0,
    }
}

/// S_T: a sweep in the break direction scores 100; otherwise velocity and imbalance pointing
/// in the break direction score up to 25 each.
pub fn tape_score(tape: &TapeReading, velocity: f64, break_sign: i8, cfg: &Config) -> f64 {
    if tape.sweep.is_some_and(|s| s.direction == break_sign) {
        return 100.0;
    }
    let dir = break_sign as f64;
    let mut score = 0.0;
    if velocity * dir > 0.0 {
        score += 25.0 * (velocity.abs() / cfg.velocity_full_scale).min(1.0);
    }
    if tape.imbalance * dir > 0.0 {
        score += 25.0 * tape.imbalance.abs();
    }
    score.min(50.0)
}

/// `clamp(w_L·S_L + w_H·S_H + w_T·S_T, 0, 100)`.
pub fn break_score(c: &Components, cfg: &Config) -> f64 {
    (cfg.w_l * c.liquidity + cfg.w_h * c.hedge + cfg.w_t * c.tape).clamp(0.0, 100.0)
}

/// HIGH / MEDIUM / LOW from the mean of the component confidences.
pub fn confidence_label(barrier: f64, tape: f64, fuel: f64) -> &'static str {
    let mean = (barrier + tape + fuel) / 3.0;
    if mean >= 0.7 {
        "HIGH"
    } else if mean >= 0.4 {
        "MEDIUM"
    } else {
        "LOW"
    }
}

/// A held or published signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Break,
    Reject,
    Contested,
    Neutral,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Break => "BREAK",
            Signal::Reject => "REJECT",
            Signal::Contested => "CONTESTED",
            Signal::Neutral => "NEUTRAL",
        }
    }
}

/// What a trigger machine sees at one snap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TriggerInput {
    pub now: u64,
    pub score: f64,
    pub distance: f64,
    pub barrier: BarrierState,
    /// Near-level buy + sell volume.
    pub near_volume: f64,
}

/// The trigger state machine of one level.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Trigger {
    held: Option<Signal>,
    high_since: Option<u64>,
    low_since: Option<u64>,
}

impl Trigger {
    /// Steps 2–5 of PHYSICS.md §6 (the caller resets the machine on a direction change).
    pub fn update(&mut self, x: &TriggerInput, cfg: &Config) -> Signal {
        // 2. Timers.
        if x.score > cfg.break_score_threshold {
            self.high_since.get_or_insert(x.now);
        } else {
            self.high_since = None;
        }
        if x.score < cfg.reject_score_threshold && x.distance <= cfg.touch_band + 1e-9 {
            self.low_since.get_or_insert(x.now);
        } else {
            self.low_since = None;
        }
        // 3. Release.
        match self.held {
            Some(Signal::Break) if x.score < cfg.break_exit_score => self.held = None,
            Some(Signal::Reject)
                if x.score > cfg.reject_exit_score || x.distance > 2.0 * cfg.touch_band + 1e-9 =>
            {
                self.held = None
            }
            _ => {}
        }
        // 4. Hold.
        let hold_ns = cfg.trigger_hold_time_ms.saturating_mul(1_000_000);
        if self.held.is_none() {
            if self.high_since.is_some_and(|t| x.now - t >= hold_ns) {
                self.held = Some(Signal::Break);
            } else if self.low_since.is_some_and(|t| x.now - t >= hold_ns) {
                self.held = Some(Signal::Reject);
            }
        }
        // 5. Output.
        if let Some(s) = self.held {
            return s;
        }
        let contested = (cfg.reject_exit_score..=cfg.break_exit_score).contains(&x.score)
            && x.barrier == BarrierState::Consumed
            && x.near_volume >= cfg.contested_min_volume;
        if contested {
            Signal::Contested
        } else {
            Signal::Neutral
        }
    }
}

/// EWMA on event time: `α = 1 − exp(−Δt/τ)`, the first value passes through.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ewma {
    value: Option<f64>,
    last: u64,
}

impl Ewma {
    pub fn update(&mut self, x: f64, now: u64, tau_s: f64) -> f64 {
        let v = match self.value {
            None => x,
            Some(v) => {
                let dt = now.saturating_sub(self.last) as f64 * 1e-9;
                let alpha = if tau_s > 0.0 {
                    1.0 - (-dt / tau_s).exp()
                } else {
                    1.0
                };
                v + alpha * (x - v)
            }
        };
        self.value = Some(v);
        self.last = now;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tape::Sweep;

    const S: u64 = 1_000_000_000;

    fn tape(imbalance: f64, sweep: Option<i8>) -> TapeReading {
        TapeReading {
            imbalance,
            sweep: sweep.map(|direction| Sweep {
                direction,
                notional: 6e6,
                num_prints: 3,
                window_ms: 100.0,
            }),
            ..TapeReading::default()
        }
    }

    #[test]
    fn vacuum_amplify_and_aligned_sweep_score_above_80() {
        let cfg = Config::default();
        let c = Components {
            liquidity: liquidity_score(BarrierState::Vacuum),
            hedge: hedge_score(FuelEffect::Amplify),
            tape: tape_score(&tape(0.0, Some(1)), 0.0, 1, &cfg),
        };
        assert_eq!((c.liquidity, c.hedge, c.tape), (100.0, 100.0, 100.0));
        assert!(break_score(&c, &cfg) > 80.0);
    }

    #[test]
    fn wall_dampen_and_flat_tape_score_below_20() {
        let cfg = Config::default();
        let c = Components {
            liquidity: liquidity_score(BarrierState::Wall),
            hedge: hedge_score(FuelEffect::Dampen),
            tape: tape_score(&tape(0.0, None), 0.0, -1, &cfg),
        };
        assert!(break_score(&c, &cfg) < 20.0);
    }

    #[test]
    fn vacuum_with_neutral_fuel_and_flat_tape_is_the_weighted_sum() {
        let cfg = Config::default();
        let c = Components {
            liquidity: liquidity_score(BarrierState::Vacuum),
            hedge: hedge_score(FuelEffect::Neutral),
            tape: tape_score(&tape(0.0, None), 0.0, 1, &cfg),
        };
        assert_eq!(break_score(&c, &cfg), 0.45 * 100.0 + 0.35 * 50.0);
    }

    #[test]
    fn tape_score_counts_only_what_points_in_the_break_direction() {
        let cfg = Config::default();
        // Against the break direction: nothing, and an opposite sweep does not count.
        assert_eq!(tape_score(&tape(-0.8, Some(-1)), -1.0, 1, &cfg), 0.0);
        // Half the velocity scale and imbalance 0.4 downwards for a DOWN break.
        assert_eq!(tape_score(&tape(-0.4, None), -0.25, -1, &cfg), 12.5 + 10.0);
        // Capped at 50.
        assert_eq!(tape_score(&tape(1.0, None), 3.0, 1, &cfg), 50.0);
    }

    #[test]
    fn confidence_labels() {
        assert_eq!(confidence_label(1.0, 1.0, 0.1), "HIGH");
        assert_eq!(confidence_label(0.4, 0.4, 0.4), "MEDIUM");
        assert_eq!(confidence_label(0.0, 0.5, 0.5), "LOW");
    }

    fn input(now: u64, score: f64, distance: f64) -> TriggerInput {
        TriggerInput {
            now,
            score,
            distance,
            barrier: BarrierState::Neutral,
            near_volume: 0.0,
        }
    }

    #[test]
    fn break_needs_three_seconds_above_80_and_a_dip_restarts_the_clock() {
        let cfg = Config::default();
        let mut t = Trigger::default();
        let t0 = 100 * S;
        assert_eq!(t.update(&input(t0, 85.0, 0.2), &cfg), Signal::Neutral);
        assert_eq!(t.update(&input(t0 + S, 85.0, 0.2), &cfg), Signal::Neutral);
        assert_eq!(t.update(&input(t0 + 4 * S, 85.0, 0.2), &cfg), Signal::Break);

        let mut t = Trigger::default();
        t.update(&input(t0, 85.0, 0.2), &cfg);
        t.update(&input(t0 + S, 70.0, 0.2), &cfg);
        assert_eq!(
            t.update(&input(t0 + 2 * S, 85.0, 0.2), &cfg),
            Signal::Neutral
        );
        assert_eq!(
            t.update(&input(t0 + 4 * S, 85.0, 0.2), &cfg),
            Signal::Neutral
        );
        assert_eq!(t.update(&input(t0 + 5 * S, 85.0, 0.2), &cfg), Signal::Break);
    }

    #[test]
    fn break_is_held_until_the_score_drops_below_70() {
        let cfg = Config::default();
        let mut t = Trigger::default();
        let t0 = 100 * S;
        t.update(&input(t0, 90.0, 0.2), &cfg);
        assert_eq!(t.update(&input(t0 + 3 * S, 90.0, 0.2), &cfg), Signal::Break);
        assert_eq!(t.update(&input(t0 + 4 * S, 75.0, 0.2), &cfg), Signal::Break);
        assert_eq!(t.update(&input(t0 + 5 * S, 70.0, 0.2), &cfg), Signal::Break);
        assert_eq!(
            t.update(&input(t0 + 6 * S, 69.0, 0.2), &cfg),
            Signal::Neutral
        );
        // Back above 80: the clock starts again.
        assert_eq!(
            t.update(&input(t0 + 7 * S, 90.0, 0.2), &cfg),
            Signal::Neutral
        );
    }

    #[test]
    fn reject_only_when_touching_and_released_when_the_score_rises_or_price_leaves() {
        let cfg = Config::default();
        let t0 = 100 * S;
        let mut far = Trigger::default();
        for i in 0..10 {
            assert_eq!(
                far.update(&input(t0 + i * S, 10.0, 0.5), &cfg),
                Signal::Neutral
            );
        }
        let mut t = Trigger::default();
        assert_eq!(t.update(&input(t0, 10.0, 0.02), &cfg), Signal::Neutral);
        assert_eq!(
            t.update(&input(t0 + 2 * S, 10.0, 0.02), &cfg),
            Signal::Neutral
        );
        assert_eq!(
            t.update(&input(t0 + 4 * S, 10.0, 0.02), &cfg),
            Signal::Reject
        );
        // Still held a little away (≤ 2·TOUCH_BAND) with a score up to 30.
        assert_eq!(
            t.update(&input(t0 + 5 * S, 30.0, 0.08), &cfg),
            Signal::Reject
        );
        assert_eq!(
            t.update(&input(t0 + 6 * S, 10.0, 0.11), &cfg),
            Signal::Neutral
        );
        let mut t = Trigger::default();
        t.update(&input(t0, 10.0, 0.0), &cfg);
        assert_eq!(
            t.update(&input(t0 + 3 * S, 10.0, 0.0), &cfg),
            Signal::Reject
        );
        assert_eq!(
            t.update(&input(t0 + 4 * S, 31.0, 0.0), &cfg),
            Signal::Neutral
        );
    }

    #[test]
    fn contested_needs_a_middling_score_a_consumed_barrier_and_volume() {
        let cfg = Config::default();
        let x = TriggerInput {
            now: 100 * S,
            score: 55.0,
            distance: 0.2,
            barrier: BarrierState::Consumed,
            near_volume: 500.0,
        };
        assert_eq!(Trigger::default().update(&x, &cfg), Signal::Contested);
        let low_volume = TriggerInput {
            near_volume: 499.0,
            ..x
        };
        assert_eq!(
            Trigger::default().update(&low_volume, &cfg),
            Signal::Neutral
        );
        let other_barrier = TriggerInput {
            barrier: BarrierState::Vacuum,
            ..x
        };
        assert_eq!(
            Trigger::default().update(&other_barrier, &cfg),
            Signal::Neutral
        );
        let high = TriggerInput { score: 71.0, ..x };
        assert_eq!(Trigger::default().update(&high, &cfg), Signal::Neutral);
    }

    #[test]
    fn ewma_passes_the_first_value_and_weights_by_elapsed_time() {
        let mut e = Ewma::default();
        assert_eq!(e.update(10.0, 100 * S, 2.0), 10.0);
        let v = e.update(20.0, 102 * S, 2.0);
        let alpha = 1.0 - (-1.0f64).exp();
        assert!((v - (10.0 + alpha * 10.0)).abs() < 1e-12);
        // No time elapsed: no change.
        assert_eq!(e.update(50.0, 102 * S, 2.0), v);
    }
}
