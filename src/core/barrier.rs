//! Barrier (resting liquidity) physics, PHYSICS.md §3, computed incrementally.
//!
//! # Definition
//! For each consecutive pair (prev, curr) of MBP-10 images in the window `[now − W_b, now)`, the
//! change Δ of the zone depth on the defending side is split into `added` (Δ > 0), `filled`
//! (`min(lost, V)` where V is the passive volume traded in the zone on the defending side between
//! the two images) and `canceled` (the rest of the loss).
//!
//! # Design (exact, and cheap both per image and per snap)
//! A pair's contribution to a zone is `f(Σ_{p ∈ zone} Δ_p, V_zone)`, which is not linear over
//! prices in general (`min(lost, V)`, and gains and losses inside one zone net out). But it *is*
//! linear for the common pair: on one side of the book, when every changed price moved the same
//! way and either all of them grew or no trade hit that side between the two images. Then a
//! zone's added (canceled) is just the sum of the per-price gains (losses) inside it. So:
//!
//! 1. **Linear (pair, side)s** go into per-price running sums: for each side and ES tick, a ring
//!    of `(prev_ts, added, canceled)` contributions with integer running sums, expired as the
//!    window moves. One push per changed price, whatever the number of levels.
//! 2. **Non-linear (pair, side)s** (mixed-sign changes, or losses while trades hit that side —
//!    roughly the pairs around trades) are kept as sparse **pair records** (their changed prices
//!    and the per-price trade volume between the two images) for one window, and are applied
//!    exactly to every **tracked zone** containing a changed price: each zone keeps a ring of its
//!    non-zero contributions and their running sums. Changed prices are routed to zones by binary
//!    search over the zones sorted by `(side, lo, hi)`.
//!
//! A zone becomes tracked the first time a snap asks for it and is then back-filled from the
//! pair records (once), which gives exactly what incremental tracking would have; zones not asked
//! for during `ZONE_RETAIN_NS` are dropped. At a snap a zone's window flows are its ≤ 5 per-price
//! sums plus its own sums, after popping expired entries: amortised O(1), independent of the
//! number of book updates in the window. Sizes are integers, so all sums are exact and
//! deterministic; a test checks the split against a from-scratch computation.
//!
//! Trades are attributed to the pair in arrival order (a trade belongs to the next image to
//! arrive). That is the spec's `prev.ts < t ≤ curr.ts` when events arrive in time order with
//! trades before book images at equal timestamps, which is the canonical merge order. Out-of-order
//! events are applied in arrival order.

use std::collections::VecDeque;

use super::config::Config;
use crate::event::{BOOK_DEPTH, Mbp10};

/// Tracked zones not queried for this long are dropped (they can be back-filled again).
const ZONE_RETAIN_NS: u64 = 20_000_000_000;
/// Per-price sums cover at most this many ticks either side of the first price seen; changes
/// beyond (corrupt prices) take the exact non-linear path instead.
const MAX_TICK_SPAN: i64 = 200_000;

/// Prices beyond this are treated as corrupt (like NaN).
pub const MAX_PRICE: f64 = 1e9;

/// Which side of the book defends a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Bids defend a support (hit by sell aggressors).
    Bid,
    /// Asks defend a resistance (lifted by buy aggressors).
    Ask,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Bid => 0,
            Side::Ask => 1,
        }
    }
}

/// Barrier classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierState {
    Vacuum,
    Wall,
    Consumed,
    Absorption,
    Weak,
    Neutral,
}

impl BarrierState {
    pub fn as_str(self) -> &'static str {
        match self {
            BarrierState::Vacuum => "VACUUM",
            BarrierState::Wall => "WALL",
            BarrierState::Consumed => "CONSUMED",
            BarrierState::Absorption => "ABSORPTION",
            BarrierState::Weak => "WEAK",
            BarrierState::Neutral => "NEUTRAL",
        }
    }
}

/// A price zone of one side of the book, in ES ticks (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneKey {
    pub side: Side,
    pub lo: i64,
    pub hi: i64,
}

impl ZoneKey {
    /// The zone `center_es ± zone_ticks` ticks, on the tick grid.
    pub fn around(side: Side, center_es: f64, zone_ticks: u32, tick_size: f64) -> ZoneKey {
        let half = zone_ticks as f64 * tick_size;
        let lo = ((center_es - half) / tick_size - 1e-9).ceil() as i64;
        let hi = ((center_es + half) / tick_size + 1e-9).floor() as i64;
        ZoneKey { side, lo, hi }
    }

    fn contains(&self, side: Side, tick: i64) -> bool {
        self.side == side && self.lo <= tick && tick <= self.hi
    }
}

/// Price in ticks, rounded to the nearest tick (without a libm call).
pub fn to_tick(price: f64, inv_tick: f64) -> i64 {
    let r = price * inv_tick + 0.5;
    let i = r as i64;
    if (i as f64) > r { i - 1 } else { i }
}

/// One row of a book side: price in ticks and as given, size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Row {
    tick: i64,
    px: f64,
    sz: u32,
}

/// One side of an image (non-empty rows in book order).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct BookSide {
    rows: [Row; BOOK_DEPTH],
    len: usize,
    /// Whether the previous image had the same prices at the same rows (set while reading).
    aligned: bool,
}

impl BookSide {
    fn rows(&self) -> &[Row] {
        &self.rows[..self.len]
    }

    fn depth(&self, lo: i64, hi: i64) -> u64 {
        self.rows()
            .iter()
            .filter(|r| lo <= r.tick && r.tick <= hi)
            .map(|r| r.sz as u64)
            .sum()
    }
}

/// A book image of the followed contract.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Image {
    pub ts: u64,
    sides: [BookSide; 2],
}

