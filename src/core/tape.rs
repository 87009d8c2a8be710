//! Tape (momentum) physics, PHYSICS.md §4: imbalance and sweeps near a level, price velocity.
//!
//! Computed at a snap from the buffer of ES trades of the followed contract (the last
//! `max(W_t, W_v)` of event time). Its cost grows with the number of trades in `W_t`, not with
//! book updates.

use std::collections::VecDeque;

use super::config::Config;

/// An ES trade of the followed contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TapeTrade {
    pub ts: u64,
    /// ES points.
    pub price: f64,
    pub size: u32,
    /// 1 buy, −1 sell, 0 unknown.
    pub aggressor: i8,
}

/// The largest sweep near a level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    /// 1 UP (buys), −1 DOWN (sells).
    pub direction: i8,
    pub notional: f64,
    pub num_prints: u32,
    pub window_ms: f64,
}

/// Tape readings near one level.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TapeReading {
    pub buy_vol: f64,
    pub sell_vol: f64,
    pub imbalance: f64,
    pub sweep: Option<Sweep>,
    pub confidence: f64,
}

/// Least-squares slope of price (ES points) against time (s) over trades in `[now − window, now)`;
/// 0 for fewer than two trades or when all are at one instant.
pub fn velocity(trades: &VecDeque<TapeTrade>, now: u64, window_ns: u64) -> f64 {
    let cutoff = now.saturating_sub(window_ns);
    let in_window = || trades.iter().filter(|t| t.ts >= cutoff && t.ts < now);
    let (mut n, mut st, mut sp) = (0usize, 0.0f64, 0.0f64);
    let (mut min_ts, mut max_ts) = (u64::MAX, 0u64);
    for t in in_window() {
        n += 1;
        st += (t.ts - cutoff) as f64 * 1e-9;
        sp += t.price;
        min_ts = min_ts.min(t.ts);
        max_ts = max_ts.max(t.ts);
    }
    if n < 2 || min_ts == max_ts {
        return 0.0;
    }
    let (mt, mp) = (st / n as f64, sp / n as f64);
    let (mut sxy, mut sxx) = (0.0f64, 0.0f64);
    for t in in_window() {
        let x = (t.ts - cutoff) as f64 * 1e-9 - mt;
        sxy += x * (t.price - mp);
        sxx += x * x;
    }
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// Imbalance, volumes and the largest sweep of trades in `[now − W_t, now)` within
/// `band_es` of `center_es`.
pub fn near_level(
    trades: &VecDeque<TapeTrade>,
    now: u64,
    center_es: f64,
    band_es: f64,
    cfg: &Config,
) -> TapeReading {
    let mut scratch = TapeScratch::default();
    near_levels(trades, now, &[center_es], band_es, cfg, &mut scratch);
    scratch.readings[0]
}

/// Reusable buffers of [`near_levels`].
#[derive(Debug, Default, Clone)]
pub struct TapeScratch {
    /// One reading per center, in the order of the centers given.
    pub readings: Vec<TapeReading>,
    clusters: Vec<Cluster>,
    /// First candidate level of each tick in the levels' reach.
    first: Vec<usize>,
}

/// [`near_level`] for many levels in one pass over the trades: `centers` must be sorted
/// ascending; results land in `scratch.readings` in the same order.
pub fn near_levels(
    trades: &VecDeque<TapeTrade>,
    now: u64,
    centers: &[f64],
    band_es: f64,
    cfg: &Config,
    scratch: &mut TapeScratch,
) {
    let cutoff = now.saturating_sub(cfg.tape_window_ms.saturating_mul(1_000_000));
    let max_gap = cfg.sweep_max_gap_ms.saturating_mul(1_000_000);
    let n = centers.len();
    scratch.readings.clear();
    scratch.readings.resize(n, TapeReading::default());
    scratch.clusters.resize_with(n, Cluster::default);
    for c in &mut scratch.clusters[..n] {
        c.reset();
    }
    if n == 0 {
        return;
    }
    let reach = band_es + 1e-9;
    // Candidate levels of a price: from the first center ≥ price − reach (a little wider), then
    // the exact test. For prices on the tick grid the first candidate is looked up in a table.
    let first_at = |price: f64| centers.partition_point(|&c| c < price - reach - 1e-6);
    let (lo_px, hi_px) = (centers[0] - reach - 1e-6, centers[n - 1] + reach + 1e-6);
    let tick = cfg.es_tick_size;
    let inv_tick = 1.0 / tick;
    let k0 = super::barrier::to_tick(lo_px, inv_tick) - 1;
    let k1 = super::barrier::to_tick(hi_px, inv_tick) + 1;
    scratch.first.clear();
    scratch
        .first
        .extend((k0..=k1).map(|k| first_at(k as f64 * tick)));
    for t in trades {
        if t.ts < cutoff || t.ts >= now || t.price < lo_px || t.price > hi_px {
            continue;
        }
        let k = super::barrier::to_tick(t.price, inv_tick);
        let first = if k >= k0 && k <= k1 && k as f64 * tick == t.price {
            scratch.first[(k - k0) as usize]
        } else {
            first_at(t.price)
        };
        // The same for every level the trade is near.
        let notional = t.price * t.size as f64 * cfg.es_point_value;
        for (j, &center) in centers.iter().enumerate().skip(first) {
            if center > t.price + reach + 1e-6 {
                break;
            }
            if (t.price - center).abs() > reach {
                continue;
            }
            let reading = &mut scratch.readings[j];
            match t.aggressor {
                1 => reading.buy_vol += t.size as f64,
                -1 => reading.sell_vol += t.size as f64,
                _ => {}
            }
            let cluster = &mut scratch.clusters[j];
            if cluster.prints > 0 && t.ts.saturating_sub(cluster.last_ts) > max_gap {
                cluster.offer(&mut reading.sweep, cfg);
                cluster.reset();
            }
            cluster.add(t, notional, cfg.sweep_min_prices);
        }
    }
    for (reading, cluster) in scratch.readings.iter_mut().zip(&scratch.clusters) {
        cluster.offer(&mut reading.sweep, cfg);
        let total = reading.buy_vol + reading.sell_vol;
        reading.imbalance = (reading.buy_vol - reading.sell_vol) / (total + 1e-6);
        reading.confidence = (total / cfg.tape_confidence_volume).min(1.0);
    }
}

/// A run of near-level trades without a gap above `SWEEP_MAX_GAP_MS`.
#[derive(Debug, Default, Clone)]
struct Cluster {
    prints: u32,
    first_ts: u64,
    last_ts: u64,
    buys: u32,
    sells: u32,
    notional: f64,
    /// Distinct prices, collected up to `SWEEP_MIN_PRICES`.
    prices: Vec<f64>,
}

impl Cluster {
    fn reset(&mut self) {
        self.prints = 0;
        self.buys = 0;
        self.sells = 0;
        self.notional = 0.0;
        self.prices.clear();
    }

    /// Adds a trade whose notional is `notional` (ES points × size × point value).
    fn add(&mut self, t: &TapeTrade, notional: f64, min_prices: u32) {
        if self.prints == 0 {
            self.first_ts = t.ts;
        }
        self.prints += 1;
        self.last_ts = t.ts;
        match t.aggressor {
            1 => self.buys += 1,
            -1 => self.sells += 1,
            _ => {}
        }
        self.notional += notional;
        if (self.prices.len() as u32) < min_prices && !self.prices.contains(&t.price) {
            self.prices.push(t.price);
        }
    }

    /// Replaces `best` with this cluster if it is a sweep with a larger notional.
    fn offer(&self, best: &mut Option<Sweep>, cfg: &Config) {
        let one_side = (self.buys > 0) != (self.sells > 0);
        let is_sweep = self.prints >= 2
            && one_side
            && self.notional >= cfg.sweep_min_notional
            && self.prices.len() as u32 >= cfg.sweep_min_prices;
        if !is_sweep || best.is_some_and(|b| b.notional >= self.notional) {
            return;
        }
        *best = Some(Sweep {
            direction: if self.buys > 0 { 1 } else { -1 },
            notional: self.notional,
            num_prints: self.prints,
            window_ms: self.last_ts.saturating_sub(self.first_ts) as f64 / 1e6,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn trade(ts: u64, price: f64, size: u32, aggressor: i8) -> TapeTrade {
        TapeTrade {
            ts,
            price,
            size,
            aggressor,
        }
    }

    #[test]
    fn imbalance_counts_near_level_trades_and_excludes_far_ones() {
        let cfg = Config::default();
        let now = 100 * S;
        let mut trades = VecDeque::new();
        for i in 0..10 {
            trades.push_back(trade(now - 4 * S + i * 10 * MS, 6870.25, 50, 1));
        }
        for i in 0..3 {
            trades.push_back(trade(now - 2 * S + i * 300 * MS, 6869.75, 30, -1));
        }
        // 5 ES points away: excluded.
        trades.push_back(trade(now - S, 6875.0, 400, -1));
        // Older than W_t: excluded.
        trades.push_back(trade(now - 6 * S, 6870.0, 400, -1));
        let r = near_level(&trades, now, 6870.0, 0.10 * 10.0, &cfg);
        assert_eq!(r.buy_vol, 500.0);
        assert_eq!(r.sell_vol, 90.0);
        assert!(r.imbalance > 0.0);
        assert!((r.imbalance - 410.0 / (590.0 + 1e-6)).abs() < 1e-12);
        assert_eq!(r.confidence, 1.0);
    }

    #[test]
    fn five_buy_prints_across_prices_50ms_apart_are_an_up_sweep() {
        let cfg = Config {
            sweep_min_notional: 100_000.0,
            ..Config::default()
        };
        let now = 100 * S;
        let trades: VecDeque<_> = (0..5u64)
            .map(|i| trade(now - S + i * 50 * MS, 6870.0 + 0.25 * i as f64, 100, 1))
            .collect();
        let sweep = near_level(&trades, now, 6870.5, 1.0, &cfg)
            .sweep
            .expect("sweep");
        assert_eq!(sweep.direction, 1);
        assert_eq!(sweep.num_prints, 5);
        assert_eq!(sweep.window_ms, 200.0);
        let want: f64 = (0..5)
            .map(|i| (6870.0 + 0.25 * i as f64) * 100.0 * 50.0)
            .sum();
        assert_eq!(sweep.notional, want);
    }

    #[test]
    fn alternating_sides_a_big_gap_one_price_or_small_notional_are_no_sweep() {
        let cfg = Config {
            sweep_min_notional: 100_000.0,
            ..Config::default()
        };
        let now = 100 * S;
        let alternating: VecDeque<_> = (0..5u64)
            .map(|i| {
                let side = if i % 2 == 0 { 1 } else { -1 };
                trade(now - S + i * 50 * MS, 6870.0 + 0.25 * i as f64, 100, side)
            })
            .collect();
        assert_eq!(near_level(&alternating, now, 6870.5, 1.0, &cfg).sweep, None);
        let gapped: VecDeque<_> = (0..5u64)
            .map(|i| trade(now - 2 * S + i * 150 * MS, 6870.0 + 0.25 * i as f64, 100, 1))
            .collect();
        assert_eq!(near_level(&gapped, now, 6870.5, 1.0, &cfg).sweep, None);
        let one_price: VecDeque<_> = (0..5u64)
            .map(|i| trade(now - S + i * 50 * MS, 6870.0, 100, 1))
            .collect();
        assert_eq!(near_level(&one_price, now, 6870.5, 1.0, &cfg).sweep, None);
        let default_cfg = Config::default();
        let small: VecDeque<_> = (0..5u64)
            .map(|i| trade(now - S + i * 50 * MS, 6870.0 + 0.25 * i as f64, 1, 1))
            .collect();
        assert_eq!(
            near_level(&small, now, 6870.5, 1.0, &default_cfg).sweep,
            None
        );
    }

    #[test]
    fn unknown_aggressors_do_not_break_a_one_sided_sweep() {
        let cfg = Config {
            sweep_min_notional: 100_000.0,
            ..Config::default()
        };
        let now = 100 * S;
        let trades: VecDeque<_> = (0..4u64)
            .map(|i| {
                let side = if i == 1 { 0 } else { -1 };
                trade(now - S + i * 50 * MS, 6870.0 - 0.25 * i as f64, 100, side)
            })
            .collect();
        let sweep = near_level(&trades, now, 6870.0, 1.0, &cfg).sweep.unwrap();
        assert_eq!((sweep.direction, sweep.num_prints), (-1, 4));
    }

    #[test]
    fn one_pass_over_many_levels_equals_level_by_level() {
        let cfg = Config {
            sweep_min_notional: 100_000.0,
            ..Config::default()
        };
        let now = 100 * S;
        let mut x: u64 = 5;
        let mut rnd = |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            (x >> 33) % m
        };
        // Runs of one side separated by quiet gaps, so that some clusters are sweeps.
        let mut ts = now - 6 * S;
        let mut side = 1i8;
        let mut trades = VecDeque::new();
        while ts < now + S {
            ts += MS + if rnd(8) == 0 { 150 * MS } else { 0 };
            if rnd(10) == 0 {
                side = -side;
            }
            let agg = if rnd(20) == 0 { 0 } else { side };
            let px = 6865.0 + 0.25 * rnd(40) as f64;
            trades.push_back(trade(ts, px, 1 + rnd(300) as u32, agg));
        }
        let centers: Vec<f64> = (0..25).map(|i| 6864.0 + 0.5 * i as f64 + 0.1).collect();
        let mut scratch = TapeScratch::default();
        near_levels(&trades, now, &centers, 1.0, &cfg, &mut scratch);
        for (j, &c) in centers.iter().enumerate() {
            assert_eq!(
                scratch.readings[j],
                near_level_reference(&trades, now, c, 1.0, &cfg)
            );
        }
        assert!(scratch.readings.iter().any(|r| r.sweep.is_some()));
    }

    /// The straightforward per-level scan of PHYSICS.md §4.
    fn near_level_reference(
        trades: &VecDeque<TapeTrade>,
        now: u64,
        center: f64,
        band: f64,
        cfg: &Config,
    ) -> TapeReading {
        let cutoff = now - cfg.tape_window_ms * MS;
        let near: Vec<&TapeTrade> = trades
            .iter()
            .filter(|t| t.ts >= cutoff && t.ts < now && (t.price - center).abs() <= band + 1e-9)
            .collect();
        let mut r = TapeReading::default();
        for t in &near {
            match t.aggressor {
                1 => r.buy_vol += t.size as f64,
                -1 => r.sell_vol += t.size as f64,
                _ => {}
            }
        }
        let mut start = 0;
        for end in 1..=near.len() {
            if end < near.len() && near[end].ts - near[end - 1].ts <= cfg.sweep_max_gap_ms * MS {
                continue;
            }
            let c = &near[start..end];
            let buys = c.iter().any(|t| t.aggressor == 1);
            let sells = c.iter().any(|t| t.aggressor == -1);
            let notional: f64 = c.iter().map(|t| t.price * t.size as f64 * 50.0).sum();
            let mut prices: Vec<f64> = c.iter().map(|t| t.price).collect();
            prices.sort_by(f64::total_cmp);
            prices.dedup();
            if c.len() >= 2
                && buys != sells
                && notional >= cfg.sweep_min_notional
                && prices.len() >= cfg.sweep_min_prices as usize
                && r.sweep.is_none_or(|s| notional > s.notional)
            {
                r.sweep = Some(Sweep {
                    direction: if buys { 1 } else { -1 },
                    notional,
                    num_prints: c.len() as u32,
                    window_ms: (c[c.len() - 1].ts - c[0].ts) as f64 / 1e6,
                });
            }
            start = end;
        }
        let total = r.buy_vol + r.sell_vol;
        r.imbalance = (r.buy_vol - r.sell_vol) / (total + 1e-6);
        r.confidence = (total / cfg.tape_confidence_volume).min(1.0);
        r
    }

    #[test]
    fn velocity_is_the_least_squares_slope_in_points_per_second() {
        let now = 100 * S;
        // Price rises 0.5 point per second over the last 2 s.
        let trades: VecDeque<_> = (0..5u64)
            .map(|i| trade(now - 2 * S + i * 500 * MS, 6870.0 + 0.25 * i as f64, 1, 1))
            .collect();
        let v = velocity(&trades, now, 3 * S);
        assert!((v - 0.5).abs() < 1e-9, "{v}");
        // Trades older than W_v are ignored: only the one at `now` is left → 0.
        assert_eq!(velocity(&trades, now + 2 * S + 3 * S / 4, 3 * S), 0.0);
        // All at one instant → 0.
        let same: VecDeque<_> = (0..3)
            .map(|i| trade(now - S, 6870.0 + i as f64, 1, 1))
            .collect();
        assert_eq!(velocity(&same, now, 3 * S), 0.0);
        assert_eq!(velocity(&VecDeque::new(), now, 3 * S), 0.0);
    }
}
