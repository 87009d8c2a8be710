//! Market state, PHYSICS.md §1: the followed futures contract, the ES/SPY ratio, spot, the
//! session (VWAP, extremes, option flows) and the trade and book buffers.
//!
//! Every event is applied as it arrives, on event time. Symbols are compared as `&str` against
//! the stored ones (no allocation); a contract is stored once, when first seen.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::America::New_York;

use super::aggressor::{self, TickState};
use super::barrier::{Barrier, MAX_PRICE, to_tick};
use super::config::{Config, FuelExpiry};
use super::fuel::{FlowBook, FlowKey, strike_key};
use super::greeks::BsInputs;
use super::stats::EngineStats;
use super::tape::TapeTrade;
use crate::event::{FuturesTrade, Mbp10, OptionTrade, StockTrade};

const NS_PER_S: i64 = 1_000_000_000;
const SECONDS_PER_YEAR: f64 = 365.0 * 86_400.0;
/// Extra time kept in the trade buffer beyond the longest tape window.
const BUFFER_MARGIN_NS: u64 = 1_000_000_000;

/// The trading date of a timestamp: the US/Eastern date of (timestamp + 6 h).
pub fn trading_date(ts_ns: u64) -> NaiveDate {
    let secs = (ts_ns / 1_000_000_000) as i64 + 6 * 3600;
    let utc = DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::UNIX_EPOCH);
    utc.with_timezone(&New_York).date_naive()
}

/// UTC nanoseconds of a US/Eastern wall time on `date` (the earlier instant if ambiguous).
fn eastern_ns(date: NaiveDate, hour: u32) -> Option<i64> {
    let local = date.and_hms_opt(hour, 0, 0)?;
    let instant = New_York.from_local_datetime(&local).earliest()?;
    instant.timestamp_nanos_opt()
}

/// First instant of the trading date after `date` (18:00 ET on `date`).
pub fn session_end_ns(date: NaiveDate) -> u64 {
    let next = date.succ_opt().unwrap_or(date);
    eastern_ns(next, 0)
        .map(|ns| ns - 6 * 3600 * NS_PER_S)
        .unwrap_or(i64::MAX)
        .max(0) as u64
}

/// 16:00 ET on `date`, UTC nanoseconds.
pub fn expiry_close_ns(date: NaiveDate) -> Option<i64> {
    eastern_ns(date, 16)
}

/// Parses `YYYY-MM-DD` without allocating.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// Session statistics of one futures contract.
#[derive(Debug, Clone)]
struct Contract {
    symbol: String,
    volume: u64,
    pv: f64,
    high: f64,
    low: f64,
    last: f64,
}

impl Contract {
    fn new(symbol: &str) -> Contract {
        Contract {
            symbol: symbol.to_string(),
            volume: 0,
            pv: 0.0,
            high: f64::NEG_INFINITY,
            low: f64::INFINITY,
            last: f64::NAN,
        }
    }

    fn reset_session(&mut self) {
        self.volume = 0;
        self.pv = 0.0;
        self.high = f64::NEG_INFINITY;
        self.low = f64::INFINITY;
    }
}

/// Everything the engine knows about the market between snaps.
#[derive(Debug, Clone)]
pub struct Market {
    contracts: Vec<Contract>,
    followed: Option<usize>,
    /// Whether the followed contract is fixed by `--futures-symbol`.
    pinned: bool,
    trade_seen: bool,
    book_seen: bool,
    last_spy: Option<f64>,
    default_ratio: f64,
    tick_size: f64,
    buffer_ns: u64,
    /// ES trades of the followed contract (tape buffer).
    pub trades: VecDeque<TapeTrade>,
    /// Book images and pair records of the followed contract.
    pub barrier: Barrier,
    /// Option flows of the session.
    pub flows: FlowBook,
    ticks: HashMap<FlowKey, TickState>,
    session_date: Option<NaiveDate>,
    session_end: u64,
    expiry_cache: Option<(NaiveDate, Option<i64>)>,
}

