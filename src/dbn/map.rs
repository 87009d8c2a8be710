//! Record-by-record mapping from decoded DBN records to canonical events.
//!
//! The [`Mapper`] holds everything a record alone does not say: the dataset's market (futures,
//! options, equities), the symbology (metadata mappings, `SymbolMappingMsg` records and
//! instrument definitions) and the option contract terms from definitions. See the module
//! documentation of [`crate::dbn`] for the mapping table.

use std::collections::{BTreeMap, HashMap, HashSet};

use ::dbn::{
    BboMsg, CbboMsg, Cmbp1Msg, ErrorMsg, HasRType, InstrumentDefMsg, Mbp1Msg, Mbp10Msg, Metadata,
    RecordRef, SType, SymbolMappingMsg, SystemMsg, TradeMsg, TsSymbolMap, UNDEF_PRICE,
    UNDEF_TIMESTAMP, rtype,
};

use crate::event::{BookRow, Event, FuturesTrade, Mbp10, OptionTrade, StockQuote, StockTrade};

/// Skip reasons (the keys of [`crate::dbn::DbnEventReader::skipped`]).
pub mod reason {
    pub const NO_SYMBOL: &str = "no symbol mapping";
    pub const NO_DEFINITION: &str = "option trade without instrument definition";
    pub const UNDEF_TRADE_PRICE: &str = "trade with undefined price";
    pub const FUTURES_TOP_OF_BOOK: &str = "futures top-of-book record (not a 10-level book image)";
    pub const OPTION_QUOTE: &str = "option quote (no option quote event)";
    pub const REPEATED_LAST_SALE: &str = "forward-filled last sale of an interval record";
    pub const NO_LAST_SALE: &str = "interval record without a last sale";
    pub const NON_FUTURES_MBP10: &str = "mbp-10 of a non-futures dataset";
    pub const NON_OPTION_DEFINITION: &str = "option definition without strike or expiry";
    pub const GATEWAY_ERROR: &str = "gateway error record";
    pub const MALFORMED: &str = "record shorter than its type";
}

/// The market a dataset belongs to, decided by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// CME Globex and the other futures venues: MBP-10 books and futures trades.
    Futures,
    /// OPRA: option trades with contract terms from definitions.
    Options,
    /// Everything else (XNAS.ITCH, EQUS.*, DBEQ.*, XNYS.*, ARCX.*, IEXG.*, ...).
    Equities,
}

impl Market {
    /// The market of a Databento dataset code such as `GLBX.MDP3`.
    pub fn of_dataset(dataset: &str) -> Market {
        const FUTURES: [&str; 6] = ["GLBX.", "IFEU.", "IFUS.", "IFLL.", "NDEX.", "XEUR."];
        if FUTURES.iter().any(|p| dataset.starts_with(p)) {
            Market::Futures
        } else if dataset.starts_with("OPRA.") {
            Market::Options
        } else {
            Market::Equities
        }
    }
}

/// What one record became.
// Returned by value and unpacked at once; boxing the event would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    /// A canonical event.
    Event(Event),
    /// The record was skipped for this reason (counted by the reader).
    Skip(&'static str),
    /// A control record (symbol mapping, definition, system message) that was applied.
    Applied,
}

/// Contract terms of one option, from its instrument definition.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionTerms {
    pub underlying: String,
    pub option_symbol: String,
    pub exp_date: String,
    pub strike: f64,
    pub right: char,
}

/// What instrument definitions (and symbol mapping records) taught a reader: symbols by
/// instrument id and option contract terms. Take it from a reader of a `definition` file and
/// give it to the readers of the trade files of the same day, which usually carry no
/// definitions of their own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Definitions {
    pub symbols: HashMap<u32, String>,
    pub options: HashMap<u32, OptionTerms>,
}

impl Definitions {
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty() && self.options.is_empty()
    }

    /// Adds `other`'s entries, replacing those of the same instrument.
    pub fn extend(&mut self, other: &Definitions) {
        self.symbols
            .extend(other.symbols.iter().map(|(k, v)| (*k, v.clone())));
        self.options
            .extend(other.options.iter().map(|(k, v)| (*k, v.clone())));
    }
}

/// Symbol of each instrument: point-in-time names from `SymbolMappingMsg` records and
/// definitions first, then the metadata's dated mappings.
#[derive(Debug, Default)]
struct Symbols {
    live: HashMap<u32, String>,
    dated: TsSymbolMap,
}