/// Bad data seen while reading an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageIssues {
    pub non_finite_prices: u64,
    pub crossed: bool,
}

impl Image {
    /// Reads an MBP-10 image; empty rows are skipped, non-finite prices counted and skipped.
    pub fn from_mbp10(m: &Mbp10, tick_size: f64) -> (Image, ImageIssues) {
        let mut image = Image::default();
        let issues = image.read(m, 1.0 / tick_size);
        (image, issues)
    }

    /// Overwrites this image with `m`.
    fn read(&mut self, m: &Mbp10, inv_tick: f64) -> ImageIssues {
        self.read_after(m, inv_tick, &Image::default())
    }

    /// Overwrites this image with `m`, reusing `prev`'s tick of a row whose price is unchanged.
    fn read_after(&mut self, m: &Mbp10, inv_tick: f64, prev: &Image) -> ImageIssues {
        self.ts = m.ts_event_ns;
        let mut issues = ImageIssues::default();
        for (s, side) in self.sides.iter_mut().enumerate() {
            let before = &prev.sides[s];
            side.len = 0;
            let mut aligned = true;
            for row in &m.levels {
                let (px, sz) = if s == 0 {
                    (row.bid_px, row.bid_sz)
                } else {
                    (row.ask_px, row.ask_sz)
                };
                let Some(px) = px else { continue };
                if !(px.is_finite() && px.abs() < MAX_PRICE) {
                    issues.non_finite_prices += 1;
                    continue;
                }
                let i = side.len;
                let tick = if i < before.len && before.rows[i].px == px {
                    before.rows[i].tick
                } else {
                    let tick = to_tick(px, inv_tick);
                    aligned &= i < before.len && before.rows[i].tick == tick;
                    tick
                };
                side.rows[i] = Row { tick, px, sz };
                side.len += 1;
            }
            side.aligned = aligned && side.len == before.len;
        }
        let [bid, ask] = &self.sides;
        if let (Some(b), Some(a)) = (bid.rows().first(), ask.rows().first()) {
            issues.crossed = b.px >= a.px;
        }
        issues
    }

    fn side(&self, side: Side) -> &BookSide {
        &self.sides[side.index()]
    }

    /// Best price and size of a side (ES), if the side is not empty.
    pub fn best(&self, side: Side) -> Option<(f64, u32)> {
        self.side(side).rows().first().map(|r| (r.px, r.sz))
    }

    /// Zone depth: summed sizes of the zone's side at prices in the zone.
    pub fn zone_depth(&self, zone: &ZoneKey) -> u64 {
        self.side(zone.side).depth(zone.lo, zone.hi)
    }
}

/// A depth change at one price between two consecutive images.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Change {
    tick: i64,
    delta: i64,
}

/// Trade volume at one price between two consecutive images, by aggressor.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct TickVol {
    tick: i64,
    buy: u64,
    sell: u64,
}

impl TickVol {
    /// Passive volume against `side`: sells hit bids, buys lift asks.
    fn hitting(&self, side: Side) -> u64 {
        match side {
            Side::Bid => self.sell,
            Side::Ask => self.buy,
        }
    }
}

/// A non-linear (pair, side), pointing into the change and trade rings by absolute index.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PairRecord {
    prev_ts: u64,
    side: Side,
    changes: (u64, u64),
    trades: (u64, u64),
}

/// The filled part of a change `delta` with passive volume `passive`: `min(lost, V)` for a loss.
fn filled_of(delta: i64, passive: u64) -> u64 {
    if delta > 0 {
        0
    } else {
        (-delta).min(passive as i64) as u64
    }
}

/// Contributions in event-time order, `(prev_ts, Δsize, filled)`, with their running sums: the
/// linear contributions at one price, or a tracked zone's non-linear ones (24 bytes an entry, so
/// the ring's cold ends cost few cache lines).
#[derive(Debug, Clone, Default)]
struct PriceRing {
    ring: VecDeque<(u64, i64, u64)>,
    added: i64,
    canceled: i64,
    filled: i64,
}

impl PriceRing {
    fn sums(delta: i64, filled: u64) -> (i64, i64, i64) {
        let filled = filled as i64;
        if delta > 0 {
            (delta, 0, 0)
        } else {
            (0, -delta - filled, filled)
        }
    }

    /// Adds the contribution of a change `delta` with passive volume `passive` at this price.
    fn push(&mut self, prev_ts: u64, delta: i64, passive: u64) {
        let filled = filled_of(delta, passive);
        let (a, k, f) = Self::sums(delta, filled);
        self.added += a;
        self.canceled += k;
        self.filled += f;
        self.ring.push_back((prev_ts, delta, filled));
    }

    fn expire(&mut self, cutoff: u64) {
        while let Some(&(ts, delta, filled)) = self.ring.front() {
            if ts >= cutoff {
                break;
            }
            let (a, k, f) = Self::sums(delta, filled);
            self.added -= a;
            self.canceled -= k;
            self.filled -= f;
            self.ring.pop_front();
        }
    }
}

/// Per-price sums of one side, indexed by tick from a base that grows as needed.
#[derive(Debug, Clone, Default)]
struct TickTable {
    base: i64,
    slots: Vec<PriceRing>,
}

impl TickTable {
    /// Whether `tick` is close enough to the prices seen so far to get a slot.
    fn can_hold(&self, tick: i64) -> bool {
        self.slots.is_empty()
            || (tick >= self.base - MAX_TICK_SPAN
                && tick < self.base + self.slots.len() as i64 + MAX_TICK_SPAN)
    }