impl Market {
    pub fn new(cfg: &Config) -> Market {
        let mut market = Market {
            contracts: Vec::new(),
            followed: None,
            pinned: false,
            trade_seen: false,
            book_seen: false,
            last_spy: None,
            default_ratio: cfg.es_spy_ratio,
            tick_size: cfg.es_tick_size,
            buffer_ns: cfg
                .tape_window_ms
                .max(cfg.velocity_window_ms)
                .saturating_mul(1_000_000)
                + BUFFER_MARGIN_NS,
            trades: VecDeque::new(),
            barrier: Barrier::new(
                cfg.barrier_window_ms.saturating_mul(1_000_000),
                cfg.es_tick_size,
                cfg.barrier_zone_ticks,
            ),
            flows: FlowBook::default(),
            ticks: HashMap::new(),
            session_date: None,
            session_end: 0,
            expiry_cache: None,
        };
        if let Some(symbol) = cfg.futures_symbol.as_deref() {
            market.contracts.push(Contract::new(symbol));
            market.followed = Some(0);
            market.pinned = true;
        }
        market
    }

    /// Resets the session when `ts` is past its end (never backwards).
    pub fn roll_session(&mut self, ts: u64, stats: &mut EngineStats) {
        if ts < self.session_end {
            return;
        }
        let date = trading_date(ts);
        if self.session_date.is_some() {
            stats.session_resets += 1;
        }
        self.session_date = Some(date);
        self.session_end = session_end_ns(date);
        for c in &mut self.contracts {
            c.reset_session();
        }
        self.flows.clear();
    }

    /// The current trading date, once an event has been seen.
    pub fn session_date(&self) -> Option<NaiveDate> {
        self.session_date
    }

    fn contract_index(&mut self, symbol: &str) -> usize {
        match self.contracts.iter().position(|c| c.symbol == symbol) {
            Some(i) => i,
            None => {
                self.contracts.push(Contract::new(symbol));
                self.contracts.len() - 1
            }
        }
    }

    /// Index of an outright contract's entry, adopting it as followed when none is yet;
    /// `None` for calendar spreads.
    fn futures_contract(&mut self, symbol: &str, stats: &mut EngineStats) -> Option<usize> {
        // A byte loop (a short symbol costs less than a `memchr` call); '-' is ASCII, so this is
        // `contains('-')`.
        let is_spread = |s: &str| s.bytes().any(|b| b == b'-');
        // Fast path: nearly every event is of the followed contract. Symbols are unique in
        // `contracts`, so this is the index `contract_index` would find; a followed symbol with
        // a '-' (pinned spread) takes the general path, which counts it.
        if let Some(i) = self.followed {
            let followed = self.contracts[i].symbol.as_str();
            // Byte by byte: a short symbol costs less than a `memcmp` call.
            let same = followed.len() == symbol.len()
                && followed.bytes().zip(symbol.bytes()).all(|(a, b)| a == b);
            if same && !is_spread(followed) {
                return Some(i);
            }
        }
        if is_spread(symbol) {
            stats.spread_events += 1;
            return None;
        }
        let i = self.contract_index(symbol);
        if self.followed.is_none() {
            self.followed = Some(i);
        }
        Some(i)
    }

    pub fn on_futures_trade(&mut self, t: &FuturesTrade, stats: &mut EngineStats) {
        let Some(i) = self.futures_contract(&t.symbol, stats) else {
            return;
        };
        if !(t.price.is_finite() && t.price > 0.0 && t.price < MAX_PRICE) {
            stats.non_finite_prices += 1;
            return;
        }
        let c = &mut self.contracts[i];
        c.volume += t.size as u64;
        c.pv += t.price * t.size as f64;
        c.high = c.high.max(t.price);
        c.low = c.low.min(t.price);
        c.last = t.price;
        if self.followed != Some(i) {
            stats.other_contract_events += 1;
            return;
        }
        self.trade_seen = true;
        let tick = to_tick(t.price, 1.0 / self.tick_size);
        self.barrier.on_trade(tick, t.size, t.aggressor);
        while self
            .trades
            .front()
            .is_some_and(|f| f.ts.saturating_add(self.buffer_ns) < t.ts_event_ns)
        {
            self.trades.pop_front();
        }
        self.trades.push_back(TapeTrade {
            ts: t.ts_event_ns,
            price: t.price,
            size: t.size,
            aggressor: t.aggressor.signum(),
        });
    }

