//! Fuel (dealer gamma) physics, PHYSICS.md §1 "Option flows" and §5, and the one definition of
//! the call wall, the put wall and the gamma flip shared by the level universe and the payload.
//!
//! Flows are kept per (strike, right, expiry) for the session in ordered maps (deterministic
//! iteration), with a per-strike aggregate so that walls, the flip and per-level sums are range
//! queries over a few strikes.

use std::collections::BTreeMap;

use super::config::Config;

/// Strikes are keyed in thousandths of a dollar.
const STRIKE_SCALE: f64 = 1000.0;

/// Key of a strike in the maps.
pub fn strike_key(strike: f64) -> i64 {
    (strike * STRIKE_SCALE).round() as i64
}

fn key_strike(key: i64) -> f64 {
    key as f64 / STRIKE_SCALE
}

/// One option contract: strike (thousandths), right (`b'C'`/`b'P'`), expiry (days since epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    pub strike: i64,
    pub right: u8,
    pub expiry: i32,
}

/// Session flow of one contract.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flow {
    pub volume: f64,
    pub premium: f64,
    pub dealer_delta: f64,
    pub dealer_gamma: f64,
}

/// Session flow of one strike, over rights and expiries.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StrikeFlow {
    pub volume: f64,
    pub call_gamma: f64,
    pub put_gamma: f64,
    pub call_volume: f64,
    pub put_volume: f64,
}

impl StrikeFlow {
    pub fn gamma(&self) -> f64 {
        self.call_gamma + self.put_gamma
    }
}

/// Fuel effect of dealer hedging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuelEffect {
    Amplify,
    Dampen,
    Neutral,
}

impl FuelEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            FuelEffect::Amplify => "AMPLIFY",
            FuelEffect::Dampen => "DAMPEN",
            FuelEffect::Neutral => "NEUTRAL",
        }
    }
}

/// Fuel readings at one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FuelReading {
    pub effect: FuelEffect,
    pub net_dealer_gamma: f64,
    pub confidence: f64,
}

/// Walls and flip around spot (the one definition).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GammaMarks {
    pub call_wall: Option<f64>,
    pub put_wall: Option<f64>,
    pub gamma_flip: Option<f64>,
}

/// Option flows of the session.
#[derive(Debug, Clone, Default)]
pub struct FlowBook {
    flows: BTreeMap<FlowKey, Flow>,
    strikes: BTreeMap<i64, StrikeFlow>,
}

impl FlowBook {
    pub fn clear(&mut self) {
        self.flows.clear();
        self.strikes.clear();
    }