impl Symbols {
    fn from_metadata(metadata: &Metadata) -> Symbols {
        Symbols {
            live: HashMap::new(),
            dated: dated_symbols(metadata),
        }
    }

    #[inline]
    fn get(&self, instrument_id: u32, index_ts: u64) -> Option<&String> {
        if !self.live.is_empty()
            && let Some(s) = self.live.get(&instrument_id)
        {
            return Some(s);
        }
        self.dated.get_for_ts(index_ts, instrument_id)
    }

    /// The symbol of a record's instrument, dated by its `ts_recv` (or `ts_event` without one).
    #[inline]
    fn of_record(&self, instrument_id: u32, ts_event: u64, ts_recv: u64) -> Option<&String> {
        let index_ts = if ts_recv != UNDEF_TIMESTAMP {
            ts_recv
        } else {
            ts_event
        };
        self.get(instrument_id, index_ts)
    }
}

/// The metadata's mappings as instrument id → real symbol, or an empty map where they do not
/// name instruments (parent symbology names a whole product, and `instrument_id` → `instrument_id`
/// names nothing).
fn dated_symbols(metadata: &Metadata) -> TsSymbolMap {
    let names_contracts = |stype: Option<SType>| {
        !matches!(
            stype,
            None | Some(SType::InstrumentId) | Some(SType::Parent)
        )
    };
    let usable = if metadata.stype_out == SType::InstrumentId {
        names_contracts(metadata.stype_in)
    } else {
        metadata.stype_in == Some(SType::InstrumentId) && names_contracts(Some(metadata.stype_out))
    };
    if !usable || metadata.mappings.is_empty() {
        return TsSymbolMap::new();
    }
    match TsSymbolMap::from_metadata(metadata) {
        Ok(map) => map,
        Err(e) => {
            tracing::warn!("ignoring unusable symbology in DBN metadata: {e}");
            TsSymbolMap::new()
        }
    }
}

/// Turns decoded records into canonical events.
#[derive(Debug)]
pub struct Mapper {
    source: String,
    market: Market,
    symbols: Symbols,
    options: HashMap<u32, OptionTerms>,
    /// Instruments already reported as missing a definition (warned once each).
    warned_undefined: HashSet<u32>,
    /// Last sale time already emitted per instrument, for interval (bbo/cbbo) records.
    last_sale_ts: HashMap<u32, u64>,
    /// A book image handed back by the consumer, reused (box and strings) by the next one.
    spare: Option<Box<Mbp10>>,
}

const PRICE_SCALE: f64 = 1e9;

/// A fixed-point DBN price as a float, `None` for the undefined sentinel.
#[inline]
pub fn price(px: i64) -> Option<f64> {
    (px != UNDEF_PRICE).then(|| px as f64 / PRICE_SCALE)
}

/// DBN side to aggressor: `B` buy (1), `A` sell (-1), anything else unknown (0).
#[inline]
pub fn aggressor(side: std::ffi::c_char) -> i8 {
    match side as u8 {
        b'B' => 1,
        b'A' => -1,
        _ => 0,
    }
}

#[inline]
fn ch(c: std::ffi::c_char) -> char {
    c as u8 as char
}

/// The reason for skipping a record type this module does not map.
pub fn unsupported_reason(rtype: u8) -> &'static str {
    match rtype {
        rtype::MBO => "unsupported schema mbo",
        rtype::OHLCV_1S => "unsupported schema ohlcv-1s",
        rtype::OHLCV_1M => "unsupported schema ohlcv-1m",
        rtype::OHLCV_1H => "unsupported schema ohlcv-1h",
        rtype::OHLCV_1D => "unsupported schema ohlcv-1d",
        rtype::OHLCV_EOD => "unsupported schema ohlcv-eod",
        rtype::OHLCV_DEPRECATED => "unsupported schema ohlcv (deprecated)",
        rtype::STATUS => "unsupported schema status",
        rtype::IMBALANCE => "unsupported schema imbalance",
        rtype::STATISTICS => "unsupported schema statistics",
        rtype::TBBO => "unsupported record type tbbo (rtype 0xC5)",
        _ => "unsupported record type",
    }
}