    pub fn on_mbp10(&mut self, m: &Mbp10, stats: &mut EngineStats) {
        let Some(i) = self.futures_contract(&m.symbol, stats) else {
            return;
        };
        if self.followed != Some(i) {
            stats.other_contract_events += 1;
            return;
        }
        let issues = self.barrier.on_mbp10(m);
        stats.non_finite_prices += issues.non_finite_prices;
        if issues.crossed {
            stats.crossed_books += 1;
        }
        self.book_seen = true;
    }

    pub fn on_stock_trade(&mut self, t: &StockTrade, underlying: &str, stats: &mut EngineStats) {
        if t.symbol != underlying {
            stats.unknown_symbols += 1;
            return;
        }
        if !(t.price.is_finite() && t.price > 0.0) {
            stats.non_finite_prices += 1;
            return;
        }
        self.last_spy = Some(t.price);
    }

    /// Records an option trade in the session flows (PHYSICS.md §1 "Option flows").
    pub fn on_option_trade(&mut self, o: &OptionTrade, cfg: &Config, stats: &mut EngineStats) {
        if o.underlying != cfg.underlying {
            stats.unknown_symbols += 1;
            return;
        }
        if !(o.price.is_finite() && o.strike.is_finite() && o.strike > 0.0 && o.price >= 0.0) {
            stats.non_finite_prices += 1;
            return;
        }
        let right = match o.right {
            'C' | 'c' => b'C',
            'P' | 'p' => b'P',
            _ => {
                stats.options_bad_contract += 1;
                return;
            }
        };
        let Some(expiry) = parse_date(&o.exp_date) else {
            stats.options_bad_contract += 1;
            return;
        };
        let key = FlowKey {
            strike: strike_key(o.strike),
            right,
            expiry: expiry.num_days_from_ce(),
        };
        let aggressor = if o.aggressor != 0 {
            o.aggressor.signum()
        } else {
            aggressor::classify(o.price, o.opt_bid, o.opt_ask, self.ticks.get(&key).copied())
        };
        self.ticks.insert(
            key,
            TickState {
                last_price: o.price,
                last_class: aggressor,
            },
        );
        if cfg.fuel_expiry == FuelExpiry::ZeroDte && Some(expiry) != self.session_date {
            stats.options_not_0dte += 1;
            return;
        }
        let (gamma, delta) = match self.spot() {
            None => {
                stats.options_no_spot += 1;
                (0.0, 0.0)
            }
            Some(spot) => {
                let close = self.expiry_close(expiry);
                let secs = close
                    .map(|c| (c as f64 - o.ts_event_ns as f64) / 1e9)
                    .unwrap_or(0.0);
                let bs = BsInputs {
                    is_call: right == b'C',
                    spot,
                    strike: o.strike,
                    t: secs.max(cfg.min_t_s) / SECONDS_PER_YEAR,
                    r: cfg.risk_free_rate,
                };
                let sigma = bs
                    .implied_vol(o.price, cfg.iv_tolerance)
                    .unwrap_or_else(|| {
                        stats.options_default_iv += 1;
                        cfg.default_iv
                    });
                bs.gamma_delta(sigma)
            }
        };
        self.flows.record(
            key,
            o.price,
            o.size,
            aggressor,
            gamma,
            delta,
            cfg.option_multiplier,
        );
        stats.options_recorded += 1;
    }