    /// Records one trade: `dealer_gamma += −aggressor·size·γ·mult`, likewise for delta.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        key: FlowKey,
        price: f64,
        size: u32,
        aggressor: i8,
        gamma: f64,
        delta: f64,
        multiplier: f64,
    ) {
        let size = size as f64;
        let sign = -(aggressor as f64);
        let dg = sign * size * gamma * multiplier;
        let dd = sign * size * delta * multiplier;
        let flow = self.flows.entry(key).or_default();
        flow.volume += size;
        flow.premium += price * size * multiplier;
        flow.dealer_gamma += dg;
        flow.dealer_delta += dd;
        let strike = self.strikes.entry(key.strike).or_default();
        strike.volume += size;
        if key.right == b'C' {
            strike.call_gamma += dg;
            strike.call_volume += size;
        } else {
            strike.put_gamma += dg;
            strike.put_volume += size;
        }
    }

    /// The flow of one contract, if any was recorded.
    pub fn flow(&self, key: &FlowKey) -> Option<&Flow> {
        self.flows.get(key)
    }

    /// Strikes with flow within `center ± range`, ascending.
    pub fn strikes_within(
        &self,
        center: f64,
        range: f64,
    ) -> impl Iterator<Item = (f64, &StrikeFlow)> + '_ {
        let lo = ((center - range) * STRIKE_SCALE - 1e-6).ceil() as i64;
        let hi = ((center + range) * STRIKE_SCALE + 1e-6).floor() as i64;
        (lo <= hi)
            .then(|| self.strikes.range(lo..=hi))
            .into_iter()
            .flatten()
            .map(|(&k, s)| (key_strike(k), s))
    }

    /// Net dealer gamma and volume of strikes within level ± `FUEL_STRIKE_RANGE`, classified.
    pub fn fuel_at(&self, level: f64, cfg: &Config) -> FuelReading {
        let (mut gamma, mut volume) = (0.0, 0.0);
        for (_, s) in self.strikes_within(level, cfg.fuel_strike_range) {
            gamma += s.gamma();
            volume += s.volume;
        }
        let effect = if gamma < -cfg.gamma_threshold {
            FuelEffect::Amplify
        } else if gamma > cfg.gamma_threshold {
            FuelEffect::Dampen
        } else {
            FuelEffect::Neutral
        };
        FuelReading {
            effect,
            net_dealer_gamma: gamma,
            confidence: (volume / cfg.fuel_confidence_volume).min(1.0),
        }
    }

    /// Call wall, put wall and gamma flip around `spot` (strikes within ±2·`STRIKE_RANGE`).
    pub fn marks(&self, spot: f64, cfg: &Config) -> GammaMarks {
        let range = 2.0 * cfg.strike_range;
        let mut marks = GammaMarks::default();
        let mut call: Option<(f64, f64)> = None;
        let mut put: Option<(f64, f64)> = None;
        let mut prev: Option<(f64, f64)> = None;
        let mut count = 0usize;
        let mut best_flip: Option<(f64, f64)> = None;
        for (k, s) in self.strikes_within(spot, range) {
            if s.call_volume > 0.0 && call.is_none_or(|(_, g)| s.call_gamma < g) {
                call = Some((k, s.call_gamma));
            }
            if s.put_volume > 0.0 && put.is_none_or(|(_, g)| s.put_gamma < g) {
                put = Some((k, s.put_gamma));
            }
            count += 1;
            let g = s.gamma();
            if let Some((k_lo, g_lo)) = prev
                && g_lo * g < 0.0
            {
                let x = k_lo + (k - k_lo) * (-g_lo / (g - g_lo));
                let d = (x - spot).abs();
                if best_flip.is_none_or(|(_, bd)| d < bd) {
                    best_flip = Some((x, d));
                }
            }
            prev = Some((k, g));
        }
        let wall = |best: Option<(f64, f64)>| {
            best.filter(|&(_, g)| g <= -cfg.wall_min_gamma)
                .map(|(k, _)| k)
        };
        marks.call_wall = wall(call);
        marks.put_wall = wall(put);
        if count >= 3 {
            marks.gamma_flip = best_flip.map(|(x, _)| x);
        }
        marks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(strike: f64, right: u8) -> FlowKey {
        FlowKey {
            strike: strike_key(strike),
            right,
            expiry: 20_000,
        }
    }

    #[test]
    fn customer_buy_leaves_dealers_short_gamma() {
        let mut book = FlowBook::default();
        book.record(key(545.0, b'C'), 2.50, 10, 1, 0.05, 0.5, 100.0);
        let f = book.flow(&key(545.0, b'C')).unwrap();
        assert_eq!(f.volume, 10.0);
        assert_eq!(f.premium, 2_500.0);
        assert!((f.dealer_gamma - -50.0).abs() < 1e-9);
        assert!((f.dealer_delta - -500.0).abs() < 1e-9);
        // A customer sell is the opposite; unknown aggressor moves nothing but volume.
        book.record(key(545.0, b'C'), 2.50, 10, -1, 0.05, 0.5, 100.0);
        book.record(key(545.0, b'C'), 2.50, 10, 0, 0.05, 0.5, 100.0);
        let f = book.flow(&key(545.0, b'C')).unwrap();
        assert_eq!(f.volume, 30.0);
        assert!(f.dealer_gamma.abs() < 1e-9);
    }

    fn book_with_gamma(entries: &[(f64, u8, f64)]) -> FlowBook {
        // Each entry: (strike, right, dealer gamma) through a sell (+) or buy (−) of gamma 1.
        let mut book = FlowBook::default();
        for &(strike, right, g) in entries {
            let aggressor = if g < 0.0 { 1 } else { -1 };
            book.record(
                key(strike, right),
                1.0,
                1,
                aggressor,
                g.abs() / 100.0,
                0.0,
                100.0,
            );
        }
        book
    }

    #[test]
    fn fuel_effect_follows_net_dealer_gamma_near_the_level() {
        let cfg = Config::default();
        let amplify = book_with_gamma(&[(545.0, b'C', -50_000.0)]);
        assert_eq!(amplify.fuel_at(545.0, &cfg).effect, FuelEffect::Amplify);
        let dampen = book_with_gamma(&[(546.0, b'P', 50_000.0)]);
        let r = dampen.fuel_at(545.0, &cfg);
        assert_eq!(r.effect, FuelEffect::Dampen);
        assert!((r.net_dealer_gamma - 50_000.0).abs() < 1e-6);
        let neutral = book_with_gamma(&[(545.0, b'C', 5_000.0)]);
        assert_eq!(neutral.fuel_at(545.0, &cfg).effect, FuelEffect::Neutral);
        // Outside FUEL_STRIKE_RANGE: not counted.
        let far = book_with_gamma(&[(548.0, b'C', -50_000.0)]);
        assert_eq!(far.fuel_at(545.0, &cfg).effect, FuelEffect::Neutral);
        assert_eq!(far.fuel_at(545.0, &cfg).confidence, 0.0);
        let edge = book_with_gamma(&[(547.0, b'C', -50_000.0)]);
        assert_eq!(edge.fuel_at(545.0, &cfg).effect, FuelEffect::Amplify);
    }

    #[test]
    fn walls_are_the_most_negative_strikes_beyond_the_minimum() {
        let cfg = Config::default();
        let book = book_with_gamma(&[
            (684.0, b'P', -3_000.0),
            (685.0, b'P', -8_000.0),
            (690.0, b'C', -2_000.0),
            (692.0, b'C', -9_000.0),
            (699.0, b'C', -90_000.0), // beyond 2·STRIKE_RANGE of 687
            (688.0, b'C', -500.0),
        ]);
        let m = book.marks(687.0, &cfg);
        assert_eq!(m.call_wall, Some(692.0));
        assert_eq!(m.put_wall, Some(685.0));
        let weak = book_with_gamma(&[(690.0, b'C', -999.0)]);
        assert_eq!(weak.marks(687.0, &cfg).call_wall, None);
    }

    #[test]
    fn gamma_flip_is_the_crossing_nearest_spot_and_needs_three_strikes() {
        let cfg = Config::default();
        // Summed gamma by strike: 680:+1000, 685:-1000 (crossing 682.5), 690:+3000 (crossing 686.25).
        let book = book_with_gamma(&[
            (680.0, b'C', 1_000.0),
            (685.0, b'P', -1_000.0),
            (690.0, b'C', 2_000.0),
            (690.0, b'P', 1_000.0),
        ]);
        let flip = book.marks(687.0, &cfg).gamma_flip.unwrap();
        assert!((flip - 686.25).abs() < 1e-9, "{flip}");
        let flip = book.marks(681.0, &cfg).gamma_flip.unwrap();
        assert!((flip - 682.5).abs() < 1e-9, "{flip}");
        let two = book_with_gamma(&[(680.0, b'C', 1_000.0), (685.0, b'P', -1_000.0)]);
        assert_eq!(two.marks(683.0, &cfg).gamma_flip, None);
    }
}
