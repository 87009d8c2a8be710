//! The signal engine of PHYSICS.md: market state in, `level_signals` snaps out.
//!
//! [`Engine::apply`] takes one canonical event at a time (event time only, never the wall clock)
//! and returns a snap when the event crosses a snap boundary. [`run`] drives an engine from any
//! [`EventSource`] to any [`EventSink`]. The physics lives in the submodules: [`market`] (state),
//! [`levels`] (universe), [`barrier`], [`tape`], [`fuel`], [`score`] (signal), [`runway`] and
//! [`snap`] (boundaries and payload text).

pub mod aggressor;
pub mod barrier;
pub mod config;
pub mod fuel;
pub mod greeks;
pub mod levels;
pub mod market;
pub mod runway;
pub mod score;
pub mod snap;
pub mod stats;
pub mod tape;

mod run;

use std::collections::HashMap;

pub use config::{Config, ConfigError, FuelExpiry};
pub use run::{Clock, RunError, RunOptions, run, run_wall_clock};
pub use stats::EngineStats;

use barrier::{Side, ZoneKey};
use levels::{Direction, Level};
use market::Market;
use score::{Components, Ewma, Signal, Trigger, TriggerInput};
use snap::SnapClock;

use crate::event::{
    BarrierPayload, DefendingQuote, Event, FuelPayload, LevelRef, LevelSignal, LevelSignals,
    RunwayPayload, SpyQuote, SweepPayload, TapePayload,
};

/// Per-level state carried between snaps: the trigger machine and the smoothers.
#[derive(Debug, Clone, Default)]
struct LevelState {
    last_snap: u64,
    direction: Option<Direction>,
    trigger: Trigger,
    score: Ewma,
    delta_liq: Ewma,
    replenishment: Ewma,
    velocity: Ewma,
    gamma: Ewma,
}

