//! Canonical events: the wire contract shared by every command.
//!
//! One JSON object per NDJSON line and per NATS message, with a `type` discriminator and the
//! exact field names of DESIGN.md. Timestamps are integer Unix nanoseconds (UTC), prices plain
//! floats in the instrument's own units. Non-finite numbers are written as `null` (serde_json
//! does this for `f64`), and a `null` price reads back as NaN so that the engine can count it
//! instead of the parser rejecting the whole line.

use serde::{Deserialize, Deserializer, Serialize};

/// Subject of every market and signal stream, as in DESIGN.md.
pub mod subject {
    pub const FUTURES_TRADES: &str = "market.futures.trades";
    pub const FUTURES_MBP10: &str = "market.futures.mbp10";
    pub const OPTIONS_TRADES: &str = "market.options.trades";
    pub const STOCKS_TRADES: &str = "market.stocks.trades";
    pub const STOCKS_QUOTES: &str = "market.stocks.quotes";
    pub const LEVEL_SIGNALS: &str = "levels.signals";
    pub const FEEDS_STATUS: &str = "feeds.status";
}

/// Number of book rows carried by an MBP-10 image.
pub const BOOK_DEPTH: usize = 10;

/// Errors from reading one event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no `type` field and no subject to infer it from")]
    MissingType,
    #[error("unknown event type `{0}`")]
    UnknownType(String),
}

/// The kind of an event: its `type` value and its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    FuturesTrade,
    Mbp10,
    OptionTrade,
    StockTrade,
    StockQuote,
    LevelSignals,
    FeedStatus,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::FuturesTrade,
        EventKind::Mbp10,
        EventKind::OptionTrade,
        EventKind::StockTrade,
        EventKind::StockQuote,
        EventKind::LevelSignals,
        EventKind::FeedStatus,
    ];

    /// The `type` value on the wire.
    pub fn type_name(self) -> &'static str {
        match self {
            EventKind::FuturesTrade => "futures_trade",
            EventKind::Mbp10 => "mbp10",
            EventKind::OptionTrade => "option_trade",
            EventKind::StockTrade => "stock_trade",
            EventKind::StockQuote => "stock_quote",
            EventKind::LevelSignals => "level_signals",
            EventKind::FeedStatus => "feed_status",
        }
    }

    /// The NATS subject this kind is published on.
    pub fn subject(self) -> &'static str {
        match self {
            EventKind::FuturesTrade => subject::FUTURES_TRADES,
            EventKind::Mbp10 => subject::FUTURES_MBP10,
            EventKind::OptionTrade => subject::OPTIONS_TRADES,
            EventKind::StockTrade => subject::STOCKS_TRADES,
            EventKind::StockQuote => subject::STOCKS_QUOTES,
            EventKind::LevelSignals => subject::LEVEL_SIGNALS,
            EventKind::FeedStatus => subject::FEEDS_STATUS,
        }
    }

    pub fn from_type_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.type_name() == name)
    }

    pub fn from_subject(subject: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.subject() == subject)
    }

    /// Whether this kind is a trade (trades sort before book images at equal timestamps).
    pub fn is_trade(self) -> bool {
        matches!(
            self,
            EventKind::FuturesTrade | EventKind::OptionTrade | EventKind::StockTrade
        )
    }
}

/// Reads a price that may be `null` (or absent) as NaN, so a bad price is a countable value.
fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nan() -> f64 {
    f64::NAN
}

/// An ES (or other futures) trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuturesTrade {
    pub ts_event_ns: u64,
    pub ts_recv_ns: u64,
    pub source: String,
    pub symbol: String,
    #[serde(deserialize_with = "f64_or_nan", default = "nan")]
    pub price: f64,
    pub size: u32,
    /// 1 buy (lifted the ask), -1 sell (hit the bid), 0 unknown.
    #[serde(default)]
    pub aggressor: i8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// One row of an MBP-10 image. An empty row has `null` prices and zero sizes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BookRow {
    pub bid_px: Option<f64>,
    #[serde(default)]
    pub bid_sz: u32,
    pub ask_px: Option<f64>,
    #[serde(default)]
    pub ask_sz: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_ct: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_ct: Option<u32>,
}