    /// The ring of `tick`, growing the table; `None` for a tick absurdly far from the rest.
    fn slot_mut(&mut self, tick: i64) -> Option<&mut PriceRing> {
        const PAD: i64 = 64;
        if !self.can_hold(tick) {
            return None;
        }
        if self.slots.is_empty() {
            self.base = tick - PAD;
            self.slots.resize_with(2 * PAD as usize, PriceRing::default);
        }
        let span_end = self.base + self.slots.len() as i64;
        if tick < self.base {
            let grow = (self.base - tick + PAD) as usize;
            self.slots
                .splice(0..0, std::iter::repeat_with(PriceRing::default).take(grow));
            self.base -= grow as i64;
        } else if tick >= span_end {
            let new_len = (tick - self.base + PAD) as usize;
            self.slots.resize_with(new_len, PriceRing::default);
        }
        Some(&mut self.slots[(tick - self.base) as usize])
    }

    fn get_mut(&mut self, tick: i64) -> Option<&mut PriceRing> {
        let i = tick.checked_sub(self.base)?;
        if i < 0 {
            return None;
        }
        self.slots.get_mut(i as usize)
    }
}

#[derive(Debug, Clone)]
struct Zone {
    key: ZoneKey,
    sums: PriceRing,
    pending: i64,
    touched: bool,
    last_used: u64,
}

/// Window flows of one zone.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BarrierFlows {
    /// Whether the window holds at least two images (one pair).
    pub has_pair: bool,
    pub added: f64,
    pub canceled: f64,
    pub filled: f64,
}

/// The barrier readings of one level at a snap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarrierReading {
    pub state: BarrierState,
    pub added: f64,
    pub canceled: f64,
    pub filled: f64,
    pub delta_liq: f64,
    pub replenishment_ratio: f64,
    pub churn: f64,
    pub depth_in_zone: f64,
    /// Best defending price (ES) and size of the latest image.
    pub defending: Option<(f64, u32)>,
    pub confidence: f64,
}

/// Classifies window flows and the latest zone depth (the seven rules, first match wins).
pub fn classify(flows: &BarrierFlows, depth_in_zone: f64, cfg: &Config) -> BarrierReading {
    let (added, canceled, filled) = if flows.has_pair {
        (flows.added, flows.canceled, flows.filled)
    } else {
        (0.0, 0.0, 0.0)
    };
    let delta_liq = added - canceled - filled;
    let ratio = added / (canceled + filled + 1e-6);
    let churn = added + canceled + filled;
    let f = cfg.f_thresh;
    let state = if !flows.has_pair {
        BarrierState::Neutral
    } else if ratio < cfg.r_vac && delta_liq < -f {
        BarrierState::Vacuum
    } else if ratio > cfg.r_wall && delta_liq > f {
        BarrierState::Wall
    } else if delta_liq < -f && filled > canceled {
        BarrierState::Consumed
    } else if delta_liq > 0.0 && ratio > 1.0 {
        BarrierState::Absorption
    } else if depth_in_zone < cfg.weak_depth {
        BarrierState::Weak
    } else if delta_liq.abs() < f / 2.0 && churn > f {
        BarrierState::Absorption
    } else {
        BarrierState::Neutral
    };
    let confidence = if flows.has_pair {
        (churn / cfg.barrier_confidence_volume).min(1.0)
    } else {
        0.0
    };
    BarrierReading {
        state,
        added,
        canceled,
        filled,
        delta_liq,
        replenishment_ratio: ratio,
        churn,
        depth_in_zone,
        defending: None,
        confidence,
    }
}

/// Book images, per-price sums, non-linear pair records and tracked zones of the followed
/// contract.
#[derive(Debug, Clone)]
pub struct Barrier {
    window_ns: u64,
    inv_tick: f64,
    /// Widest zone (`hi − lo`, ticks) that may be asked for: `2·BARRIER_ZONE_TICKS`.
    max_width: i64,
    /// Double buffer: the latest image is `images[cur]` once `has_image`; the next is read
    /// into the other slot, so no image is copied.
    images: [Image; 2],
    cur: usize,
    has_image: bool,
    /// `prev.ts` of the latest pair.
    last_pair_prev_ts: Option<u64>,
    ticks: [TickTable; 2],
    records: VecDeque<PairRecord>,
    changes: VecDeque<Change>,
    changes_base: u64,
    trades: VecDeque<TickVol>,
    trades_base: u64,
    pending_trades: Vec<TickVol>,
    zones: Vec<Zone>,
    /// The keys of `zones`, in the same order: routing searches these few compact lines
    /// rather than the zones themselves.
    zone_keys: Vec<ZoneKey>,
    /// Largest `hi − lo` of any tracked zone (bounds the routing search).
    max_zone_width: i64,
    touched: Vec<usize>,
    scratch: [Vec<Change>; 2],
}

impl Barrier {
    /// Window `W_b` (ns), ES tick size and `BARRIER_ZONE_TICKS`.
    pub fn new(window_ns: u64, tick_size: f64, zone_ticks: u32) -> Barrier {
        Barrier {
            window_ns,
            inv_tick: 1.0 / tick_size,
            max_width: 2 * zone_ticks as i64,
            images: [Image::default(); 2],
            cur: 0,
            has_image: false,
            last_pair_prev_ts: None,
            ticks: Default::default(),
            records: VecDeque::new(),
            changes: VecDeque::new(),
            changes_base: 0,
            trades: VecDeque::new(),
            trades_base: 0,
            pending_trades: Vec::new(),
            zones: Vec::new(),
            zone_keys: Vec::new(),
            max_zone_width: 0,
            touched: Vec::new(),
            scratch: Default::default(),
        }
    }

    /// Forgets the book, the sums, the records and the zones (contract switch).
    pub fn clear(&mut self) {
        *self = Barrier::new(
            self.window_ns,
            1.0 / self.inv_tick,
            (self.max_width / 2) as u32,
        );
    }