/// `expiration` (UTC nanoseconds) as the `YYYY-MM-DD` expiry date.
///
/// OPRA stamps expirations at midnight UTC of the expiry date (date precision only); read in
/// US/Eastern that instant is the evening before, so a timestamp exactly at midnight UTC is
/// taken as the date it names. Any other timestamp is converted to its US/Eastern date.
pub fn exp_date(expiration_ns: u64) -> Option<String> {
    use chrono::{Datelike, TimeZone};
    const DAY_NS: u64 = 86_400_000_000_000;
    if expiration_ns == UNDEF_TIMESTAMP {
        return None;
    }
    let secs = i64::try_from(expiration_ns / 1_000_000_000).ok()?;
    let utc = chrono::DateTime::from_timestamp(secs, 0)?;
    let date = if expiration_ns.is_multiple_of(DAY_NS) {
        utc.date_naive()
    } else {
        chrono_tz::America::New_York
            .from_utc_datetime(&utc.naive_utc())
            .date_naive()
    };
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month(),
        date.day()
    ))
}

/// A fixed-size C string field as `&str`, up to its first NUL, trimmed.
fn cstr(chars: &[std::ffi::c_char]) -> &str {
    let len = chars.iter().position(|&c| c == 0).unwrap_or(chars.len());
    let slice = &chars[..len];
    let bytes = c_chars_as_bytes(slice);
    std::str::from_utf8(bytes).map(str::trim).unwrap_or("")
}

fn c_chars_as_bytes(chars: &[std::ffi::c_char]) -> &[u8] {
    // SAFETY: `c_char` is a one-byte integer type (i8 or u8) with the same size and
    // alignment as `u8`, and every bit pattern is valid for both.
    unsafe { std::slice::from_raw_parts(chars.as_ptr().cast::<u8>(), chars.len()) }
}

impl Mapper {
    /// A mapper for one file described by `metadata`, stamping events with `source`.
    pub fn new(metadata: &Metadata, source: &str) -> Mapper {
        Mapper {
            source: source.to_owned(),
            market: Market::of_dataset(&metadata.dataset),
            symbols: Symbols::from_metadata(metadata),
            options: HashMap::new(),
            warned_undefined: HashSet::new(),
            last_sale_ts: HashMap::new(),
            spare: None,
        }
    }

    /// Takes back an event the consumer is done with, to reuse its allocations.
    pub fn recycle(&mut self, event: Event) {
        if let Event::Mbp10(m) = event {
            self.spare = Some(m);
        }
    }

    pub fn market(&self) -> Market {
        self.market
    }

    /// The contract terms known for an option instrument.
    pub fn option_terms(&self, instrument_id: u32) -> Option<&OptionTerms> {
        self.options.get(&instrument_id)
    }

    /// Everything learnt so far from definitions and symbol mapping records.
    pub fn definitions(&self) -> Definitions {
        Definitions {
            symbols: self.symbols.live.clone(),
            options: self.options.clone(),
        }
    }

    /// Learns `defs` as if their records had come first in this stream.
    pub fn add_definitions(&mut self, defs: &Definitions) {
        for (iid, sym) in &defs.symbols {
            self.symbols.live.insert(*iid, sym.clone());
        }
        for (iid, terms) in &defs.options {
            self.options.insert(*iid, terms.clone());
        }
    }