impl BookRow {
    pub const EMPTY: BookRow = BookRow {
        bid_px: None,
        bid_sz: 0,
        ask_px: None,
        ask_sz: 0,
        bid_ct: None,
        ask_ct: None,
    };
}

/// Reads up to ten book rows into a fixed array (missing rows are empty), without allocating.
fn book_rows<'de, D: Deserializer<'de>>(d: D) -> Result<[BookRow; BOOK_DEPTH], D::Error> {
    struct RowsVisitor;
    impl<'de> serde::de::Visitor<'de> for RowsVisitor {
        type Value = [BookRow; BOOK_DEPTH];
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "an array of at most {BOOK_DEPTH} book rows")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rows = [BookRow::EMPTY; BOOK_DEPTH];
            let mut i = 0;
            while let Some(row) = seq.next_element::<BookRow>()? {
                if i == BOOK_DEPTH {
                    return Err(serde::de::Error::invalid_length(i + 1, &self));
                }
                rows[i] = row;
                i += 1;
            }
            Ok(rows)
        }
    }
    d.deserialize_seq(RowsVisitor)
}

/// An MBP-10 book image of a futures contract, with the change that produced it when known.
/// (The default is a blank image: empty book, no symbol.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Mbp10 {
    pub ts_event_ns: u64,
    pub ts_recv_ns: u64,
    pub source: String,
    pub symbol: String,
    #[serde(deserialize_with = "book_rows")]
    pub levels: [BookRow; BOOK_DEPTH],
    #[serde(default)]
    pub is_snapshot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// DBN action: `A`dd, `C`ancel, `M`odify, `T`rade, `F`ill, `R` clear, `N`one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<char>,
    /// DBN side: `B`id, `A`sk, `N`one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<char>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<u8>,
}

impl Mbp10 {
    /// Best bid and ask prices, if both sides are present.
    pub fn best(&self) -> (Option<f64>, Option<f64>) {
        (self.levels[0].bid_px, self.levels[0].ask_px)
    }
}

/// An option trade with its contract terms (from the instrument definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionTrade {
    pub ts_event_ns: u64,
    pub ts_recv_ns: u64,
    pub source: String,
    pub underlying: String,
    pub option_symbol: String,
    /// Expiry date, `YYYY-MM-DD`.
    pub exp_date: String,
    #[serde(deserialize_with = "f64_or_nan", default = "nan")]
    pub strike: f64,
    /// `C` call or `P` put.
    pub right: char,
    #[serde(deserialize_with = "f64_or_nan", default = "nan")]
    pub price: f64,
    pub size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_bid: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_ask: Option<f64>,
    #[serde(default)]
    pub aggressor: i8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// An equity trade (SPY prints drive the dynamic ES/SPY ratio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockTrade {
    pub ts_event_ns: u64,
    pub ts_recv_ns: u64,
    pub source: String,
    pub symbol: String,
    #[serde(deserialize_with = "f64_or_nan", default = "nan")]
    pub price: f64,
    pub size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// An equity top-of-book quote. A missing side has a `null` price and size 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockQuote {
    pub ts_event_ns: u64,
    pub ts_recv_ns: u64,
    pub source: String,
    pub symbol: String,
    #[serde(deserialize_with = "f64_or_nan", default = "nan")]
    pub bid_px: f64,
    #[serde(deserialize_with = "f64_or_nan", default = "nan")]
    pub ask_px: f64,
    #[serde(default)]
    pub bid_sz: u32,
    #[serde(default)]
    pub ask_sz: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The state a live feed reports on `feeds.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Authenticated and subscribed: data flows.
    Connected,
    /// The connection ended (closed by the peer, an I/O error, a heartbeat timeout).
    Disconnected,
    /// Waiting to connect again (after the backoff in `reason`).
    Reconnecting,
    /// Data between `gap_start_ns` and `gap_end_ns` is missing or was dropped.
    Gap,
    /// The feed stopped for good (authentication refused, connection limit, bad request).
    Error,
}

impl FeedState {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::Connected => "connected",
            FeedState::Disconnected => "disconnected",
            FeedState::Reconnecting => "reconnecting",
            FeedState::Gap => "gap",
            FeedState::Error => "error",
        }
    }
}

/// A live feed's health: published by `spm-ingest` on `feeds.status`, never read by the engine.
///
/// `ts_ns` is the wall-clock time of the report. A `gap` names the event-time range that is
/// missing (`gap_start_ns`..`gap_end_ns`, the last event before and the first after when known)
/// and `records_lost` when it can be counted (0 when a replay from `start` filled the hole).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedStatus {
    pub ts_ns: u64,
    pub source: String,
    /// The connection within the source: a Databento dataset (`GLBX.MDP3`), a Massive cluster
    /// (`stocks`, `options`), `stdin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
    pub state: FeedState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_start_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_end_ns: Option<u64>,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_lost: Option<u64>,
}