    /// The latest image.
    pub fn image(&self) -> Option<&Image> {
        self.has_image.then(|| &self.images[self.cur])
    }

    /// Records a trade of the followed contract (attributed to the next image pair).
    pub fn on_trade(&mut self, tick: i64, size: u32, aggressor: i8) {
        let size = size as u64;
        let slot = match self.pending_trades.iter_mut().find(|t| t.tick == tick) {
            Some(slot) => slot,
            None => {
                self.pending_trades.push(TickVol {
                    tick,
                    ..TickVol::default()
                });
                self.pending_trades.last_mut().expect("just pushed")
            }
        };
        match aggressor {
            1 => slot.buy += size,
            -1 => slot.sell += size,
            _ => {}
        }
    }

    /// Reads and applies an MBP-10 image.
    pub fn on_mbp10(&mut self, m: &Mbp10) -> ImageIssues {
        let [a, b] = &mut self.images;
        let (prev, next) = if self.cur == 0 { (&*a, b) } else { (&*b, a) };
        let issues = next.read_after(m, self.inv_tick, prev);
        self.apply_spare();
        issues
    }

    /// Applies an image already read.
    pub fn on_image(&mut self, image: Image) {
        self.images[1 - self.cur] = image;
        self.apply_spare();
    }

    /// Applies the image in the spare slot: records the pair it closes and makes it the latest.
    fn apply_spare(&mut self) {
        let (cur, next) = (self.cur, 1 - self.cur);
        let ts = self.images[next].ts;
        let cutoff = ts.saturating_sub(self.window_ns);
        if self.has_image {
            let prev_ts = self.images[cur].ts;
            let mut trades_range: Option<(u64, u64)> = None;
            for side in [Side::Bid, Side::Ask] {
                let mut scratch = std::mem::take(&mut self.scratch[side.index()]);
                scratch.clear();
                diff_side(
                    &self.images[cur].sides[side.index()],
                    &self.images[next].sides[side.index()],
                    &mut scratch,
                );
                if !scratch.is_empty() {
                    let table = &mut self.ticks[side.index()];
                    let linear = is_linear(&scratch, &self.pending_trades, side, self.max_width)
                        && scratch.iter().all(|c| table.can_hold(c.tick));
                    if linear {
                        for c in &scratch {
                            let passive: u64 = self
                                .pending_trades
                                .iter()
                                .filter(|t| t.tick == c.tick)
                                .map(|t| t.hitting(side))
                                .sum();
                            if let Some(slot) = table.slot_mut(c.tick) {
                                slot.expire(cutoff);
                                slot.push(prev_ts, c.delta, passive);
                            }
                        }
                    } else {
                        let trades = *trades_range.get_or_insert_with(|| self.push_trades());
                        self.push_nonlinear(side, prev_ts, &scratch, trades, cutoff);
                    }
                }
                self.scratch[side.index()] = scratch;
            }
            self.last_pair_prev_ts = Some(prev_ts);
        }
        self.pending_trades.clear();
        self.cur = next;
        self.has_image = true;
        // No later snap window can reach a pair that starts before ts − W_b.
        self.expire_records(cutoff);
    }

    fn push_trades(&mut self) -> (u64, u64) {
        let start = self.trades_base + self.trades.len() as u64;
        self.trades.extend(self.pending_trades.iter().copied());
        (start, start + self.pending_trades.len() as u64)
    }

    /// Records a non-linear (pair, side) and applies it to the tracked zones.
    fn push_nonlinear(
        &mut self,
        side: Side,
        prev_ts: u64,
        changes: &[Change],
        trades: (u64, u64),
        cutoff: u64,
    ) {
        for ch in changes {
            // First zone not below `(side, tick − max width, i64::MIN)` in key order.
            let lo = ch.tick - self.max_zone_width;
            let start = self
                .zone_keys
                .partition_point(|k| k.side < side || (k.side == side && k.lo < lo));
            for (i, key) in self.zone_keys.iter().enumerate().skip(start) {
                if key.side != side || key.lo > ch.tick {
                    break;
                }
                if key.hi >= ch.tick {
                    let zone = &mut self.zones[i];
                    zone.pending += ch.delta;
                    if !zone.touched {
                        zone.touched = true;
                        self.touched.push(i);
                    }
                }
            }
        }
        for &i in &self.touched {
            let zone = &mut self.zones[i];
            zone.touched = false;
            let delta = std::mem::take(&mut zone.pending);
            if delta == 0 {
                continue;
            }
            let passive = passive_volume(&self.pending_trades, &zone.key);
            zone.sums.expire(cutoff);
            zone.sums.push(prev_ts, delta, passive);
        }
        self.touched.clear();
        let start = self.changes_base + self.changes.len() as u64;
        self.changes.extend(changes.iter().copied());
        self.records.push_back(PairRecord {
            prev_ts,
            side,
            changes: (start, start + changes.len() as u64),
            trades,
        });
    }

    fn expire_records(&mut self, cutoff: u64) {
        while let Some(r) = self.records.front() {
            if r.prev_ts >= cutoff {
                break;
            }
            let (_, changes_end) = r.changes;
            let (_, trades_end) = r.trades;
            self.records.pop_front();
            while self.changes_base < changes_end {
                self.changes.pop_front();
                self.changes_base += 1;
            }
            while self.trades_base < trades_end {
                self.trades.pop_front();
                self.trades_base += 1;
            }
        }
    }

