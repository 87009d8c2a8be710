//! The event loop of the simulator: ES book dynamics, scenario actions, option and SPY trades.
//!
//! Model in one paragraph: a latent *fair price* follows a random walk whose volatility depends
//! on a quiet/busy regime (scenario `drift` events steer or pin it). ES book events arrive as a
//! Poisson process whose rate follows the regime and an intraday U shape. Each event is a market
//! order (aggressor biased toward the fair price), or a touch of one price level that adds or
//! cancels with a probability that pulls the level toward a target depth (thinner on the side
//! the fair price is heading to). When the spread opens, the gap is filled within microseconds,
//! so the spread is one tick nearly all the time. Scenario zones (vacuum, wall) change the
//! targets and add explicit pulls / refills; consume and sweep events send aggressive orders.

use std::path::Path;

use dbn::record::str_to_c_chars;
use dbn::{
    BidAskPair, Cmbp1Msg, ConsolidatedBidAskPair, FlagSet, InstrumentDefMsg, Mbp10Msg, Publisher,
    RecordHeader, Schema, TradeMsg, UNDEF_PRICE, rtype,
};
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_pcg::Pcg64;

use super::book::{Book, BookSide, Level};
use super::pricing::{Right, bs_price, no_arb_bounds};
use super::scenario::{Action, Aggressor, Customer, Scenario};
use super::writer::{DbnOut, metadata};
use super::{OutputFile, Progress, SynthConfig, SynthError, SynthSummary, et_to_ns};

const TICK: f64 = 0.25;
const TICK_PX: i64 = 250_000_000;
const CENT_PX: i64 = 10_000_000;
const YEAR_NS: f64 = 365.0 * 86_400.0 * 1e9;
const MIN_T_NS: f64 = 60e9;
const BOOK_SPAN: usize = 1 << 15;

/// Instrument ids (stable, arbitrary).
pub const ES_INSTRUMENT_ID: u32 = 42_140_878;
pub const SPY_INSTRUMENT_ID: u32 = 15_144;
pub const OPTION_ID_BASE: u32 = 1_250_000;

/// Target resting depth by distance from the best price (ticks), at depth_scale 1.
const PROFILE: [f64; 14] = [
    45.0, 58.0, 68.0, 76.0, 82.0, 86.0, 90.0, 92.0, 94.0, 95.0, 96.0, 96.0, 96.0, 96.0,
];
/// Probability that a touch hits each distance from the best.
const TOUCH_W: [f64; 14] = [
    0.20, 0.15, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.04, 0.04, 0.03, 0.02, 0.02, 0.02,
];
/// OPRA venues used as trade publishers.
const OPRA_VENUES: [Publisher; 6] = [
    Publisher::OpraPillarXcbo,
    Publisher::OpraPillarArco,
    Publisher::OpraPillarAmxo,
    Publisher::OpraPillarXphl,
    Publisher::OpraPillarGmni,
    Publisher::OpraPillarEdgo,
];

#[derive(Debug, Clone, Copy)]
enum ZoneKind {
    Vacuum { residual: u32 },
    Wall,
}

#[derive(Debug, Clone, Copy)]
struct Zone {
    side: BookSide,
    lo: i64,
    hi: i64,
    t0: u64,
    t1: u64,
    kind: ZoneKind,
}

#[derive(Debug, Clone, Copy)]
struct Drift {
    t0: u64,
    t1: u64,
    hold_end: u64,
    from: f64,
    to: f64,
}

#[derive(Debug, Clone, Copy)]
enum Timed {
    DriftStart {
        t1: u64,
        hold_end: u64,
        to: f64,
    },
    Pull {
        zone: usize,
        left: u32,
    },
    WallAdd {
        side: BookSide,
        tick: i64,
        size: u32,
    },
    Consume {
        side: BookSide,
        tick: i64,
        size: u32,
    },
    Sweep {
        aggressor: Aggressor,
        size: u32,
        prices: u32,
        limit: Option<i64>,
    },
    OptionTrade {
        customer: Customer,
        opt: usize,
        size: u32,
    },
}

struct OptionInst {
    id: u32,
    strike: f64,
    right: Right,
    raw_symbol: String,
}

/// Heavy-tailed integer size: floor(scale · U^(−1/α)), clamped to [1, cap].
fn pareto_size(rng: &mut Pcg64, alpha: f64, scale: f64, cap: u32) -> u32 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let x = scale * u.powf(-1.0 / alpha);
    (x.floor() as u64).clamp(1, u64::from(cap)) as u32
}

fn exp_ns(rng: &mut Pcg64, rate_per_s: f64) -> u64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    ((-u.ln() / rate_per_s) * 1e9).max(1.0) as u64
}