/// SPY prices at a snap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SpyQuote {
    pub spot: Option<f64>,
    pub bid: Option<f64>,
    pub ask: Option<f64>,
}

/// Best defending price (SPY) and size of the latest image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DefendingQuote {
    pub price: Option<f64>,
    pub size: u32,
}

/// Barrier (resting liquidity) physics at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct BarrierPayload {
    pub state: String,
    pub delta_liq: f64,
    pub delta_liq_smooth: f64,
    pub replenishment_ratio: f64,
    pub replenishment_ratio_smooth: f64,
    pub added: f64,
    pub canceled: f64,
    pub filled: f64,
    pub defending_quote: DefendingQuote,
    pub churn: f64,
    pub depth_in_zone: f64,
}

/// The largest sweep found near a level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SweepPayload {
    pub detected: bool,
    pub direction: Option<String>,
    pub notional: f64,
    pub num_prints: u32,
    pub window_ms: f64,
}

/// Tape (aggressive trading) physics near one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TapePayload {
    pub imbalance: f64,
    pub buy_vol: f64,
    pub sell_vol: f64,
    pub velocity: f64,
    pub velocity_smooth: f64,
    pub sweep: SweepPayload,
}

/// Fuel (dealer gamma) physics near one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FuelPayload {
    pub effect: String,
    pub net_dealer_gamma: f64,
    pub net_dealer_gamma_smooth: f64,
    pub call_wall: Option<f64>,
    pub put_wall: Option<f64>,
    pub hvl: Option<f64>,
}

/// A level named in a runway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LevelRef {
    pub id: String,
    pub price: f64,
}

/// Room to run beyond a level in the signal's direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunwayPayload {
    pub direction: String,
    pub distance: Option<f64>,
    pub next_obstacle: Option<LevelRef>,
    pub quality: String,
}

/// One active level in a snap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LevelSignal {
    pub id: String,
    pub price: f64,
    pub kind: String,
    pub direction: String,
    pub distance: f64,
    pub break_score_raw: f64,
    pub break_score_smooth: f64,
    pub signal: String,
    pub confidence: String,
    pub barrier: BarrierPayload,
    pub tape: TapePayload,
    pub fuel: FuelPayload,
    pub runway: RunwayPayload,
    pub note: String,
}

/// A snap of every active level, published on `levels.signals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LevelSignals {
    /// Event time of the snap, in milliseconds.
    pub ts: i64,
    pub spy: SpyQuote,
    pub levels: Vec<LevelSignal>,
}