/// The signal engine.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Config,
    market: Market,
    clock: SnapClock,
    stats: EngineStats,
    last_ts: u64,
    /// Sequence number of the last emitted snap.
    snap_seq: u64,
    states: HashMap<String, LevelState>,
    universe: Vec<Level>,
    active: Vec<usize>,
    strikes: Vec<f64>,
    /// Tape buffers: centers (ES) of the active levels ascending, and each active level's rank.
    centers: Vec<(f64, usize)>,
    rank: Vec<usize>,
    center_prices: Vec<f64>,
    tape: tape::TapeScratch,
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        Engine {
            market: Market::new(&config),
            clock: SnapClock::new(config.snap_interval_ms),
            config,
            stats: EngineStats::default(),
            last_ts: 0,
            snap_seq: 0,
            states: HashMap::new(),
            universe: Vec::new(),
            active: Vec::new(),
            strikes: Vec::new(),
            centers: Vec::new(),
            rank: Vec::new(),
            center_prices: Vec::new(),
            tape: tape::TapeScratch::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The market state (read-only), for inspection and tests.
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// The next snap boundary (ns), once an event has started the clock.
    pub fn next_boundary(&self) -> Option<u64> {
        self.clock.next_boundary()
    }

    /// Applies one event. If its time crosses the next snap boundary, the snap (taken before the
    /// event is applied) is returned.
    pub fn apply(&mut self, event: &Event) -> Option<LevelSignals> {
        let kind = event.kind();
        self.stats.count(kind);
        // Snaps and feed health (stamped with wall-clock time) never move the engine's clock.
        if matches!(event, Event::LevelSignals(_) | Event::FeedStatus(_)) {
            return None;
        }
        let ts = event.ts_event_ns();
        if ts < self.last_ts {
            self.stats.out_of_order += 1;
        } else {
            self.last_ts = ts;
        }
        let snap = self.clock.on_event(ts).and_then(|b| self.take_snap(b));
        self.market.roll_session(ts, &mut self.stats);
        let stats = &mut self.stats;
        match event {
            Event::FuturesTrade(t) => self.market.on_futures_trade(t, stats),
            Event::Mbp10(m) => self.market.on_mbp10(m, stats),
            Event::OptionTrade(o) => self.market.on_option_trade(o, &self.config, stats),
            Event::StockTrade(t) => self
                .market
                .on_stock_trade(t, &self.config.underlying, stats),
            Event::StockQuote(q) => {
                if q.symbol != self.config.underlying {
                    stats.unknown_symbols += 1;
                }
            }
            // Feed health is for people and the lake, not the engine.
            Event::LevelSignals(_) | Event::FeedStatus(_) => {}
        }
        snap
    }

    /// Wall-clock mode: takes a snap at the largest boundary ≤ `now_ns` if the next boundary has
    /// been reached without an event crossing it (a quiet market).
    pub fn snap_at(&mut self, now_ns: u64) -> Option<LevelSignals> {
        self.clock.due(now_ns).and_then(|b| self.take_snap(b))
    }

    /// Takes a snap at boundary `now`, if a trade and a book image have been seen.
    fn take_snap(&mut self, now: u64) -> Option<LevelSignals> {
        self.market.rechoose_contract(&mut self.stats);
        let spot = self.market.spot().filter(|_| self.market.ready());
        let Some(spot) = spot else {
            self.stats.snaps_not_ready += 1;
            return None;
        };
        let cfg = &self.config;
        let ratio = self.market.ratio();
        let marks = self.market.flows.marks(spot, cfg);
        self.strikes.clear();
        self.strikes.extend(
            self.market
                .flows
                .strikes_within(spot, cfg.strike_range)
                .map(|(k, _)| k),
        );
        let (vwap, high, low) = self.market.session_es();
        let inputs = levels::UniverseInputs {
            spot,
            vwap: vwap.map(|p| p / ratio),
            session_high: high.map(|p| p / ratio),
            session_low: low.map(|p| p / ratio),
            strikes: &self.strikes,
            marks,
        };
        levels::build_universe(&inputs, cfg, &mut self.universe);
        levels::active_levels(&self.universe, spot, cfg, &mut self.active);
        let velocity = tape::velocity(
            &self.market.trades,
            now,
            cfg.velocity_window_ms.saturating_mul(1_000_000),
        );
        let image = self.market.barrier.image().copied();
        let best = |side| image.as_ref().and_then(|i| i.best(side));
        let spy = SpyQuote {
            spot: Some(spot),
            bid: best(Side::Bid).map(|(p, _)| p / ratio),
            ask: best(Side::Ask).map(|(p, _)| p / ratio),
        };
        // Tape of every active level in one pass over the trades.
        self.centers.clear();
        self.centers.extend(
            self.active
                .iter()
                .enumerate()
                .map(|(k, &i)| (self.universe[i].price * ratio, k)),
        );
        self.centers.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.rank.clear();
        self.rank.resize(self.active.len(), 0);
        for (r, &(_, k)) in self.centers.iter().enumerate() {
            self.rank[k] = r;
        }
        self.center_prices.clear();
        self.center_prices
            .extend(self.centers.iter().map(|&(c, _)| c));
        tape::near_levels(
            &self.market.trades,
            now,
            &self.center_prices,
            cfg.tape_band * ratio,
            cfg,
            &mut self.tape,
        );

        let seq = self.snap_seq + 1;
        let mut out = Vec::with_capacity(self.active.len());
        for (k, &idx) in self.active.iter().enumerate() {
            let level = &self.universe[idx];
            let direction = Direction::of(spot, level.price);
            let break_sign = direction.break_sign();
            let distance = (spot - level.price).abs();
            let center_es = level.price * ratio;

            // Barrier.
            let side = match direction {
                Direction::Support => Side::Bid,
                Direction::Resistance => Side::Ask,
            };
            let zone = ZoneKey::around(side, center_es, cfg.barrier_zone_ticks, cfg.es_tick_size);
            let flows = self.market.barrier.flows(zone, now);
            let depth = image.as_ref().map_or(0, |i| i.zone_depth(&zone)) as f64;
            let mut barrier = barrier::classify(&flows, depth, cfg);
            barrier.defending = image.as_ref().and_then(|i| i.best(side));

            // Tape and fuel.
            let tape = self.tape.readings[self.rank[k]];
            let fuel = self.market.flows.fuel_at(level.price, cfg);

            // Score.
            let components = Components {
                liquidity: score::liquidity_score(barrier.state),
                hedge: score::hedge_score(fuel.effect),
                tape: score::tape_score(&tape, velocity, break_sign, cfg),
            };
            let raw = score::break_score(&components, cfg);
            let confidence =
                score::confidence_label(barrier.confidence, tape.confidence, fuel.confidence);

            // Trigger and smoothers: a level not active at the previous snap starts afresh.
            let state = match self.states.get_mut(level.id.as_str()) {
                Some(s) if s.last_snap + 1 == seq => s,
                Some(s) => {
                    *s = LevelState::default();
                    s
                }
                None => self.states.entry(level.id.clone()).or_default(),
            };
            state.last_snap = seq;
            if state.direction != Some(direction) {
                state.trigger = Trigger::default();
                state.direction = Some(direction);
            }
            let signal = state.trigger.update(
                &TriggerInput {
                    now,
                    score: raw,
                    distance,
                    barrier: barrier.state,
                    near_volume: tape.buy_vol + tape.sell_vol,
                },
                cfg,
            );
            let score_smooth = state.score.update(raw, now, cfg.tau_score_s);
            let delta_liq_smooth =
                state
                    .delta_liq
                    .update(barrier.delta_liq, now, cfg.tau_delta_liq_s);
            let replenishment_smooth = state.replenishment.update(
                barrier.replenishment_ratio,
                now,
                cfg.tau_replenishment_s,
            );
            let velocity_smooth = state.velocity.update(velocity, now, cfg.tau_velocity_s);
            let gamma_smooth =
                state
                    .gamma
                    .update(fuel.net_dealer_gamma, now, cfg.tau_dealer_gamma_s);

            // Runway in the signal's direction.
            let run_sign = if signal == Signal::Reject {
                -break_sign
            } else {
                break_sign
            };
            let way = runway::runway(level.price, run_sign, &self.universe, cfg);

            let sweep_confirms = tape.sweep.is_some_and(|s| s.direction == break_sign);
            out.push(LevelSignal {
                id: level.id.clone(),
                price: level.price,
                kind: level.kind.as_str().to_string(),
                direction: direction.as_str().to_string(),
                distance,
                break_score_raw: raw,
                break_score_smooth: score_smooth,
                signal: signal.as_str().to_string(),
                confidence: confidence.to_string(),
                barrier: BarrierPayload {
                    state: barrier.state.as_str().to_string(),
                    delta_liq: barrier.delta_liq,
                    delta_liq_smooth,
                    replenishment_ratio: barrier.replenishment_ratio,
                    replenishment_ratio_smooth: replenishment_smooth,
                    added: barrier.added,
                    canceled: barrier.canceled,
                    filled: barrier.filled,
                    defending_quote: DefendingQuote {
                        price: barrier.defending.map(|(p, _)| p / ratio),
                        size: barrier.defending.map_or(0, |(_, s)| s),
                    },
                    churn: barrier.churn,
                    depth_in_zone: barrier.depth_in_zone,
                },
                tape: TapePayload {
                    imbalance: tape.imbalance,
                    buy_vol: tape.buy_vol,
                    sell_vol: tape.sell_vol,
                    velocity,
                    velocity_smooth,
                    sweep: match tape.sweep {
                        Some(s) => SweepPayload {
                            detected: true,
                            direction: Some(levels::sign_str(s.direction).to_string()),
                            notional: s.notional,
                            num_prints: s.num_prints,
                            window_ms: s.window_ms,
                        },
                        None => SweepPayload::default(),
                    },
                },
                fuel: FuelPayload {
                    effect: fuel.effect.as_str().to_string(),
                    net_dealer_gamma: fuel.net_dealer_gamma,
                    net_dealer_gamma_smooth: gamma_smooth,
                    call_wall: marks.call_wall,
                    put_wall: marks.put_wall,
                    hvl: marks.gamma_flip,
                },
                runway: RunwayPayload {
                    direction: levels::sign_str(way.direction).to_string(),
                    distance: way.distance,
                    next_obstacle: way.next_obstacle.map(|l| LevelRef {
                        id: l.id.clone(),
                        price: l.price,
                    }),
                    quality: way.quality.as_str().to_string(),
                },
                note: snap::note(barrier.state, fuel.effect, sweep_confirms),
            });
        }
        self.states.retain(|_, s| s.last_snap == seq);
        self.market.barrier.prune_zones(now);
        self.snap_seq = seq;
        self.stats.snaps_emitted += 1;
        Some(LevelSignals {
            ts: (now / 1_000_000) as i64,
            spy,
            levels: out,
        })
    }
}

#[cfg(test)]
mod tests;