    /// Maps one record.
    pub fn map(&mut self, rec: RecordRef<'_>) -> Outcome {
        let rt = rec.header().rtype;
        match rt {
            rtype::MBP_10 => with::<Mbp10Msg>(rec, |m| self.mbp10(m)),
            rtype::MBP_0 => with::<TradeMsg>(rec, |m| {
                self.trade(
                    m.hd.instrument_id,
                    m.hd.ts_event,
                    m.ts_recv,
                    m.price,
                    m.size,
                    m.side,
                    None,
                    Some(m.sequence),
                )
            }),
            rtype::MBP_1 => with::<Mbp1Msg>(rec, |m| self.mbp1(m)),
            rtype::CMBP_1 | rtype::TCBBO => with::<Cmbp1Msg>(rec, |m| self.cmbp1(m)),
            rtype::CBBO_1S | rtype::CBBO_1M => with::<CbboMsg>(rec, |m| {
                let l = &m.levels[0];
                self.interval(
                    m.hd.instrument_id,
                    m.hd.ts_event,
                    m.ts_recv,
                    m.price,
                    m.size,
                    m.side,
                    (l.bid_px, l.ask_px, l.bid_sz, l.ask_sz),
                    None,
                )
            }),
            rtype::BBO_1S | rtype::BBO_1M => with::<BboMsg>(rec, |m| {
                let l = &m.levels[0];
                self.interval(
                    m.hd.instrument_id,
                    m.hd.ts_event,
                    m.ts_recv,
                    m.price,
                    m.size,
                    m.side,
                    (l.bid_px, l.ask_px, l.bid_sz, l.ask_sz),
                    Some(m.sequence),
                )
            }),
            rtype::INSTRUMENT_DEF => with::<InstrumentDefMsg>(rec, |m| self.definition(m)),
            rtype::SYMBOL_MAPPING => with::<SymbolMappingMsg>(rec, |m| self.symbol_mapping(m)),
            rtype::ERROR => with::<ErrorMsg>(rec, |m| {
                tracing::warn!("DBN error record: {}", cstr(&m.err));
                Outcome::Skip(reason::GATEWAY_ERROR)
            }),
            rtype::SYSTEM => with::<SystemMsg>(rec, |m| {
                if !m.is_heartbeat() {
                    tracing::info!("DBN system record: {}", cstr(&m.msg));
                }
                Outcome::Applied
            }),
            other => Outcome::Skip(unsupported_reason(other)),
        }
    }

    #[inline]
    fn symbol(&self, instrument_id: u32, ts_event: u64, ts_recv: u64) -> Option<String> {
        self.symbols
            .of_record(instrument_id, ts_event, ts_recv)
            .cloned()
    }

    fn mbp10(&mut self, m: &Mbp10Msg) -> Outcome {
        if self.market != Market::Futures {
            return Outcome::Skip(reason::NON_FUTURES_MBP10);
        }
        let Some(symbol) = self
            .symbols
            .of_record(m.hd.instrument_id, m.hd.ts_event, m.ts_recv)
        else {
            return Outcome::Skip(reason::NO_SYMBOL);
        };
        // Filled in place in a recycled image when there is one: no allocation.
        let mut out = self.spare.take().unwrap_or_default();
        out.source.clone_from(&self.source);
        out.symbol.clone_from(symbol);
        for (row, l) in out.levels.iter_mut().zip(m.levels.iter()) {
            *row = BookRow::EMPTY;
            if l.bid_px != UNDEF_PRICE {
                row.bid_px = price(l.bid_px);
                row.bid_sz = l.bid_sz;
                row.bid_ct = Some(l.bid_ct);
            }
            if l.ask_px != UNDEF_PRICE {
                row.ask_px = price(l.ask_px);
                row.ask_sz = l.ask_sz;
                row.ask_ct = Some(l.ask_ct);
            }
        }
        out.ts_event_ns = m.hd.ts_event;
        out.ts_recv_ns = m.ts_recv;
        out.is_snapshot = m.flags.is_snapshot();
        out.seq = Some(u64::from(m.sequence));
        out.action = Some(ch(m.action));
        out.side = Some(ch(m.side));
        out.price = price(m.price);
        out.size = Some(m.size);
        out.flags = Some(m.flags.raw());
        Outcome::Event(Event::Mbp10(out))
    }

    fn mbp1(&mut self, m: &Mbp1Msg) -> Outcome {
        let l = &m.levels[0];
        if m.action as u8 == b'T' {
            return self.trade(
                m.hd.instrument_id,
                m.hd.ts_event,
                m.ts_recv,
                m.price,
                m.size,
                m.side,
                Some((l.bid_px, l.ask_px)),
                Some(m.sequence),
            );
        }
        self.quote(
            m.hd.instrument_id,
            m.hd.ts_event,
            m.ts_recv,
            (l.bid_px, l.ask_px, l.bid_sz, l.ask_sz),
            Some(m.sequence),
        )
    }

    fn cmbp1(&mut self, m: &Cmbp1Msg) -> Outcome {
        let l = &m.levels[0];
        if m.action as u8 == b'T' || m.hd.rtype == rtype::TCBBO {
            return self.trade(
                m.hd.instrument_id,
                m.hd.ts_event,
                m.ts_recv,
                m.price,
                m.size,
                m.side,
                Some((l.bid_px, l.ask_px)),
                None,
            );
        }
        self.quote(
            m.hd.instrument_id,
            m.hd.ts_event,
            m.ts_recv,
            (l.bid_px, l.ask_px, l.bid_sz, l.ask_sz),
            None,
        )
    }