/// Any event on a pipe or the bus.
///
/// MBP-10 images (about 700 bytes) are boxed: events move through readers, merges and sinks,
/// and copying an inline image at each step cost more than one allocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    FuturesTrade(FuturesTrade),
    Mbp10(Box<Mbp10>),
    OptionTrade(OptionTrade),
    StockTrade(StockTrade),
    StockQuote(StockQuote),
    LevelSignals(LevelSignals),
    FeedStatus(FeedStatus),
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::FuturesTrade(_) => EventKind::FuturesTrade,
            Event::Mbp10(_) => EventKind::Mbp10,
            Event::OptionTrade(_) => EventKind::OptionTrade,
            Event::StockTrade(_) => EventKind::StockTrade,
            Event::StockQuote(_) => EventKind::StockQuote,
            Event::LevelSignals(_) => EventKind::LevelSignals,
            Event::FeedStatus(_) => EventKind::FeedStatus,
        }
    }

    pub fn subject(&self) -> &'static str {
        self.kind().subject()
    }

    /// Event time in nanoseconds (a snap's millisecond time, scaled).
    pub fn ts_event_ns(&self) -> u64 {
        match self {
            Event::FuturesTrade(e) => e.ts_event_ns,
            Event::Mbp10(e) => e.ts_event_ns,
            Event::OptionTrade(e) => e.ts_event_ns,
            Event::StockTrade(e) => e.ts_event_ns,
            Event::StockQuote(e) => e.ts_event_ns,
            Event::LevelSignals(e) => (e.ts.max(0) as u64).saturating_mul(1_000_000),
            Event::FeedStatus(e) => e.ts_ns,
        }
    }

    /// When the feed received a market event (`None` for snaps and feed reports).
    pub fn ts_recv_ns(&self) -> Option<u64> {
        match self {
            Event::FuturesTrade(e) => Some(e.ts_recv_ns),
            Event::Mbp10(e) => Some(e.ts_recv_ns),
            Event::OptionTrade(e) => Some(e.ts_recv_ns),
            Event::StockTrade(e) => Some(e.ts_recv_ns),
            Event::StockQuote(e) => Some(e.ts_recv_ns),
            Event::LevelSignals(_) | Event::FeedStatus(_) => None,
        }
    }

    /// Serialises to one JSON line (without the newline), appending to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            // Book images are most of the traffic: written by hand, byte-identical to serde's
            // output (a unit test holds the two together).
            Event::Mbp10(m) => fast_json::mbp10(m, out, |_, r, out| fast_json::row(r, out)),
            // Serialising plain structs of numbers and strings into a Vec cannot fail.
            _ => serde_json::to_writer(&mut *out, self).expect("event serialisation is infallible"),
        }
    }

    /// Serialises to a JSON string.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Parses one JSON object. `subject` names the kind when the object has no `type`
    /// (messages from older publishers). Unknown extra fields are accepted.
    pub fn from_json(bytes: &[u8], subject: Option<&str>) -> Result<Event, EventError> {
        // Fast path: our own writers put the tag first.
        const PREFIX: &[u8] = b"{\"type\":\"";
        if let Some(rest) = bytes.strip_prefix(PREFIX)
            && let Some(end) = rest.iter().position(|&b| b == b'"')
            && let Some(kind) = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(EventKind::from_type_name)
        {
            return Self::from_json_as(kind, bytes);
        }
        // General path: find the tag anywhere, or infer it from the subject.
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow, default)]
            kind: Option<std::borrow::Cow<'a, str>>,
        }
        let tag: Tag = serde_json::from_slice(bytes)?;
        let kind = match tag.kind {
            Some(name) => EventKind::from_type_name(&name)
                .ok_or_else(|| EventError::UnknownType(name.into_owned()))?,
            None => subject
                .and_then(EventKind::from_subject)
                .ok_or(EventError::MissingType)?,
        };
        Self::from_json_as(kind, bytes)
    }

    /// Parses one JSON object as the given kind (any `type` field is ignored).
    pub fn from_json_as(kind: EventKind, bytes: &[u8]) -> Result<Event, EventError> {
        Ok(match kind {
            EventKind::FuturesTrade => Event::FuturesTrade(serde_json::from_slice(bytes)?),
            EventKind::Mbp10 => Event::Mbp10(serde_json::from_slice(bytes)?),
            EventKind::OptionTrade => Event::OptionTrade(serde_json::from_slice(bytes)?),
            EventKind::StockTrade => Event::StockTrade(serde_json::from_slice(bytes)?),
            EventKind::StockQuote => Event::StockQuote(serde_json::from_slice(bytes)?),
            EventKind::LevelSignals => Event::LevelSignals(serde_json::from_slice(bytes)?),
            EventKind::FeedStatus => Event::FeedStatus(serde_json::from_slice(bytes)?),
        })
    }
}