    /// Window flows of a zone at `now` (window `[now − W_b, now)`), tracking it from now on.
    pub fn flows(&mut self, key: ZoneKey, now: u64) -> BarrierFlows {
        debug_assert!(
            key.hi - key.lo <= self.max_width,
            "zone wider than configured"
        );
        let cutoff = now.saturating_sub(self.window_ns);
        self.expire_records(cutoff);
        let idx = match self.zone_keys.binary_search(&key) {
            Ok(i) => i,
            Err(i) => {
                let zone = self.backfill(key, now);
                self.max_zone_width = self.max_zone_width.max(key.hi - key.lo);
                self.zones.insert(i, zone);
                self.zone_keys.insert(i, key);
                i
            }
        };
        let zone = &mut self.zones[idx];
        zone.sums.expire(cutoff);
        zone.last_used = now;
        let (mut added, mut canceled, mut filled) =
            (zone.sums.added, zone.sums.canceled, zone.sums.filled);
        let table = &mut self.ticks[key.side.index()];
        for tick in key.lo..=key.hi {
            if let Some(slot) = table.get_mut(tick) {
                slot.expire(cutoff);
                added += slot.added;
                canceled += slot.canceled;
                filled += slot.filled;
            }
        }
        BarrierFlows {
            has_pair: self.last_pair_prev_ts.is_some_and(|t| t >= cutoff),
            added: added as f64,
            canceled: canceled as f64,
            filled: filled as f64,
        }
    }

    /// Builds a zone's non-linear contributions from the pair records in the window.
    fn backfill(&self, key: ZoneKey, now: u64) -> Zone {
        let mut zone = Zone {
            key,
            sums: PriceRing::default(),
            pending: 0,
            touched: false,
            last_used: now,
        };
        for r in self.records.iter().filter(|r| r.side == key.side) {
            let (c0, c1) = r.changes;
            let delta: i64 = (c0..c1)
                .map(|i| self.changes[(i - self.changes_base) as usize])
                .filter(|ch| key.contains(key.side, ch.tick))
                .map(|ch| ch.delta)
                .sum();
            if delta == 0 {
                continue;
            }
            let (t0, t1) = r.trades;
            let passive: u64 = (t0..t1)
                .map(|i| self.trades[(i - self.trades_base) as usize])
                .filter(|t| key.lo <= t.tick && t.tick <= key.hi)
                .map(|t| t.hitting(key.side))
                .sum();
            zone.sums.push(r.prev_ts, delta, passive);
        }
        zone
    }

    /// Drops zones not queried since `now − ZONE_RETAIN_NS`.
    pub fn prune_zones(&mut self, now: u64) {
        let keep_after = now.saturating_sub(ZONE_RETAIN_NS);
        self.zones.retain(|z| z.last_used >= keep_after);
        self.zone_keys.clear();
        self.zone_keys.extend(self.zones.iter().map(|z| z.key));
    }

    /// Number of non-linear (pair, side) records in the window (for statistics).
    pub fn nonlinear_records(&self) -> usize {
        self.records.len()
    }

    /// Number of tracked zones (for tests and statistics).
    pub fn tracked_zones(&self) -> usize {
        self.zones.len()
    }
}

/// Whether a (pair, side)'s contribution to every zone is the sum of per-price contributions.
///
/// True when all changes are gains (V does not matter); or all are losses and no trade hit the
/// side (V = 0 everywhere); or no zone can hold two changed prices (they are more than
/// `max_width` ticks apart) and every price a trade hit on this side is a changed price — then
/// a zone holding changed price p sees exactly p's change and p's passive volume.
fn is_linear(changes: &[Change], trades: &[TickVol], side: Side, max_width: i64) -> bool {
    if changes.iter().all(|c| c.delta > 0) {
        return true;
    }
    let hits = || trades.iter().filter(|t| t.hitting(side) > 0);
    if changes.iter().all(|c| c.delta < 0) && hits().next().is_none() {
        return true;
    }
    let apart = changes.iter().enumerate().all(|(i, a)| {
        changes[i + 1..]
            .iter()
            .all(|b| (a.tick - b.tick).abs() > max_width)
    });
    apart && hits().all(|t| changes.iter().any(|c| c.tick == t.tick))
}

fn passive_volume(trades: &[TickVol], key: &ZoneKey) -> u64 {
    trades
        .iter()
        .filter(|t| key.lo <= t.tick && t.tick <= key.hi)
        .map(|t| t.hitting(key.side))
        .sum()
}