fn seeded(seed: u64, stream: u64) -> Pcg64 {
    Pcg64::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn cchars<const N: usize>(s: &str) -> [std::ffi::c_char; N] {
    // Only ASCII literals of known length reach this; an over-long one is a bug.
    str_to_c_chars(s).expect("ASCII field fits")
}

/// OSI option symbol: 6-character padded root, YYMMDD, C/P, strike × 1000 on 8 digits.
pub fn osi_symbol(root: &str, date: chrono::NaiveDate, right: Right, strike: f64) -> String {
    format!(
        "{:<6}{}{}{:08}",
        root,
        date.format("%y%m%d"),
        right.letter(),
        (strike * 1000.0).round() as u64
    )
}

struct Sim<'a> {
    cfg: &'a SynthConfig,
    start_ns: u64,
    end_ns: u64,
    expiry_ns: u64,
    start_sod: f64,
    book: Book,
    fair: f64,
    fair_t: u64,
    sigma_tick: f64,
    drift: Option<Drift>,
    busy: bool,
    regime_until: u64,
    forced: Vec<(u64, u64, bool)>,
    zones: Vec<Zone>,
    rng: Pcg64,
    rng_regime: Pcg64,
    rng_opt: Pcg64,
    rng_spy: Pcg64,
    // current ES event
    t: u64,
    recv: u64,
    last_recv: u64,
    in_delta: i32,
    seq: u32,
    pending_mbp: Vec<Mbp10Msg>,
    pending_trades: Vec<TradeMsg>,
    // outputs
    mbp: DbnOut,
    trades: DbnOut,
    opra: DbnOut,
    spy: Option<DbnOut>,
    opt_seq: u32,
    opt_last_recv: u64,
    spy_seq: u32,
    spy_last_recv: u64,
    options: Vec<OptionInst>,
    strikes_lo: f64,
    // summary
    es_trades: u64,
    option_trades: u64,
    spy_trades: u64,
    skipped: u64,
    es_low: i64,
    es_high: i64,
    es_last: i64,
}

pub(super) fn run(
    cfg: &SynthConfig,
    scenario: &Scenario,
    out_dir: &Path,
    progress: Option<&dyn Fn(Progress)>,
) -> Result<SynthSummary, SynthError> {
    let start_ns = cfg.start_ns()?;
    let end_ns = cfg.end_ns()?;
    let expiry_ns = et_to_ns(
        cfg.date,
        chrono::NaiveTime::from_hms_opt(16, 0, 0).expect("valid"),
    )?;
    let ext = if cfg.zstd_level.is_some() {
        ".dbn.zst"
    } else {
        ".dbn"
    };
    let center = (cfg.es_start / TICK).round() as i64;
    let spot0 = center as f64 * TICK / 10.0;

    // Option chain: 1-dollar strikes around the starting SPY price.
    let lo = (spot0 - f64::from(cfg.strike_range)).floor();
    let hi = (spot0 + f64::from(cfg.strike_range)).ceil();
    let mut options = Vec::new();
    let mut k = lo;
    while k <= hi + 1e-9 {
        for right in [Right::Call, Right::Put] {
            options.push(OptionInst {
                id: OPTION_ID_BASE + options.len() as u32,
                strike: k,
                right,
                raw_symbol: osi_symbol("SPY", cfg.date, right, k),
            });
        }
        k += 1.0;
    }

    let es_syms = vec![(cfg.es_symbol.clone(), ES_INSTRUMENT_ID)];
    let z = cfg.zstd_level;
    let mbp = DbnOut::create(
        &out_dir.join(format!("es.mbp-10{ext}")),
        &metadata("GLBX.MDP3", Some(Schema::Mbp10), start_ns, end_ns, &es_syms),
        z,
    )?;
    let trades = DbnOut::create(
        &out_dir.join(format!("es.trades{ext}")),
        &metadata(
            "GLBX.MDP3",
            Some(Schema::Trades),
            start_ns,
            end_ns,
            &es_syms,
        ),
        z,
    )?;
    let opt_syms: Vec<(String, u32)> = options
        .iter()
        .map(|o| (o.raw_symbol.clone(), o.id))
        .collect();
    let opra = DbnOut::create(
        &out_dir.join(format!("opra.tcbbo{ext}")),
        &metadata("OPRA.PILLAR", None, start_ns, end_ns, &opt_syms),
        z,
    )?;
    let spy = if cfg.spy_rate > 0.0 {
        Some(DbnOut::create(
            &out_dir.join(format!("spy.trades{ext}")),
            &metadata(
                "XNAS.ITCH",
                Some(Schema::Trades),
                start_ns,
                end_ns,
                &[("SPY".to_string(), SPY_INSTRUMENT_ID)],
            ),
            z,
        )?)
    } else {
        None
    };

    let start_sod = f64::from(chrono::Timelike::num_seconds_from_midnight(&cfg.start))
        + f64::from(chrono::Timelike::nanosecond(&cfg.start)) / 1e9;
    let mut sim = Sim {
        cfg,
        start_ns,
        end_ns,
        expiry_ns,
        start_sod,
        book: Book::new(center, BOOK_SPAN),
        fair: center as f64 - 0.5,
        fair_t: start_ns,
        sigma_tick: cfg.volatility * cfg.es_start / (252.0f64 * 23_400.0).sqrt() / TICK,
        drift: None,
        busy: false,
        regime_until: start_ns,
        forced: Vec::new(),
        zones: Vec::new(),
        rng: seeded(cfg.seed, 1),
        rng_regime: seeded(cfg.seed, 2),
        rng_opt: seeded(cfg.seed, 3),
        rng_spy: seeded(cfg.seed, 4),
        t: start_ns,
        recv: start_ns,
        last_recv: start_ns,
        in_delta: 0,
        seq: 0,
        pending_mbp: Vec::with_capacity(32),
        pending_trades: Vec::with_capacity(16),
        mbp,
        trades,
        opra,
        spy,
        opt_seq: 0,
        opt_last_recv: start_ns,
        spy_seq: 0,
        spy_last_recv: start_ns,
        options,
        strikes_lo: lo,
        es_trades: 0,
        option_trades: 0,
        spy_trades: 0,
        skipped: 0,
        es_low: center,
        es_high: center,
        es_last: center,
    };
    sim.regime_until = start_ns + exp_ns(&mut sim.rng_regime, 1.0 / cfg.quiet_mean_s);
    let timed = sim.compile(scenario)?;
    sim.write_definitions()?;
    sim.initial_book()?;
    sim.event_loop(&timed, progress)?;
    sim.finish()
}