/// Writes events as JSON like [`Event::write_json`], byte for byte, for a sink that writes
/// many: it keeps the rows of the last MBP-10 image as written. A book update changes a row or
/// two and shifts the others by at most one place, so most rows are copied rather than
/// formatted again (about half the cost of a book image's JSON).
#[derive(Debug, Default)]
pub struct JsonWriter {
    /// Rows of the last image and their JSON; `next` is filled while writing an image.
    last: RowMemo,
    next: RowMemo,
}

#[derive(Debug, Default)]
struct RowMemo {
    rows: [Option<BookRow>; BOOK_DEPTH],
    json: [Vec<u8>; BOOK_DEPTH],
}

/// Rows equal bit for bit (so `-0.0` and `0.0`, which print differently, differ, and a NaN
/// price matches itself).
fn same_row(a: &BookRow, b: &BookRow) -> bool {
    let bits = |p: Option<f64>| p.map(f64::to_bits);
    bits(a.bid_px) == bits(b.bid_px)
        && bits(a.ask_px) == bits(b.ask_px)
        && a.bid_sz == b.bid_sz
        && a.ask_sz == b.ask_sz
        && a.bid_ct == b.bid_ct
        && a.ask_ct == b.ask_ct
}

impl JsonWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `event` as one JSON object (without the newline) to `out`.
    pub fn write(&mut self, event: &Event, out: &mut Vec<u8>) {
        let Event::Mbp10(m) = event else {
            event.write_json(out);
            return;
        };
        let (last, next) = (&self.last, &mut self.next);
        fast_json::mbp10(m, out, |i, r, out| {
            // The same place, or one up or down (a row inserted or removed above).
            let hit = [Some(i), i.checked_sub(1), Some(i + 1)]
                .into_iter()
                .flatten()
                .find(|&j| {
                    last.rows
                        .get(j)
                        .copied()
                        .flatten()
                        .is_some_and(|p| same_row(&p, r))
                });
            let json = &mut next.json[i];
            json.clear();
            match hit {
                Some(j) => json.extend_from_slice(&last.json[j]),
                None => fast_json::row(r, json),
            }
            out.extend_from_slice(json);
            next.rows[i] = Some(*r);
        });
        std::mem::swap(&mut self.last, &mut self.next);
    }
}

/// A hand-written JSON writer for MBP-10 images, producing exactly serde_json's bytes.
mod fast_json {
    use super::{BookRow, Mbp10};
    use serde_json::ser::{CompactFormatter, Formatter};

    // Writing into a Vec cannot fail; the formatter is serde_json's own, so numbers print alike.
    fn f64(v: f64, out: &mut Vec<u8>) {
        if !v.is_finite() {
            out.extend_from_slice(b"null");
        } else if !cents(v, out) {
            let _ = CompactFormatter.write_f64(out, v);
        }
    }

    /// Prices are nearly always whole cents (ticks of 0.25, 0.01): when `v` is the double
    /// nearest to a number of cents, that decimal is its shortest round-trip form, which is what
    /// serde_json prints; write it without the general algorithm. Returns false otherwise.
    pub(super) fn cents(v: f64, out: &mut Vec<u8>) -> bool {
        let a = v.abs();
        if !(1e-2..1e13).contains(&a) {
            return false;
        }
        let c = (a * 100.0).round();
        if c / 100.0 != a {
            return false;
        }
        let c = c as u64;
        if v < 0.0 {
            out.push(b'-');
        }
        let (whole, frac) = (c / 100, c % 100);
        let _ = CompactFormatter.write_u64(out, whole);
        out.push(b'.');
        if frac == 0 {
            out.push(b'0');
        } else {
            out.push(b'0' + (frac / 10) as u8);
            if frac % 10 != 0 {
                out.push(b'0' + (frac % 10) as u8);
            }
        }
        true
    }

    fn opt_f64(v: Option<f64>, out: &mut Vec<u8>) {
        match v {
            Some(x) => f64(x, out),
            None => out.extend_from_slice(b"null"),
        }
    }