    /// A trade of any market. `quote` is the top of book carried by the record, if any.
    #[allow(clippy::too_many_arguments)]
    fn trade(
        &mut self,
        instrument_id: u32,
        ts_event: u64,
        ts_recv: u64,
        px: i64,
        size: u32,
        side: std::ffi::c_char,
        quote: Option<(i64, i64)>,
        seq: Option<u32>,
    ) -> Outcome {
        let Some(px) = price(px) else {
            return Outcome::Skip(reason::UNDEF_TRADE_PRICE);
        };
        let seq = seq.map(u64::from);
        match self.market {
            Market::Futures => {
                let Some(symbol) = self.symbol(instrument_id, ts_event, ts_recv) else {
                    return Outcome::Skip(reason::NO_SYMBOL);
                };
                Outcome::Event(Event::FuturesTrade(FuturesTrade {
                    ts_event_ns: ts_event,
                    ts_recv_ns: ts_recv,
                    source: self.source.clone(),
                    symbol,
                    price: px,
                    size,
                    aggressor: aggressor(side),
                    exchange: None,
                    seq,
                }))
            }
            Market::Equities => {
                let Some(symbol) = self.symbol(instrument_id, ts_event, ts_recv) else {
                    return Outcome::Skip(reason::NO_SYMBOL);
                };
                Outcome::Event(Event::StockTrade(StockTrade {
                    ts_event_ns: ts_event,
                    ts_recv_ns: ts_recv,
                    source: self.source.clone(),
                    symbol,
                    price: px,
                    size,
                    exchange: None,
                    seq,
                }))
            }
            Market::Options => {
                let Some(terms) = self.options.get(&instrument_id) else {
                    if self.warned_undefined.insert(instrument_id) {
                        tracing::warn!(
                            instrument_id,
                            "option trade for an instrument with no definition yet: skipped \
                             (put the definition file first or in the same stream)"
                        );
                    }
                    return Outcome::Skip(reason::NO_DEFINITION);
                };
                let (opt_bid, opt_ask) = match quote {
                    Some((bid, ask)) => (price(bid), price(ask)),
                    None => (None, None),
                };
                Outcome::Event(Event::OptionTrade(OptionTrade {
                    ts_event_ns: ts_event,
                    ts_recv_ns: ts_recv,
                    source: self.source.clone(),
                    underlying: terms.underlying.clone(),
                    option_symbol: terms.option_symbol.clone(),
                    exp_date: terms.exp_date.clone(),
                    strike: terms.strike,
                    right: terms.right,
                    price: px,
                    size,
                    opt_bid,
                    opt_ask,
                    aggressor: aggressor(side),
                    seq,
                }))
            }
        }
    }

    /// A top-of-book quote (a non-trade mbp-1 / cmbp-1 record, or an interval record).
    fn quote(
        &mut self,
        instrument_id: u32,
        ts_event: u64,
        ts_recv: u64,
        (bid_px, ask_px, bid_sz, ask_sz): (i64, i64, u32, u32),
        seq: Option<u32>,
    ) -> Outcome {
        match self.market {
            Market::Futures => Outcome::Skip(reason::FUTURES_TOP_OF_BOOK),
            Market::Options => Outcome::Skip(reason::OPTION_QUOTE),
            Market::Equities => {
                let Some(symbol) = self.symbol(instrument_id, ts_event, ts_recv) else {
                    return Outcome::Skip(reason::NO_SYMBOL);
                };
                let bid = price(bid_px);
                let ask = price(ask_px);
                Outcome::Event(Event::StockQuote(StockQuote {
                    ts_event_ns: ts_event,
                    ts_recv_ns: ts_recv,
                    source: self.source.clone(),
                    symbol,
                    bid_px: bid.unwrap_or(f64::NAN),
                    ask_px: ask.unwrap_or(f64::NAN),
                    bid_sz: if bid.is_some() { bid_sz } else { 0 },
                    ask_sz: if ask.is_some() { ask_sz } else { 0 },
                    seq: seq.map(u64::from),
                }))
            }
        }
    }