    fn expiry_close(&mut self, date: NaiveDate) -> Option<i64> {
        match self.expiry_cache {
            Some((d, close)) if d == date => close,
            _ => {
                let close = expiry_close_ns(date);
                self.expiry_cache = Some((date, close));
                close
            }
        }
    }

    fn followed_contract(&self) -> Option<&Contract> {
        self.followed.map(|i| &self.contracts[i])
    }

    /// Symbol of the followed contract.
    pub fn followed_symbol(&self) -> Option<&str> {
        self.followed_contract().map(|c| c.symbol.as_str())
    }

    /// Whether a snap can be emitted: a trade and a book image of the followed contract.
    pub fn ready(&self) -> bool {
        self.trade_seen && self.book_seen
    }

    /// Last ES trade of the followed contract.
    fn last_es(&self) -> Option<f64> {
        self.followed_contract()
            .map(|c| c.last)
            .filter(|p| p.is_finite())
    }

    /// ES/SPY ratio: last ES trade / last SPY trade once SPY has printed, else the default.
    pub fn ratio(&self) -> f64 {
        match (self.last_es(), self.last_spy) {
            (Some(es), Some(spy)) => es / spy,
            _ => self.default_ratio,
        }
    }

    /// SPY spot = last ES trade / ratio.
    pub fn spot(&self) -> Option<f64> {
        self.last_es().map(|es| es / self.ratio())
    }

    /// Session VWAP, high and low of the followed contract (ES).
    pub fn session_es(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        match self.followed_contract() {
            Some(c) if c.volume > 0 => (Some(c.pv / c.volume as f64), Some(c.high), Some(c.low)),
            _ => (None, None, None),
        }
    }

    /// Re-chooses the followed contract (most session volume); a switch clears the buffers.
    pub fn rechoose_contract(&mut self, stats: &mut EngineStats) {
        if self.pinned {
            return;
        }
        let Some(current) = self.followed else {
            return;
        };
        let mut best = current;
        for (i, c) in self.contracts.iter().enumerate() {
            if c.volume > self.contracts[best].volume {
                best = i;
            }
        }
        if best == current {
            return;
        }
        stats.contract_switches += 1;
        self.followed = Some(best);
        self.barrier.clear();
        self.trades.clear();
        self.book_seen = false;
        self.trade_seen = self.contracts[best].last.is_finite();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trading_date_rolls_at_six_pm_eastern() {
        // 2026-11-24 22:59:59 UTC = 17:59:59 EST; 23:00:00 UTC = 18:00 EST.
        let before = 1_795_561_199u64 * 1_000_000_000;
        let after = before + 1_000_000_000;
        assert_eq!(
            DateTime::from_timestamp(before as i64 / NS_PER_S, 0)
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T22:59:59+00:00"
        );
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(trading_date(before), d);
        assert_eq!(trading_date(after), d.succ_opt().unwrap());
        assert_eq!(session_end_ns(d), after);
        // Summer time: 18:00 EDT is 22:00 UTC.
        let summer = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        let end = session_end_ns(summer);
        assert_eq!(
            DateTime::from_timestamp(end as i64 / NS_PER_S, 0)
                .unwrap()
                .to_rfc3339(),
            "2026-07-01T22:00:00+00:00"
        );
    }

    #[test]
    fn expiry_close_is_four_pm_eastern() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let close = expiry_close_ns(d).unwrap();
        assert_eq!(
            DateTime::from_timestamp(close / NS_PER_S, 0)
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T21:00:00+00:00"
        );
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(
            parse_date("2026-11-24"),
            NaiveDate::from_ymd_opt(2026, 11, 24)
        );
        assert_eq!(parse_date("2026-13-24"), None);
        assert_eq!(parse_date("2026/11/24"), None);
        assert_eq!(parse_date("20261124"), None);
        assert_eq!(parse_date("2026-1a-24"), None);
    }
}