    fn int(v: impl Into<u64>, out: &mut Vec<u8>) {
        let _ = CompactFormatter.write_u64(out, v.into());
    }

    /// A JSON string; escapes what JSON requires, like serde_json.
    fn string(s: &str, out: &mut Vec<u8>) {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        } else {
            serde_json::to_writer(&mut *out, s).expect("string serialisation is infallible");
        }
    }

    fn char(c: char, out: &mut Vec<u8>) {
        let mut buf = [0u8; 4];
        string(c.encode_utf8(&mut buf), out);
    }

    pub(super) fn row(r: &BookRow, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"bid_px\":");
        opt_f64(r.bid_px, out);
        out.extend_from_slice(b",\"bid_sz\":");
        int(r.bid_sz, out);
        out.extend_from_slice(b",\"ask_px\":");
        opt_f64(r.ask_px, out);
        out.extend_from_slice(b",\"ask_sz\":");
        int(r.ask_sz, out);
        if let Some(c) = r.bid_ct {
            out.extend_from_slice(b",\"bid_ct\":");
            int(c, out);
        }
        if let Some(c) = r.ask_ct {
            out.extend_from_slice(b",\"ask_ct\":");
            int(c, out);
        }
        out.push(b'}');
    }

    /// The image, each row written by `row` (given its place).
    pub(super) fn mbp10(
        m: &Mbp10,
        out: &mut Vec<u8>,
        mut row: impl FnMut(usize, &BookRow, &mut Vec<u8>),
    ) {
        out.reserve(1024);
        out.extend_from_slice(b"{\"type\":\"mbp10\",\"ts_event_ns\":");
        int(m.ts_event_ns, out);
        out.extend_from_slice(b",\"ts_recv_ns\":");
        int(m.ts_recv_ns, out);
        out.extend_from_slice(b",\"source\":");
        string(&m.source, out);
        out.extend_from_slice(b",\"symbol\":");
        string(&m.symbol, out);
        out.extend_from_slice(b",\"levels\":[");
        for (i, r) in m.levels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            row(i, r, out);
        }
        out.extend_from_slice(b"],\"is_snapshot\":");
        out.extend_from_slice(if m.is_snapshot { b"true" } else { b"false" });
        if let Some(v) = m.seq {
            out.extend_from_slice(b",\"seq\":");
            int(v, out);
        }
        if let Some(c) = m.action {
            out.extend_from_slice(b",\"action\":");
            char(c, out);
        }
        if let Some(c) = m.side {
            out.extend_from_slice(b",\"side\":");
            char(c, out);
        }
        if let Some(v) = m.price {
            out.extend_from_slice(b",\"price\":");
            f64(v, out);
        }
        if let Some(v) = m.size {
            out.extend_from_slice(b",\"size\":");
            int(v, out);
        }
        if let Some(v) = m.flags {
            out.extend_from_slice(b",\"flags\":");
            int(v, out);
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade() -> FuturesTrade {
        FuturesTrade {
            ts_event_ns: 1_700_000_000_000_000_000,
            ts_recv_ns: 1_700_000_000_000_000_100,
            source: "replay".into(),
            symbol: "ESZ5".into(),
            price: 6870.25,
            size: 3,
            aggressor: -1,
            exchange: None,
            seq: Some(42),
        }
    }

    #[test]
    fn futures_trade_serialises_with_type_first_and_exact_field_names() {
        let json = Event::FuturesTrade(trade()).to_json();
        assert_eq!(
            json,
            r#"{"type":"futures_trade","ts_event_ns":1700000000000000000,"ts_recv_ns":1700000000000000100,"source":"replay","symbol":"ESZ5","price":6870.25,"size":3,"aggressor":-1,"seq":42}"#
        );
        let back = Event::from_json(json.as_bytes(), None).unwrap();
        assert_eq!(back, Event::FuturesTrade(trade()));
    }

    #[test]
    fn empty_book_rows_and_non_finite_numbers_are_null() {
        let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
        levels[0] = BookRow {
            bid_px: Some(6870.0),
            bid_sz: 10,
            ask_px: Some(6870.25),
            ask_sz: 12,
            bid_ct: Some(3),
            ask_ct: Some(4),
        };
        let ev = Event::Mbp10(Box::new(Mbp10 {
            ts_event_ns: 1,
            ts_recv_ns: 2,
            source: "replay".into(),
            symbol: "ESZ5".into(),
            levels,
            is_snapshot: false,
            seq: None,
            action: Some('A'),
            side: Some('B'),
            price: Some(6870.0),
            size: Some(1),
            flags: Some(128),
        }));
        let json = ev.to_json();
        assert!(
            json.contains(r#"{"bid_px":null,"bid_sz":0,"ask_px":null,"ask_sz":0}"#),
            "{json}"
        );
        assert!(json.contains(r#""action":"A","side":"B""#), "{json}");
        assert_eq!(Event::from_json(json.as_bytes(), None).unwrap(), ev);

        let mut t = trade();
        t.price = f64::INFINITY;
        let json = Event::FuturesTrade(t).to_json();
        assert!(json.contains(r#""price":null"#), "{json}");
        assert!(!json.contains("inf") && !json.contains("NaN"));
        match Event::from_json(json.as_bytes(), None).unwrap() {
            Event::FuturesTrade(t) => assert!(t.price.is_nan()),
            other => panic!("wrong kind {other:?}"),
        }
    }

    #[test]
    fn missing_type_is_inferred_from_the_subject_and_unknown_fields_are_accepted() {
        let line = br#"{"ts_event_ns":5,"ts_recv_ns":6,"source":"polygon_ws","symbol":"SPY","price":687.1,"size":100,"venue_extra":{"a":1}}"#;
        let ev = Event::from_json(line, Some(subject::STOCKS_TRADES)).unwrap();
        assert_eq!(ev.kind(), EventKind::StockTrade);
        assert!(matches!(
            Event::from_json(line, None),
            Err(EventError::MissingType)
        ));
        // A `type` that is not first is still honoured.
        let line = br#"{"ts_event_ns":5,"type":"stock_trade","ts_recv_ns":6,"source":"x","symbol":"SPY","price":1.0,"size":1}"#;
        assert_eq!(
            Event::from_json(line, None).unwrap().kind(),
            EventKind::StockTrade
        );
    }

    #[test]
    fn malformed_json_and_unknown_types_are_errors() {
        assert!(matches!(
            Event::from_json(b"{\"type\":\"mbp10\",", None),
            Err(EventError::Json(_))
        ));
        assert!(matches!(
            Event::from_json(b"not json", None),
            Err(EventError::Json(_))
        ));
        assert!(matches!(
            Event::from_json(br#"{"type":"weather","t":1}"#, None),
            Err(EventError::UnknownType(t)) if t == "weather"
        ));
    }

    #[test]
    fn hand_written_mbp10_json_is_byte_identical_to_serde() {
        let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
        levels[0] = BookRow {
            bid_px: Some(6870.0),
            bid_sz: 10,
            ask_px: Some(0.1 + 0.2),
            ask_sz: u32::MAX,
            bid_ct: Some(3),
            ask_ct: None,
        };
        levels[1].bid_px = Some(f64::NAN);
        levels[2].ask_px = Some(1e-7);
        levels[3].bid_px = Some(1e21);
        let mut m = Mbp10 {
            ts_event_ns: u64::MAX,
            ts_recv_ns: 0,
            source: "re\"play\\\n".into(),
            symbol: "ESZ5 é".into(),
            levels,
            is_snapshot: true,
            seq: Some(7),
            action: Some('"'),
            side: Some('B'),
            price: Some(f64::NEG_INFINITY),
            size: Some(0),
            flags: Some(255),
        };
        let check = |m: &Mbp10| {
            let ev = Event::Mbp10(Box::new(m.clone()));
            let mut fast = Vec::new();
            ev.write_json(&mut fast);
            let reference = serde_json::to_vec(&ev).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(reference).unwrap()
            );
        };
        check(&m);
        m.seq = None;
        m.action = None;
        m.side = None;
        m.price = None;
        m.size = None;
        m.flags = None;
        m.is_snapshot = false;
        check(&m);
    }

    #[test]
    fn the_json_writer_reusing_rows_writes_what_write_json_writes() {
        // A book that changes a row, shifts rows up and down, flips a zero's sign and holds a
        // NaN, interleaved with another symbol's book and with trades.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rand = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut book = Mbp10 {
            ts_event_ns: 1,
            ts_recv_ns: 2,
            source: "replay".into(),
            symbol: "ESZ5".into(),
            levels: std::array::from_fn(|i| BookRow {
                bid_px: Some(6870.0 - i as f64 * 0.25),
                bid_sz: 10 + i as u32,
                ask_px: Some(6870.25 + i as f64 * 0.25),
                ask_sz: 20 + i as u32,
                bid_ct: Some(1),
                ask_ct: Some(2),
            }),
            is_snapshot: false,
            seq: Some(1),
            action: Some('A'),
            side: Some('B'),
            price: Some(6870.0),
            size: Some(1),
            flags: Some(0),
        };
        let mut other = book.clone();
        other.symbol = "ESH6".into();
        let trade = Event::FuturesTrade(FuturesTrade {
            ts_event_ns: 3,
            ts_recv_ns: 4,
            source: "replay".into(),
            symbol: "ESZ5".into(),
            price: 6870.25,
            size: 2,
            aggressor: 1,
            exchange: None,
            seq: None,
        });
        let mut writer = JsonWriter::new();
        let (mut reused, mut plain) = (Vec::new(), Vec::new());
        for step in 0..5_000 {
            let i = rand(BOOK_DEPTH as u64) as usize;
            match rand(6) {
                0 => book.levels[i].bid_sz = rand(50) as u32,
                1 => {
                    // A row inserted at i: the rest shift down.
                    book.levels.copy_within(i..BOOK_DEPTH - 1, i + 1);
                    book.levels[i].ask_px = Some(6870.25 + rand(40) as f64 * 0.25);
                }
                2 => {
                    // Row i removed: the rest shift up, an empty row at the bottom.
                    book.levels.copy_within(i + 1.., i);
                    book.levels[BOOK_DEPTH - 1] = BookRow::EMPTY;
                }
                3 => book.levels[i].bid_px = Some(if rand(2) == 0 { 0.0 } else { -0.0 }),
                4 => book.levels[i].ask_px = Some(f64::NAN),
                _ => book.levels[i].ask_ct = None,
            }
            book.seq = Some(step);
            let events = [
                Event::Mbp10(Box::new(book.clone())),
                Event::Mbp10(Box::new(other.clone())),
                trade.clone(),
            ];
            for ev in events.iter().take(1 + rand(3) as usize) {
                writer.write(ev, &mut reused);
                ev.write_json(&mut plain);
                reused.push(b'\n');
                plain.push(b'\n');
            }
        }
        assert!(reused == plain, "the writers differ");
        assert!(String::from_utf8_lossy(&plain).contains("\"bid_px\":-0.0"));
    }

    #[test]
    fn cent_prices_print_exactly_as_serde_json_prints_them() {
        let mut values = vec![
            0.01, 0.1, 0.25, 1.0, 687.01, 3720.25, 6870.5, 9.99e12, -1.5, 0.07,
        ];
        // A deterministic sweep of cent values and of values that are not whole cents.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push((x % 100_000_000) as f64 / 100.0);
            values.push((x % 1_000_000_000) as f64 / 1000.0);
            values.push(f64::from_bits(x) % 1e6);
        }
        for v in values {
            if !v.is_finite() {
                continue;
            }
            let mut fast = Vec::new();
            if fast_json::cents(v, &mut fast) {
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    serde_json::to_string(&v).unwrap(),
                    "{v:e}"
                );
            }
        }
    }

    #[test]
    fn subjects_and_kinds_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_subject(kind.subject()), Some(kind));
            assert_eq!(EventKind::from_type_name(kind.type_name()), Some(kind));
        }
    }
}