    /// An interval record (bbo-1s/1m, cbbo-1s/1m): the top of book at the interval's end plus
    /// the session's last sale, forward-filled from earlier intervals when nothing traded.
    ///
    /// Equities: a quote stamped at the interval end (`ts_recv`; the record's `ts_event` is the
    /// last sale's time). Options: the last sale as a trade, once per sale (a sale whose
    /// `ts_event` was already emitted for the instrument is a forward fill), with the
    /// interval-end quote. Futures: skipped, like other top-of-book records.
    #[allow(clippy::too_many_arguments)]
    fn interval(
        &mut self,
        instrument_id: u32,
        ts_event: u64,
        ts_recv: u64,
        px: i64,
        size: u32,
        side: std::ffi::c_char,
        book: (i64, i64, u32, u32),
        seq: Option<u32>,
    ) -> Outcome {
        match self.market {
            Market::Equities => self.quote(instrument_id, ts_recv, ts_recv, book, seq),
            Market::Futures => Outcome::Skip(reason::FUTURES_TOP_OF_BOOK),
            Market::Options => {
                if ts_event == UNDEF_TIMESTAMP || px == UNDEF_PRICE {
                    return Outcome::Skip(reason::NO_LAST_SALE);
                }
                if self.last_sale_ts.get(&instrument_id) == Some(&ts_event) {
                    return Outcome::Skip(reason::REPEATED_LAST_SALE);
                }
                let out = self.trade(
                    instrument_id,
                    ts_event,
                    ts_recv,
                    px,
                    size,
                    side,
                    Some((book.0, book.1)),
                    seq,
                );
                if matches!(out, Outcome::Event(_)) {
                    self.last_sale_ts.insert(instrument_id, ts_event);
                }
                out
            }
        }
    }

    fn definition(&mut self, d: &InstrumentDefMsg) -> Outcome {
        let iid = d.hd.instrument_id;
        let raw_symbol = cstr(&d.raw_symbol);
        if !raw_symbol.is_empty() {
            self.symbols.live.insert(iid, raw_symbol.to_owned());
        }
        if self.market != Market::Options {
            return Outcome::Applied;
        }
        let right = match d.instrument_class as u8 {
            b'C' => 'C',
            b'P' => 'P',
            _ => return Outcome::Applied,
        };
        let (Some(strike), Some(exp)) = (price(d.strike_price), exp_date(d.expiration)) else {
            return Outcome::Skip(reason::NON_OPTION_DEFINITION);
        };
        let underlying = match cstr(&d.underlying) {
            "" => cstr(&d.asset),
            u => u,
        };
        self.options.insert(
            iid,
            OptionTerms {
                underlying: underlying.to_owned(),
                option_symbol: raw_symbol.to_owned(),
                exp_date: exp,
                strike,
                right,
            },
        );
        Outcome::Applied
    }

    fn symbol_mapping(&mut self, m: &SymbolMappingMsg) -> Outcome {
        // The output symbol is the raw symbol in live data; where the record says the input
        // side is the raw symbol (and the output only an id), use that instead.
        let out = cstr(&m.stype_out_symbol);
        let inp = cstr(&m.stype_in_symbol);
        let stype_out = SType::try_from(m.stype_out).ok();
        let stype_in = SType::try_from(m.stype_in).ok();
        let symbol = if stype_out == Some(SType::InstrumentId) && stype_in == Some(SType::RawSymbol)
        {
            inp
        } else {
            out
        };
        if !symbol.is_empty() {
            self.symbols
                .live
                .insert(m.hd.instrument_id, symbol.to_owned());
        }
        Outcome::Applied
    }
}

/// Runs `f` on the record as a `T`, or skips it when it is too short to be one.
#[inline]
fn with<'a, T: HasRType<Header = ::dbn::RecordHeader> + 'a>(
    rec: RecordRef<'a>,
    f: impl FnOnce(&'a T) -> Outcome,
) -> Outcome {
    match rec.try_get::<T>() {
        Ok(m) => f(m),
        Err(_) => Outcome::Skip(reason::MALFORMED),
    }
}

/// Adds one to `reason`'s count without allocating once the reason is known.
pub fn count(skipped: &mut BTreeMap<String, u64>, reason: &str) {
    if let Some(n) = skipped.get_mut(reason) {
        *n += 1;
    } else {
        skipped.insert(reason.to_owned(), 1);
    }
}