/// Appends the per-price size changes from `prev` to `curr` of one side.
fn diff_side(prev: &BookSide, curr: &BookSide, out: &mut Vec<Change>) {
    let (p, c) = (prev.rows(), curr.rows());
    // Fast path: the same prices in the same rows, so only sizes changed. (Were a price listed
    // twice, its changes would still sum to the right total.)
    if curr.aligned {
        for (a, b) in p.iter().zip(c) {
            if a.sz != b.sz {
                out.push(Change {
                    tick: b.tick,
                    delta: b.sz as i64 - a.sz as i64,
                });
            }
        }
        return;
    }
    // General path: every distinct price of either image, once.
    let sum_at = |rows: &[Row], tick: i64| -> i64 {
        rows.iter()
            .filter(|r| r.tick == tick)
            .map(|r| r.sz as i64)
            .sum()
    };
    for (i, r) in c.iter().enumerate() {
        if c[..i].iter().any(|x| x.tick == r.tick) {
            continue;
        }
        let delta = sum_at(c, r.tick) - sum_at(p, r.tick);
        if delta != 0 {
            out.push(Change {
                tick: r.tick,
                delta,
            });
        }
    }
    for (i, r) in p.iter().enumerate() {
        if p[..i].iter().any(|x| x.tick == r.tick) || c.iter().any(|x| x.tick == r.tick) {
            continue;
        }
        let delta = -sum_at(p, r.tick);
        if delta != 0 {
            out.push(Change {
                tick: r.tick,
                delta,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::BookRow;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;
    const TICK: f64 = 0.25;

    fn tick(p: f64) -> i64 {
        (p / TICK).round() as i64
    }

    /// An image with the given (price, size) rows per side.
    fn image(ts: u64, bids: &[(f64, u32)], asks: &[(f64, u32)]) -> Image {
        Image::from_mbp10(&mbp(ts, bids, asks), TICK).0
    }

    /// An MBP-10 event with the given (price, size) rows per side.
    fn mbp(ts: u64, bids: &[(f64, u32)], asks: &[(f64, u32)]) -> Mbp10 {
        let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
        for (i, &(p, s)) in bids.iter().enumerate() {
            levels[i].bid_px = Some(p);
            levels[i].bid_sz = s;
        }
        for (i, &(p, s)) in asks.iter().enumerate() {
            levels[i].ask_px = Some(p);
            levels[i].ask_sz = s;
        }
        Mbp10 {
            ts_event_ns: ts,
            ts_recv_ns: ts,
            source: "test".into(),
            symbol: "ESZ5".into(),
            levels,
            is_snapshot: false,
            seq: None,
            action: None,
            side: None,
            price: None,
            size: None,
            flags: None,
        }
    }

    fn flows(added: f64, canceled: f64, filled: f64) -> BarrierFlows {
        BarrierFlows {
            has_pair: true,
            added,
            canceled,
            filled,
        }
    }

    fn state(f: BarrierFlows, depth: f64) -> BarrierState {
        classify(&f, depth, &Config::default()).state
    }

    #[test]
    fn each_of_the_seven_rules_in_order() {
        // 1. VACUUM: ratio 0 < 0.3, delta −400 < −100.
        assert_eq!(state(flows(0.0, 400.0, 0.0), 500.0), BarrierState::Vacuum);
        // 2. WALL: ratio 3 > 1.5, delta 200 > 100.
        assert_eq!(state(flows(300.0, 100.0, 0.0), 500.0), BarrierState::Wall);
        // 3. CONSUMED: ratio 0.4, delta −150, filled 200 > canceled 50.
        assert_eq!(
            state(flows(100.0, 50.0, 200.0), 500.0),
            BarrierState::Consumed
        );
        // 4. ABSORPTION: delta 50 > 0, ratio exactly 1.5 (not a wall) > 1.
        assert_eq!(
            state(flows(150.0, 100.0, 0.0), 500.0),
            BarrierState::Absorption
        );
        // 5. WEAK: nothing above matches and depth 30 < 50.
        assert_eq!(state(flows(10.0, 20.0, 0.0), 30.0), BarrierState::Weak);
        // 6. ABSORPTION: |delta| 20 < 50 and churn 220 > 100.
        assert_eq!(
            state(flows(100.0, 120.0, 0.0), 200.0),
            BarrierState::Absorption
        );
        // 7. NEUTRAL.
        assert_eq!(state(flows(10.0, 20.0, 0.0), 200.0), BarrierState::Neutral);
        // Rule order: a vacuum with a thin zone is still VACUUM, not WEAK.
        assert_eq!(state(flows(0.0, 400.0, 0.0), 10.0), BarrierState::Vacuum);
    }

    #[test]
    fn readings_follow_the_formulas() {
        let r = classify(&flows(150.0, 100.0, 50.0), 80.0, &Config::default());
        assert_eq!(r.delta_liq, 0.0);
        assert_eq!(r.replenishment_ratio, 150.0 / (150.0 + 1e-6));
        assert_eq!(r.churn, 300.0);
        assert_eq!(r.confidence, 300.0 / 500.0);
        let none = BarrierFlows::default();
        let r = classify(&none, 80.0, &Config::default());
        assert_eq!(
            (r.state, r.confidence, r.churn),
            (BarrierState::Neutral, 0.0, 0.0)
        );
        assert_eq!(r.depth_in_zone, 80.0);
    }

    fn vacuum_cfg() -> Config {
        Config {
            f_thresh: 50.0,
            ..Config::default()
        }
    }

    #[test]
    fn bid_depth_pulled_without_trades_is_a_vacuum_for_a_support() {
        let cfg = vacuum_cfg();
        let mut b = Barrier::new(10 * S, TICK, 2);
        b.on_image(image(100 * S, &[(6870.0, 500)], &[(6870.25, 20)]));
        b.on_image(image(
            100 * S + 100 * MS,
            &[(6870.0, 100)],
            &[(6870.25, 20)],
        ));
        let zone = ZoneKey::around(Side::Bid, 6870.0, 2, TICK);
        let f = b.flows(zone, 101 * S);
        let depth = b.image().unwrap().zone_depth(&zone) as f64;
        let r = classify(&f, depth, &cfg);
        assert_eq!(r.state, BarrierState::Vacuum);
        assert_eq!((r.added, r.canceled, r.filled), (0.0, 400.0, 0.0));
        assert!(r.canceled > r.filled);
        assert_eq!(r.depth_in_zone, 100.0);
    }

    #[test]
    fn ask_depth_pulled_is_a_vacuum_for_a_resistance() {
        let cfg = vacuum_cfg();
        let mut b = Barrier::new(10 * S, TICK, 2);
        b.on_image(image(100 * S, &[(6869.75, 20)], &[(6870.0, 500)]));
        b.on_image(image(
            100 * S + 100 * MS,
            &[(6869.75, 20)],
            &[(6870.0, 100)],
        ));
        let zone = ZoneKey::around(Side::Ask, 6870.0, 2, TICK);
        let r = classify(&b.flows(zone, 101 * S), 100.0, &cfg);
        assert_eq!(r.state, BarrierState::Vacuum);
        assert!(r.canceled > r.filled);
        // The bid side of the same zone saw nothing.
        let bid = ZoneKey::around(Side::Bid, 6870.0, 2, TICK);
        assert_eq!(b.flows(bid, 101 * S).added, 0.0);
    }

    #[test]
    fn bid_zone_refilled_while_sells_print_is_a_wall_or_absorption() {
        let cfg = Config::default();
        let mut b = Barrier::new(10 * S, TICK, 2);
        let zone = ZoneKey::around(Side::Bid, 6870.0, 2, TICK);
        b.flows(zone, 100 * S); // tracked from the start
        b.on_image(image(100 * S, &[(6870.0, 300)], &[(6870.25, 10)]));
        b.on_trade(tick(6870.0), 50, -1);
        b.on_image(image(100 * S + 10 * MS, &[(6870.0, 250)], &[(6870.25, 10)]));
        b.on_image(image(
            100 * S + 20 * MS,
            &[(6870.0, 450), (6869.75, 100)],
            &[(6870.25, 10)],
        ));
        b.on_trade(tick(6869.75), 20, -1);
        b.on_image(image(
            100 * S + 30 * MS,
            &[(6870.0, 450), (6869.75, 100)],
            &[(6870.25, 10)],
        ));
        let f = b.flows(zone, 101 * S);
        let depth = b.image().unwrap().zone_depth(&zone) as f64;
        assert_eq!(depth, 550.0);
        let r = classify(&f, depth, &cfg);
        assert_eq!((r.added, r.canceled, r.filled), (300.0, 0.0, 50.0));
        assert!(matches!(
            r.state,
            BarrierState::Wall | BarrierState::Absorption
        ));
        assert!(r.replenishment_ratio > 1.0);
    }

    #[test]
    fn fills_are_capped_by_the_loss_and_count_only_defending_side_trades_in_the_zone() {
        let zone = ZoneKey::around(Side::Bid, 6870.0, 2, TICK);
        let run = |trades: &[(f64, u32, i8)]| {
            let mut b = Barrier::new(10 * S, TICK, 2);
            b.on_image(image(100 * S, &[(6870.0, 500)], &[]));
            for &(p, s, a) in trades {
                b.on_trade(tick(p), s, a);
            }
            b.on_image(image(100 * S + MS, &[(6870.0, 300)], &[]));
            let f = b.flows(zone, 101 * S);
            (f.canceled, f.filled)
        };
        assert_eq!(run(&[(6870.0, 300, -1)]), (0.0, 200.0));
        assert_eq!(run(&[(6870.0, 50, -1)]), (150.0, 50.0));
        // Buys do not hit the bid; trades outside the zone do not count; unknown is ignored.
        assert_eq!(
            run(&[(6870.0, 50, 1), (6871.0, 50, -1), (6870.0, 50, 0)]),
            (200.0, 0.0)
        );
        // Inside the zone at another price counts.
        assert_eq!(run(&[(6869.5, 80, -1)]), (120.0, 80.0));
    }

    #[test]
    fn no_book_or_one_image_is_neutral_with_zero_flows() {
        let cfg = Config::default();
        let zone = ZoneKey::around(Side::Bid, 6870.0, 2, TICK);
        let mut b = Barrier::new(10 * S, TICK, 2);
        let f = b.flows(zone, 100 * S);
        assert!(!f.has_pair);
        let r = classify(&f, 0.0, &cfg);
        assert_eq!((r.state, r.confidence), (BarrierState::Neutral, 0.0));
        b.on_image(image(100 * S, &[(6870.0, 10)], &[]));
        let f = b.flows(zone, 101 * S);
        let r = classify(&f, 10.0, &cfg);
        assert_eq!(
            (r.state, r.added, r.confidence),
            (BarrierState::Neutral, 0.0, 0.0)
        );
    }

    #[test]
    fn pairs_leave_the_window_after_w_b() {
        let zone = ZoneKey::around(Side::Bid, 6870.0, 2, TICK);
        let mut b = Barrier::new(10 * S, TICK, 2);
        b.flows(zone, 0);
        b.on_image(image(100 * S, &[(6870.0, 500)], &[]));
        b.on_image(image(101 * S, &[(6870.0, 100)], &[]));
        b.on_image(image(105 * S, &[(6870.0, 300)], &[]));
        let f = b.flows(zone, 110 * S);
        assert_eq!((f.added, f.canceled), (200.0, 400.0));
        // At 110.5 s the pair starting at 100 s has left [now − 10 s, now).
        let f = b.flows(zone, 110 * S + S / 2);
        assert_eq!((f.added, f.canceled), (200.0, 0.0));
        assert!(f.has_pair);
        let f = b.flows(zone, 116 * S);
        assert_eq!((f.added, f.canceled, f.has_pair), (0.0, 0.0, false));
    }

    #[test]
    fn zone_edges_follow_the_tick_grid() {
        let on_tick = ZoneKey::around(Side::Bid, 6870.0, 2, TICK);
        assert_eq!((on_tick.lo, on_tick.hi), (tick(6869.5), tick(6870.5)));
        let off_tick = ZoneKey::around(Side::Ask, 6870.1, 2, TICK);
        assert_eq!((off_tick.lo, off_tick.hi), (tick(6869.75), tick(6870.5)));
    }

    /// A small deterministic generator for the equivalence test.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Every event in arrival order: an image or a trade `(tick, size, aggressor)`.
    type Log = Vec<(Option<Image>, Option<(i64, u32, i8)>)>;

    /// PHYSICS.md §3 computed from scratch over every stored image and trade.
    fn naive_flows(log: &Log, key: ZoneKey, now: u64, window: u64) -> BarrierFlows {
        let cutoff = now.saturating_sub(window);
        let mut f = BarrierFlows::default();
        let mut prev: Option<Image> = None;
        let mut passive = 0u64;
        for (image, trade) in log {
            if let Some((tick, size, aggressor)) = *trade {
                let hits = match key.side {
                    Side::Bid => aggressor == -1,
                    Side::Ask => aggressor == 1,
                };
                if hits && key.lo <= tick && tick <= key.hi {
                    passive += size as u64;
                }
            }
            let Some(img) = image else { continue };
            if img.ts < cutoff || img.ts >= now {
                passive = 0;
                prev = None;
                continue;
            }
            if let Some(p) = prev {
                f.has_pair = true;
                let delta = img.zone_depth(&key) as i64 - p.zone_depth(&key) as i64;
                if delta > 0 {
                    f.added += delta as f64;
                } else {
                    let lost = -delta;
                    let filled = lost.min(passive as i64);
                    f.filled += filled as f64;
                    f.canceled += (lost - filled) as f64;
                }
            }
            passive = 0;
            prev = Some(*img);
        }
        f
    }

    #[test]
    fn incremental_flows_equal_a_from_scratch_computation() {
        // Zones centred on every tick and between ticks across the book, both sides.
        let zones: Vec<ZoneKey> = (0..56)
            .flat_map(|i| {
                let center = 6866.5 + 0.125 * i as f64;
                [
                    ZoneKey::around(Side::Bid, center, 2, TICK),
                    ZoneKey::around(Side::Ask, center, 2, TICK),
                ]
            })
            .collect();
        let mut barrier = Barrier::new(2 * S, TICK, 2);
        let mut log: Log = Vec::new();
        let mut rng = Lcg(11);
        let mut ts = 100 * S;
        let mut sizes = [[100u32; 10]; 2];
        let mut base = 6870.0;
        for step in 0..8_000u64 {
            ts += 1 + rng.next(2 * MS);
            if rng.next(5) == 0 {
                let p = base - 1.0 + 0.25 * rng.next(10) as f64;
                let agg = [-1i8, 0, 1][rng.next(3) as usize];
                let size = 1 + rng.next(60) as u32;
                barrier.on_trade(tick(p), size, agg);
                log.push((None, Some((tick(p), size, agg))));
            } else {
                match rng.next(10) {
                    // One row changes (the linear path when no trade hit that side).
                    0..=5 => {
                        let side = rng.next(2) as usize;
                        let row = rng.next(10) as usize;
                        sizes[side][row] = rng.next(200) as u32;
                    }
                    // The book shifts a tick.
                    6 => base += 0.25 * (rng.next(3) as f64 - 1.0),
                    // Two rows of one side, a few ticks apart, move either way.
                    7 | 8 => {
                        let side = rng.next(2) as usize;
                        let row = rng.next(4) as usize;
                        let other = (row + 1 + rng.next(6) as usize).min(9);
                        sizes[side][row] = rng.next(200) as u32;
                        sizes[side][other] = rng.next(200) as u32;
                    }
                    // Everything changes.
                    _ => {
                        for s in sizes.iter_mut().flatten() {
                            *s = rng.next(200) as u32;
                        }
                    }
                }
                let bids: Vec<(f64, u32)> = (0..10)
                    .map(|i| (base - 0.25 * i as f64, sizes[0][i]))
                    .collect();
                let asks: Vec<(f64, u32)> = (0..10)
                    .map(|i| (base + 0.25 * (i + 1) as f64, sizes[1][i]))
                    .collect();
                // Through the reading path (aligned rows take the fast diff).
                let m = mbp(ts, &bids, &asks);
                barrier.on_mbp10(&m);
                log.push((Some(Image::from_mbp10(&m, TICK).0), None));
            }
            if step % 301 == 0 || step == 7_999 {
                let now = ts + 1;
                for &z in &zones {
                    let want = naive_flows(&log, z, now, 2 * S);
                    assert_eq!(barrier.flows(z, now), want, "step {step} zone {z:?}");
                }
            }
        }
    }

    #[test]
    fn a_zone_tracked_late_is_backfilled_exactly_as_if_tracked_from_the_start() {
        let zones = [
            ZoneKey::around(Side::Bid, 6870.0, 2, TICK),
            ZoneKey::around(Side::Ask, 6871.1, 2, TICK),
            ZoneKey::around(Side::Bid, 6869.4, 2, TICK),
        ];
        let mut early = Barrier::new(10 * S, TICK, 2);
        let mut late = Barrier::new(10 * S, TICK, 2);
        for z in zones {
            early.flows(z, 0);
        }
        let mut rng = Lcg(7);
        let mut ts = 100 * S;
        for step in 0..20_000u64 {
            ts += 1 + rng.next(3 * MS);
            if rng.next(4) == 0 {
                let p = 6868.0 + 0.25 * rng.next(16) as f64;
                let agg = [-1i8, 0, 1][rng.next(3) as usize];
                let size = 1 + rng.next(40) as u32;
                early.on_trade(tick(p), size, agg);
                late.on_trade(tick(p), size, agg);
            } else {
                let base = 6870.0 + 0.25 * (rng.next(5) as f64 - 2.0);
                let bids: Vec<(f64, u32)> = (0..10)
                    .map(|i| (base - 0.25 * i as f64, rng.next(200) as u32))
                    .collect();
                let asks: Vec<(f64, u32)> = (0..10)
                    .map(|i| (base + 0.25 * (i + 1) as f64, rng.next(200) as u32))
                    .collect();
                let img = image(ts, &bids, &asks);
                early.on_image(img);
                late.on_image(img);
            }
            if step % 997 == 0 {
                let now = ts + 1;
                for z in zones {
                    assert_eq!(
                        early.flows(z, now),
                        late.clone().flows(z, now),
                        "step {step}"
                    );
                }
            }
        }
        let now = ts + 1;
        for z in zones {
            let f = late.flows(z, now);
            assert_eq!(early.flows(z, now), f);
            assert!(f.added > 0.0 && f.canceled > 0.0 && f.filled > 0.0, "{f:?}");
        }
    }
}