impl Sim<'_> {
    // ---------------------------------------------------------------- scenario compilation

    fn tick_of(price: f64) -> i64 {
        (price / TICK).round() as i64
    }

    fn compile(&mut self, scenario: &Scenario) -> Result<Vec<(u64, Timed)>, SynthError> {
        let mut rng = seeded(self.cfg.seed, 5);
        let mut out: Vec<(u64, Timed)> = Vec::new();
        let s = |x: f64| (x * 1e9).round() as u64;
        for ev in &scenario.events {
            let t0 = self.start_ns + ev.at.offset_ns(self.cfg.start)?;
            match &ev.action {
                Action::Drift {
                    to,
                    duration_s,
                    hold_s,
                } => {
                    let t1 = t0 + s(*duration_s);
                    out.push((
                        t0,
                        Timed::DriftStart {
                            t1,
                            hold_end: t1 + s(*hold_s),
                            to: to / TICK,
                        },
                    ));
                }
                Action::Vacuum {
                    side,
                    price,
                    width_ticks,
                    duration_s,
                    pull_s,
                    residual,
                } => {
                    let c = Self::tick_of(*price);
                    let w = i64::from(*width_ticks);
                    let zone = self.zones.len();
                    self.zones.push(Zone {
                        side: *side,
                        lo: c - w,
                        hi: c + w,
                        t0,
                        t1: t0 + s(*duration_s),
                        kind: ZoneKind::Vacuum {
                            residual: *residual,
                        },
                    });
                    let n = ((pull_s * 10.0).round() as u32).max(1);
                    for i in 0..n {
                        let t = t0 + s(pull_s * f64::from(i) / f64::from(n));
                        out.push((t, Timed::Pull { zone, left: n - i }));
                    }
                }
                Action::Wall {
                    side,
                    price,
                    width_ticks,
                    duration_s,
                    refill_per_s,
                } => {
                    let c = Self::tick_of(*price);
                    let w = i64::from(*width_ticks);
                    let t1 = t0 + s(*duration_s);
                    // No cancels at the wall price and behind it; the price can still trade
                    // up to the wall through the levels in front of it.
                    let (lo, hi) = match side {
                        BookSide::Ask => (c, c + w),
                        BookSide::Bid => (c - w, c),
                    };
                    self.zones.push(Zone {
                        side: *side,
                        lo,
                        hi,
                        t0,
                        t1,
                        kind: ZoneKind::Wall,
                    });
                    let total = (refill_per_s * duration_s).round() as u64;
                    let mut added = 0u64;
                    while added < total {
                        let sz = u64::from(rng.random_range(4u32..=24)).min(total - added) as u32;
                        let t = t0 + (rng.random::<f64>() * (t1 - t0) as f64) as u64;
                        out.push((
                            t,
                            Timed::WallAdd {
                                side: *side,
                                tick: c,
                                size: sz,
                            },
                        ));
                        added += u64::from(sz);
                    }
                }
                Action::Consume {
                    side,
                    price,
                    size,
                    duration_s,
                } => {
                    let c = Self::tick_of(*price);
                    let mut left = *size;
                    while left > 0 {
                        let sz = rng.random_range(3u32..=15).min(left);
                        let t = t0 + (rng.random::<f64>() * s(*duration_s) as f64) as u64;
                        out.push((
                            t,
                            Timed::Consume {
                                side: *side,
                                tick: c,
                                size: sz,
                            },
                        ));
                        left -= sz;
                    }
                }
                Action::Sweep {
                    aggressor,
                    size,
                    prices,
                    limit,
                } => {
                    out.push((
                        t0,
                        Timed::Sweep {
                            aggressor: *aggressor,
                            size: *size,
                            prices: *prices,
                            limit: limit.map(Self::tick_of),
                        },
                    ));
                }
                Action::Options {
                    customer,
                    strikes,
                    rights,
                    contracts,
                    duration_s,
                } => {
                    let mut ids = Vec::new();
                    for k in strikes {
                        for r in rights {
                            let idx = self.option_index(*k, *r).ok_or_else(|| {
                                SynthError::Config(format!(
                                    "scenario options strike {k} is outside the listed chain \
                                     ({} to {})",
                                    self.strikes_lo,
                                    self.strikes_lo + (self.options.len() / 2 - 1) as f64
                                ))
                            })?;
                            ids.push(idx);
                        }
                    }
                    let mut left = *contracts;
                    let mut i = 0usize;
                    while left > 0 {
                        let sz = rng.random_range(10u32..=80).min(left);
                        let t = t0 + (rng.random::<f64>() * s(*duration_s) as f64) as u64;
                        out.push((
                            t,
                            Timed::OptionTrade {
                                customer: *customer,
                                opt: ids[i % ids.len()],
                                size: sz,
                            },
                        ));
                        left -= sz;
                        i += 1;
                    }
                }
                Action::Regime { busy, duration_s } => {
                    self.forced.push((t0, t0 + s(*duration_s), *busy));
                }
            }
        }
        // Stable sort keeps the script order for equal times.
        out.sort_by_key(|(t, _)| *t);
        Ok(out)
    }

    fn option_index(&self, strike: f64, right: Right) -> Option<usize> {
        let i = strike - self.strikes_lo;
        if i < -1e-9 || (i - i.round()).abs() > 1e-9 {
            return None;
        }
        let idx = i.round() as usize * 2 + usize::from(right == Right::Put);
        (idx < self.options.len()).then_some(idx)
    }

    // ---------------------------------------------------------------- main loop

    fn event_loop(
        &mut self,
        timed: &[(u64, Timed)],
        progress: Option<&dyn Fn(Progress)>,
    ) -> Result<(), SynthError> {
        let mut ti = 0usize;
        let r0 = self.rate(self.start_ns);
        let mut t_es = self.start_ns + exp_ns(&mut self.rng, r0);
        let mut t_opt = if self.cfg.option_rate > 0.0 {
            self.start_ns + exp_ns(&mut self.rng_opt, self.cfg.option_rate)
        } else {
            u64::MAX
        };
        let mut t_spy = if self.spy.is_some() {
            self.start_ns + exp_ns(&mut self.rng_spy, self.cfg.spy_rate)
        } else {
            u64::MAX
        };
        let mut iter = 0u64;
        let total = self.end_ns - self.start_ns;
        loop {
            let t_timed = timed.get(ti).map_or(u64::MAX, |x| x.0);
            let t = t_timed.min(t_es).min(t_opt).min(t_spy);
            if t >= self.end_ns {
                break;
            }
            self.update_regime(t);
            if t == t_timed {
                let action = timed[ti].1;
                ti += 1;
                self.timed(t, action)?;
                if self.book.spread().is_none_or(|s| s > 1) {
                    t_es = t_es.min(t + self.rng.random_range(20_000u64..300_000));
                }
            } else if t == t_es {
                self.es_event(t)?;
                t_es = if self.book.spread().is_none_or(|s| s > 1) {
                    t + self.rng.random_range(20_000u64..300_000)
                } else {
                    let r = self.rate(t);
                    t + exp_ns(&mut self.rng, r)
                };
            } else if t == t_opt {
                self.background_option_trade(t)?;
                let busy = if self.busy { 2.0 } else { 1.0 };
                t_opt = t + exp_ns(&mut self.rng_opt, self.cfg.option_rate * busy);
            } else {
                self.spy_trade(t)?;
                let busy = if self.busy { 2.0 } else { 1.0 };
                t_spy = t + exp_ns(&mut self.rng_spy, self.cfg.spy_rate * busy);
            }
            iter += 1;
            if iter & 0x3fff == 0
                && let Some(p) = progress
            {
                p(Progress {
                    done_ns: t - self.start_ns,
                    total_ns: total,
                    records: self.records(),
                });
            }
        }
        if let Some(p) = progress {
            p(Progress {
                done_ns: total,
                total_ns: total,
                records: self.records(),
            });
        }
        Ok(())
    }

    fn records(&self) -> u64 {
        self.mbp.records()
            + self.trades.records()
            + self.opra.records()
            + self.spy.as_ref().map_or(0, |s| s.records())
    }

    /// Minutes-since-open U shape of activity (regular session 09:30–16:00 ET).
    fn intraday(&self, t: u64) -> f64 {
        let sod = self.start_sod + (t - self.start_ns) as f64 / 1e9;
        let m = (sod - 34_200.0) / 60.0;
        if !(0.0..=390.0).contains(&m) {
            return 0.35;
        }
        1.0 + (-m / 25.0).exp() + 0.7 * (-(390.0 - m) / 25.0).exp()
    }

    fn rate(&self, t: u64) -> f64 {
        let busy = if self.busy {
            self.cfg.busy_multiplier
        } else {
            1.0
        };
        self.cfg.event_rate * self.intraday(t) * busy
    }

    fn update_regime(&mut self, t: u64) {
        if let Some(&(_, _, b)) = self.forced.iter().find(|(a, z, _)| t >= *a && t < *z) {
            self.busy = b;
            return;
        }
        while t >= self.regime_until {
            self.busy = !self.busy;
            let mean = if self.busy {
                self.cfg.busy_mean_s
            } else {
                self.cfg.quiet_mean_s
            };
            self.regime_until += exp_ns(&mut self.rng_regime, 1.0 / mean);
        }
    }

    fn update_fair(&mut self, t: u64) {
        let dt = (t.saturating_sub(self.fair_t)) as f64 / 1e9;
        self.fair_t = t;
        if let Some(d) = self.drift {
            if t < d.t1 {
                let f = (t.saturating_sub(d.t0)) as f64 / (d.t1 - d.t0).max(1) as f64;
                self.fair = d.from + (d.to - d.from) * f;
                return;
            }
            if t < d.hold_end {
                self.fair = d.to;
                return;
            }
            self.fair = d.to;
            self.drift = None;
            return;
        }
        if dt > 0.0 && self.sigma_tick > 0.0 {
            let vm = if self.busy { 1.6 } else { 0.8 };
            let z: f64 = self.rng.sample(StandardNormal);
            self.fair += self.sigma_tick * vm * (dt * self.intraday(t)).sqrt() * z;
        }
        let (lo, hi) = self.book.tick_range();
        self.fair = self.fair.clamp(lo as f64 + 1000.0, hi as f64 - 1000.0);
    }

    // ---------------------------------------------------------------- ES records

    fn begin(&mut self, t: u64) {
        self.t = t;
        let lat = 8_000 + self.rng.random_range(0u64..60_000);
        self.recv = (t + lat).max(self.last_recv);
        self.last_recv = self.recv;
        self.in_delta = self.rng.random_range(3_000i32..20_000);
    }

    fn image(&self) -> [BidAskPair; 10] {
        let bids = self.book.rows::<10>(BookSide::Bid);
        let asks = self.book.rows::<10>(BookSide::Ask);
        std::array::from_fn(|i| {
            let (b, a) = (bids[i], asks[i]);
            BidAskPair {
                bid_px: b.tick.map_or(UNDEF_PRICE, |t| t * TICK_PX),
                ask_px: a.tick.map_or(UNDEF_PRICE, |t| t * TICK_PX),
                bid_sz: b.size,
                ask_sz: a.size,
                bid_ct: b.count,
                ask_ct: a.count,
            }
        })
    }

    fn push_mbp(&mut self, action: u8, side: u8, tick: i64, size: u32, depth: u8, flags: u8) {
        self.seq = self.seq.wrapping_add(1);
        let rec = Mbp10Msg {
            hd: RecordHeader::new::<Mbp10Msg>(
                rtype::MBP_10,
                Publisher::GlbxMdp3Glbx as u16,
                ES_INSTRUMENT_ID,
                self.t,
            ),
            price: tick * TICK_PX,
            size,
            action: action as std::ffi::c_char,
            side: side as std::ffi::c_char,
            flags: FlagSet::new(flags),
            depth,
            ts_recv: self.recv,
            ts_in_delta: self.in_delta,
            sequence: self.seq,
            levels: self.image(),
        };
        self.pending_mbp.push(rec);
    }

    fn push_trade(&mut self, aggressor: Aggressor, tick: i64, size: u32) {
        let side = match aggressor {
            Aggressor::Buy => b'B',
            Aggressor::Sell => b'A',
        };
        // The MBP-10 trade record shows the book before the fill.
        self.push_mbp(b'T', side, tick, size, 0, 0);
        self.pending_trades.push(TradeMsg {
            hd: RecordHeader::new::<TradeMsg>(
                rtype::MBP_0,
                Publisher::GlbxMdp3Glbx as u16,
                ES_INSTRUMENT_ID,
                self.t,
            ),
            price: tick * TICK_PX,
            size,
            action: b'T' as std::ffi::c_char,
            side: side as std::ffi::c_char,
            flags: FlagSet::empty(),
            depth: 0,
            ts_recv: self.recv,
            ts_in_delta: self.in_delta,
            sequence: self.seq,
        });
        self.es_trades += 1;
        self.es_last = tick;
        self.es_low = self.es_low.min(tick);
        self.es_high = self.es_high.max(tick);
    }

    /// Writes the event's records, `F_LAST` on the last of each file.
    fn end(&mut self) -> Result<(), SynthError> {
        if let Some(last) = self.pending_mbp.last_mut() {
            last.flags = FlagSet::new(last.flags.raw() | dbn::flags::LAST);
        }
        if let Some(last) = self.pending_trades.last_mut() {
            last.flags = FlagSet::new(last.flags.raw() | dbn::flags::LAST);
        }
        for r in &self.pending_mbp {
            self.mbp.write(r)?;
        }
        for r in &self.pending_trades {
            self.trades.write(r)?;
        }
        self.pending_mbp.clear();
        self.pending_trades.clear();
        Ok(())
    }

    fn initial_book(&mut self) -> Result<(), SynthError> {
        self.begin(self.start_ns);
        let c = (self.fair + 0.5).round() as i64; // best ask; best bid one tick below
        for k in 0..20i64 {
            for side in [BookSide::Bid, BookSide::Ask] {
                let tick = if side == BookSide::Bid {
                    c - 1 - k
                } else {
                    c + k
                };
                let target = PROFILE[(k as usize).min(13)] * self.cfg.depth_scale;
                let size = ((target * self.rng.random_range(0.6..1.4)).round() as u32).max(1);
                let count = (size / 3).clamp(1, 60);
                self.book.set_level(side, tick, Level { size, count });
                let depth = k as u8;
                self.push_mbp(
                    b'A',
                    side.dbn_char(),
                    tick,
                    size,
                    depth,
                    dbn::flags::SNAPSHOT,
                );
            }
        }
        self.end()
    }

    fn zone_at(&self, side: BookSide, tick: i64, t: u64) -> Option<ZoneKind> {
        self.zones
            .iter()
            .rev()
            .find(|z| z.side == side && tick >= z.lo && tick <= z.hi && t >= z.t0 && t < z.t1)
            .map(|z| z.kind)
    }

    fn mid_offset(&self) -> f64 {
        let mid = self.book.mid().unwrap_or(self.fair);
        (self.fair - mid).clamp(-6.0, 6.0)
    }

    fn es_event(&mut self, t: u64) -> Result<(), SynthError> {
        self.update_fair(t);
        self.begin(t);
        match (self.book.best_bid(), self.book.best_ask()) {
            (Some(b), Some(a)) if a - b > 1 => self.gap_fill(b, a),
            (Some(b), None) => self.add_order(BookSide::Ask, b + 1, None),
            (None, Some(a)) => self.add_order(BookSide::Bid, a - 1, None),
            (None, None) => {
                let c = (self.fair + 0.5).round() as i64;
                self.add_order(BookSide::Bid, c - 1, None);
                self.add_order(BookSide::Ask, c, None);
            }
            _ => {
                let d = self.mid_offset();
                let share = (self.cfg.trade_share * (1.0 + 0.4 * d.abs())).min(0.5);
                if self.rng.random::<f64>() < share {
                    let p_buy = (0.5 + 0.1 * d).clamp(0.05, 0.95);
                    let aggr = if self.rng.random::<f64>() < p_buy {
                        Aggressor::Buy
                    } else {
                        Aggressor::Sell
                    };
                    let size = pareto_size(&mut self.rng, 1.3, 1.2, 300);
                    self.market_order(aggr, size, 2, None, None);
                } else {
                    self.touch(t);
                }
            }
        }
        self.end()
    }

    fn add_order(&mut self, side: BookSide, tick: i64, cap: Option<u32>) {
        let mut size = pareto_size(&mut self.rng, 1.6, 1.5, 200);
        if let Some(c) = cap {
            size = size.min(c);
        }
        if self.book.add(side, tick, size) {
            let depth = self.book.depth_of(side, tick);
            self.push_mbp(b'A', side.dbn_char(), tick, size, depth, 0);
        }
    }

    fn gap_fill(&mut self, b: i64, a: i64) {
        let d = self.mid_offset();
        let mut p_bid = (0.5 + 0.2 * d).clamp(0.1, 0.9);
        let bid_vac = matches!(
            self.zone_at(BookSide::Bid, b + 1, self.t),
            Some(ZoneKind::Vacuum { .. })
        );
        let ask_vac = matches!(
            self.zone_at(BookSide::Ask, a - 1, self.t),
            Some(ZoneKind::Vacuum { .. })
        );
        // Nobody steps into a vacuum unless the fair price is pulling that way (and then only
        // with one-lot orders, see the caps below).
        if bid_vac && !ask_vac && d <= 0.5 {
            p_bid = 0.03;
        } else if ask_vac && !bid_vac && d >= -0.5 {
            p_bid = 0.97;
        }
        if self.rng.random::<f64>() < p_bid {
            self.add_order(BookSide::Bid, b + 1, bid_vac.then_some(1));
        } else {
            self.add_order(BookSide::Ask, a - 1, ask_vac.then_some(1));
        }
    }

    fn touch(&mut self, t: u64) {
        let side = if self.rng.random::<bool>() {
            BookSide::Bid
        } else {
            BookSide::Ask
        };
        let u: f64 = self.rng.random();
        let mut acc = 0.0;
        let mut k = TOUCH_W.len() - 1;
        for (i, w) in TOUCH_W.iter().enumerate() {
            acc += w;
            if u < acc {
                k = i;
                break;
            }
        }
        let Some(best) = self.book.best(side) else {
            return;
        };
        let tick = match side {
            BookSide::Bid => best - k as i64,
            BookSide::Ask => best + k as i64,
        };
        let lvl = self.book.level(side, tick);
        let d = self.mid_offset();
        let mut target = PROFILE[k] * self.cfg.depth_scale;
        let ahead = (side == BookSide::Ask && d > 0.0) || (side == BookSide::Bid && d < 0.0);
        if k < 6 {
            target *= if ahead {
                (-0.45 * d.abs()).exp()
            } else {
                1.0 + 0.1 * d.abs()
            };
        }
        let mut add_scale = 1.0;
        let mut cap = None;
        let mut no_cancel = false;
        match self.zone_at(side, tick, t) {
            Some(ZoneKind::Vacuum { residual }) => {
                target = f64::from(residual);
                add_scale = 0.15;
                cap = Some(1);
            }
            Some(ZoneKind::Wall) => no_cancel = true,
            None => {}
        }
        let p_add = if no_cancel {
            1.0
        } else if target + f64::from(lvl.size) <= 0.0 {
            0.0
        } else {
            add_scale * target / (target + f64::from(lvl.size))
        };
        if self.rng.random::<f64>() < p_add {
            self.add_order(side, tick, cap);
        } else if lvl.size > 0 {
            self.cancel(side, tick, lvl, None);
        }
    }

    fn cancel(&mut self, side: BookSide, tick: i64, lvl: Level, amount: Option<u32>) {
        let size = amount
            .unwrap_or_else(|| pareto_size(&mut self.rng, 1.6, 1.5, 200))
            .min(lvl.size);
        if size == 0 {
            return;
        }
        let depth = self.book.depth_of(side, tick);
        let orders = if size == lvl.size {
            lvl.count
        } else {
            (size * lvl.count / lvl.size).max(1)
        };
        self.book.remove(side, tick, size, orders);
        self.push_mbp(b'C', side.dbn_char(), tick, size, depth, 0);
    }

    /// An aggressive order walking at most `max_prices` levels; `only` restricts it to one price,
    /// `limit` stops it before prices beyond the limit.
    fn market_order(
        &mut self,
        aggr: Aggressor,
        size: u32,
        max_prices: u32,
        only: Option<i64>,
        limit: Option<i64>,
    ) -> u32 {
        let passive = match aggr {
            Aggressor::Buy => BookSide::Ask,
            Aggressor::Sell => BookSide::Bid,
        };
        let mut left = size;
        let mut filled = 0;
        let mut n = 0;
        while left > 0 && n < max_prices {
            let Some(best) = self.book.best(passive) else {
                break;
            };
            if only.is_some_and(|o| o != best) {
                break;
            }
            let beyond = match aggr {
                Aggressor::Buy => limit.is_some_and(|l| best > l),
                Aggressor::Sell => limit.is_some_and(|l| best < l),
            };
            if beyond {
                break;
            }
            let lvl = self.book.level(passive, best);
            let fill = left.min(lvl.size);
            if fill == 0 {
                break;
            }
            self.push_trade(aggr, best, fill);
            let orders = if fill == lvl.size {
                lvl.count
            } else {
                (fill * lvl.count / lvl.size).max(1)
            };
            self.book.remove(passive, best, fill, orders);
            self.push_mbp(b'C', passive.dbn_char(), best, fill, 0, 0);
            left -= fill;
            filled += fill;
            n += 1;
        }
        filled
    }

    fn timed(&mut self, t: u64, action: Timed) -> Result<(), SynthError> {
        self.update_fair(t);
        self.begin(t);
        match action {
            Timed::DriftStart { t1, hold_end, to } => {
                self.drift = Some(Drift {
                    t0: t,
                    t1,
                    hold_end,
                    from: self.fair,
                    to,
                });
            }
            Timed::Pull { zone, left } => {
                let z = self.zones[zone];
                let residual = match z.kind {
                    ZoneKind::Vacuum { residual } => residual,
                    ZoneKind::Wall => 0,
                };
                for tick in z.lo..=z.hi {
                    let lvl = self.book.level(z.side, tick);
                    if lvl.size > residual {
                        let excess = lvl.size - residual;
                        let amt = excess.div_ceil(left.max(1));
                        self.cancel(z.side, tick, lvl, Some(amt));
                    }
                }
            }
            Timed::WallAdd { side, tick, size } => {
                if self.book.add(side, tick, size) {
                    let depth = self.book.depth_of(side, tick);
                    self.push_mbp(b'A', side.dbn_char(), tick, size, depth, 0);
                } else {
                    self.skipped += 1;
                }
            }
            Timed::Consume { side, tick, size } => {
                let aggr = match side {
                    BookSide::Bid => Aggressor::Sell,
                    BookSide::Ask => Aggressor::Buy,
                };
                if self.market_order(aggr, size, 1, Some(tick), None) == 0 {
                    self.skipped += 1;
                }
            }
            Timed::Sweep {
                aggressor,
                size,
                prices,
                limit,
            } => {
                if self.market_order(aggressor, size, prices, None, limit) == 0 {
                    self.skipped += 1;
                }
            }
            Timed::OptionTrade {
                customer,
                opt,
                size,
            } => {
                self.option_trade(t, opt, customer, size)?;
            }
        }
        self.end()
    }

    // ---------------------------------------------------------------- options and SPY

    fn spy_price(&self) -> f64 {
        self.book.mid().unwrap_or(self.fair) * TICK / 10.0
    }

    fn write_definitions(&mut self) -> Result<(), SynthError> {
        let date = self.cfg.date;
        for o in &self.options {
            let mut d = InstrumentDefMsg {
                hd: RecordHeader::new::<InstrumentDefMsg>(
                    rtype::INSTRUMENT_DEF,
                    Publisher::OpraPillarOpra as u16,
                    o.id,
                    self.start_ns,
                ),
                ts_recv: self.start_ns,
                ..Default::default()
            };
            d.min_price_increment = CENT_PX;
            d.display_factor = 1_000_000_000;
            d.expiration = self.expiry_ns;
            d.activation = self.start_ns;
            d.strike_price = (o.strike * 1e9).round() as i64;
            d.raw_instrument_id = u64::from(o.id);
            d.contract_multiplier = 100;
            d.min_lot_size_round_lot = 1;
            d.currency = cchars("USD");
            d.strike_price_currency = cchars("USD");
            d.raw_symbol =
                str_to_c_chars(&o.raw_symbol).map_err(|e| SynthError::Config(e.to_string()))?;
            d.exchange = cchars("OPRA");
            d.asset = cchars("SPY");
            d.underlying = cchars("SPY");
            d.instrument_class = o.right.letter() as std::ffi::c_char;
            d.security_update_action = b'A' as std::ffi::c_char;
            d.maturity_year = chrono::Datelike::year(&date) as u16;
            d.maturity_month = chrono::Datelike::month(&date) as u8;
            d.maturity_day = chrono::Datelike::day(&date) as u8;
            self.opt_seq += 1;
            self.opra.write(&d)?;
        }
        Ok(())
    }

    fn background_option_trade(&mut self, t: u64) -> Result<(), SynthError> {
        let s = self.spy_price();
        let z: f64 = self.rng_opt.sample(StandardNormal);
        let k = (s + 2.5 * z).round();
        let right = if self.rng_opt.random::<bool>() {
            Right::Call
        } else {
            Right::Put
        };
        let customer = if self.rng_opt.random::<bool>() {
            Customer::Buy
        } else {
            Customer::Sell
        };
        let size = pareto_size(&mut self.rng_opt, 1.25, 1.0, 300);
        match self.option_index(k, right) {
            Some(idx) => self.option_trade(t, idx, customer, size),
            None => Ok(()),
        }
    }

    fn option_trade(
        &mut self,
        t: u64,
        idx: usize,
        customer: Customer,
        size: u32,
    ) -> Result<(), SynthError> {
        let s = self.spy_price();
        let o = &self.options[idx];
        let t_years = ((self.expiry_ns as f64 - t as f64).max(MIN_T_NS)) / YEAR_NS;
        let r = self.cfg.risk_free_rate;
        let vol = self.cfg.smile.vol(s, o.strike);
        let theo = bs_price(o.right, s, o.strike, t_years, r, vol);
        let (lb, ub) = no_arb_bounds(o.right, s, o.strike, t_years, r);
        let half = 0.4 + 0.6 * theo.min(10.0); // cents
        let theo_c = theo * 100.0;
        let lb_c = (lb * 100.0 - 1e-6).ceil() as i64;
        let ub_c = (ub * 100.0 + 1e-6).floor() as i64;
        let mut bid_c = ((theo_c - half).floor() as i64).max(lb_c).max(1);
        let ask_c = ((theo_c + half).ceil() as i64).max(bid_c + 1).min(ub_c);
        if ask_c <= bid_c {
            bid_c = ask_c - 1;
        }
        if bid_c < 1 {
            self.skipped += 1;
            return Ok(());
        }
        let (price_c, side) = match customer {
            Customer::Buy => (ask_c, b'B'),
            Customer::Sell => (bid_c, b'A'),
        };
        let id = o.id;
        let venue = OPRA_VENUES[self.rng_opt.random_range(0..OPRA_VENUES.len())] as u16;
        let lat = 20_000 + self.rng_opt.random_range(0u64..200_000);
        let recv = (t + lat).max(self.opt_last_recv);
        self.opt_last_recv = recv;
        let bid_sz = self.rng_opt.random_range(5u32..300);
        let ask_sz = self.rng_opt.random_range(5u32..300);
        let mut rec = Cmbp1Msg::default_for_schema(Schema::Tcbbo);
        rec.hd = RecordHeader::new::<Cmbp1Msg>(rtype::TCBBO, venue, id, t);
        rec.price = price_c * CENT_PX;
        rec.size = size;
        rec.action = b'T' as std::ffi::c_char;
        rec.side = side as std::ffi::c_char;
        rec.flags = FlagSet::new(dbn::flags::LAST);
        rec.ts_recv = recv;
        rec.ts_in_delta = 0;
        rec.levels = [ConsolidatedBidAskPair {
            bid_px: bid_c * CENT_PX,
            ask_px: ask_c * CENT_PX,
            bid_sz,
            ask_sz,
            bid_pb: OPRA_VENUES[(id as usize) % OPRA_VENUES.len()] as u16,
            ask_pb: OPRA_VENUES[(id as usize + 1) % OPRA_VENUES.len()] as u16,
            ..Default::default()
        }];
        self.opt_seq += 1;
        self.option_trades += 1;
        self.opra.write(&rec)
    }

    fn spy_trade(&mut self, t: u64) -> Result<(), SynthError> {
        let spy = self.spy_price() + self.cfg.spy_basis;
        let buy = self.rng_spy.random::<bool>();
        let price_c = if buy {
            (spy * 100.0 - 1e-6).ceil()
        } else {
            (spy * 100.0 + 1e-6).floor()
        } as i64;
        let size = if self.rng_spy.random::<f64>() < 0.6 {
            100 * self.rng_spy.random_range(1u32..=5)
        } else {
            self.rng_spy.random_range(1u32..100)
        };
        let lat = 5_000 + self.rng_spy.random_range(0u64..50_000);
        let recv = (t + lat).max(self.spy_last_recv);
        self.spy_last_recv = recv;
        self.spy_seq += 1;
        let rec = TradeMsg {
            hd: RecordHeader::new::<TradeMsg>(
                rtype::MBP_0,
                Publisher::XnasItchXnas as u16,
                SPY_INSTRUMENT_ID,
                t,
            ),
            price: price_c * CENT_PX,
            size,
            action: b'T' as std::ffi::c_char,
            side: if buy { b'B' } else { b'A' } as std::ffi::c_char,
            flags: FlagSet::new(dbn::flags::LAST),
            depth: 0,
            ts_recv: recv,
            ts_in_delta: 0,
            sequence: self.spy_seq,
        };
        self.spy_trades += 1;
        match self.spy.as_mut() {
            Some(out) => out.write(&rec),
            None => Ok(()),
        }
    }

    fn finish(self) -> Result<SynthSummary, SynthError> {
        let es_records = self.mbp.records() + self.trades.records();
        let option_definitions = self.options.len() as u64;
        let mut files = Vec::new();
        for out in [Some(self.mbp), Some(self.trades), Some(self.opra), self.spy]
            .into_iter()
            .flatten()
        {
            let (path, records) = out.finish()?;
            files.push(OutputFile { path, records });
        }
        Ok(SynthSummary {
            files,
            es_records,
            es_trades: self.es_trades,
            option_trades: self.option_trades,
            option_definitions,
            spy_trades: self.spy_trades,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            es_low: self.es_low as f64 * TICK,
            es_high: self.es_high as f64 * TICK,
            es_last: self.es_last as f64 * TICK,
            skipped_actions: self.skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osi_symbols_follow_the_occ_layout() {
        let d = chrono::NaiveDate::from_ymd_opt(2025, 11, 21).unwrap();
        assert_eq!(
            osi_symbol("SPY", d, Right::Call, 687.0),
            "SPY   251121C00687000"
        );
        assert_eq!(
            osi_symbol("SPY", d, Right::Put, 687.5),
            "SPY   251121P00687500"
        );
    }

    #[test]
    fn pareto_sizes_are_heavy_tailed_and_bounded() {
        let mut rng = seeded(1, 1);
        let v: Vec<u32> = (0..20_000)
            .map(|_| pareto_size(&mut rng, 1.3, 1.2, 300))
            .collect();
        assert!(v.iter().all(|&x| (1..=300).contains(&x)));
        let ones = v.iter().filter(|&&x| x == 1).count();
        let big = v.iter().filter(|&&x| x >= 20).count();
        assert!(ones > 5_000, "most prints are small: {ones}");
        assert!(big > 100, "a heavy tail: {big}");
    }

    #[test]
    fn streams_depend_on_seed_and_stream_id() {
        let a: u64 = seeded(1, 1).random();
        let b: u64 = seeded(1, 2).random();
        let c: u64 = seeded(2, 1).random();
        let a2: u64 = seeded(1, 1).random();
        assert_eq!(a, a2);
        assert!(a != b && a != c);
    }
}
