//! Line and frame codecs for pipes: NDJSON (the contract) and the compact binary framing.
//!
//! The binary stream starts with [`BIN_MAGIC`], then one frame per event: a little-endian `u32`
//! payload length, then the payload — a kind tag byte followed by the event's fields in a fixed
//! order (integers little-endian, floats as IEEE-754 bits so NaN and `None` survive exactly,
//! strings as a `u16` length and UTF-8 bytes). `level_signals` frames carry the event's JSON,
//! since signals are few and their consumers want JSON anyway. A reader tells the two formats
//! apart from the first bytes: NDJSON starts with `{` or whitespace, never with the magic.
//!
//! MBP-10 images are mostly repeated rows, so [`FrameEncoder`] writes an image that follows one
//! of the same source and symbol as a delta frame (tag 7): both timestamps, a bit mask of the
//! rows that changed, those rows, then the change that made the image. [`FrameDecoder`] keeps
//! the previous image to rebuild it.

use crate::event::{
    BOOK_DEPTH, BookRow, Event, EventKind, FuturesTrade, Mbp10, OptionTrade, StockQuote, StockTrade,
};

/// First bytes of a binary event stream.
pub const BIN_MAGIC: &[u8; 8] = b"SPMBIN1\n";

/// Largest frame a reader accepts; anything bigger is corruption.
pub const MAX_FRAME: usize = 16 << 20;

/// Errors decoding a binary frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame ends early (needed {needed} more bytes)")]
    Short { needed: usize },
    #[error("unknown event tag {0}")]
    UnknownTag(u8),
    #[error("invalid UTF-8 in a string field")]
    Utf8,
    #[error("invalid character code {0} in a char field")]
    Char(u32),
    #[error("{0} trailing bytes after the event")]
    Trailing(usize),
    #[error("book delta frame without a preceding full book image")]
    NoBase,
    #[error("book delta names rows beyond the tenth (mask {0:#06x})")]
    BadMask(u16),
    #[error("embedded JSON: {0}")]
    Json(String),
}

fn tag_of(kind: EventKind) -> u8 {
    match kind {
        EventKind::FuturesTrade => 1,
        EventKind::Mbp10 => 2,
        EventKind::OptionTrade => 3,
        EventKind::StockTrade => 4,
        EventKind::StockQuote => 5,
        EventKind::LevelSignals => 6,
        EventKind::FeedStatus => 7,
    }
}

/// Appends one frame (length prefix and payload) for `event` to `out`.
pub fn encode_frame(event: &Event, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut w = Writer(out);
    w.u8(tag_of(event.kind()));
    match event {
        Event::FuturesTrade(t) => {
            w.header(t.ts_event_ns, t.ts_recv_ns, &t.source, &t.symbol);
            w.f64(t.price);
            w.u32(t.size);
            w.u8(t.aggressor as u8);
            w.opt_str(t.exchange.as_deref());
            w.opt_u64(t.seq);
        }
        Event::Mbp10(m) => {
            w.header(m.ts_event_ns, m.ts_recv_ns, &m.source, &m.symbol);
            for row in &m.levels {
                w.row(row);
            }
            w.mbp10_tail(m);
        }
        Event::OptionTrade(o) => {
            w.header(o.ts_event_ns, o.ts_recv_ns, &o.source, &o.underlying);
            w.str(&o.option_symbol);
            w.str(&o.exp_date);
            w.f64(o.strike);
            w.u32(o.right as u32);
            w.f64(o.price);
            w.u32(o.size);
            w.opt_f64(o.opt_bid);
            w.opt_f64(o.opt_ask);
            w.u8(o.aggressor as u8);
            w.opt_u64(o.seq);
        }
        Event::StockTrade(t) => {
            w.header(t.ts_event_ns, t.ts_recv_ns, &t.source, &t.symbol);
            w.f64(t.price);
            w.u32(t.size);
            w.opt_str(t.exchange.as_deref());
            w.opt_u64(t.seq);
        }
        Event::StockQuote(q) => {
            w.header(q.ts_event_ns, q.ts_recv_ns, &q.source, &q.symbol);
            w.f64(q.bid_px);
            w.f64(q.ask_px);
            w.u32(q.bid_sz);
            w.u32(q.ask_sz);
            w.opt_u64(q.seq);
        }
        Event::LevelSignals(_) | Event::FeedStatus(_) => event.write_json(w.0),
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Decodes one frame payload (without its length prefix).
pub fn decode_payload(payload: &[u8]) -> Result<Event, FrameError> {
    let mut r = Reader(payload);
    let tag = r.u8()?;
    let event = match tag {
        1 => {
            let (ts_event_ns, ts_recv_ns, source, symbol) = r.header()?;
            Event::FuturesTrade(FuturesTrade {
                ts_event_ns,
                ts_recv_ns,
                source,
                symbol,
                price: r.f64()?,
                size: r.u32()?,
                aggressor: r.u8()? as i8,
                exchange: r.opt_str()?,
                seq: r.opt_u64()?,
            })
        }
        2 => {
            let (ts_event_ns, ts_recv_ns, source, symbol) = r.header()?;
            let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
            for row in &mut levels {
                *row = r.row()?;
            }
            Event::Mbp10(Box::new(r.mbp10_tail(
                ts_event_ns,
                ts_recv_ns,
                source,
                symbol,
                levels,
            )?))
        }
        3 => {
            let (ts_event_ns, ts_recv_ns, source, underlying) = r.header()?;
            Event::OptionTrade(OptionTrade {
                ts_event_ns,
                ts_recv_ns,
                source,
                underlying,
                option_symbol: r.str()?,
                exp_date: r.str()?,
                strike: r.f64()?,
                right: r.char()?,
                price: r.f64()?,
                size: r.u32()?,
                opt_bid: r.opt_f64()?,
                opt_ask: r.opt_f64()?,
                aggressor: r.u8()? as i8,
                seq: r.opt_u64()?,
            })
        }
        4 => {
            let (ts_event_ns, ts_recv_ns, source, symbol) = r.header()?;
            Event::StockTrade(StockTrade {
                ts_event_ns,
                ts_recv_ns,
                source,
                symbol,
                price: r.f64()?,
                size: r.u32()?,
                exchange: r.opt_str()?,
                seq: r.opt_u64()?,
            })
        }
        5 => {
            let (ts_event_ns, ts_recv_ns, source, symbol) = r.header()?;
            Event::StockQuote(StockQuote {
                ts_event_ns,
                ts_recv_ns,
                source,
                symbol,
                bid_px: r.f64()?,
                ask_px: r.f64()?,
                bid_sz: r.u32()?,
                ask_sz: r.u32()?,
                seq: r.opt_u64()?,
            })
        }
        6 | 7 => {
            let kind = if tag == 6 {
                EventKind::LevelSignals
            } else {
                EventKind::FeedStatus
            };
            let json = std::mem::take(&mut r.0);
            Event::from_json_as(kind, json).map_err(|e| FrameError::Json(e.to_string()))?
        }
        other => return Err(FrameError::UnknownTag(other)),
    };
    if !r.0.is_empty() {
        return Err(FrameError::Trailing(r.0.len()));
    }
    Ok(event)
}

/// Tag of an MBP-10 image written as the rows that changed since the previous image.
const TAG_MBP10_DELTA: u8 = 7;

/// The previous MBP-10 image of a binary stream: the base of the next delta frame.
#[derive(Debug, Default)]
struct BookBase {
    source: String,
    symbol: String,
    levels: [BookRow; BOOK_DEPTH],
}

/// Writes binary frames. Stateful: an MBP-10 image of the same source and symbol as the
/// previous one is written as a delta holding only the rows that changed (most updates touch one
/// or two rows), which keeps a fast local pipe several times smaller than full images.
#[derive(Debug, Default)]
pub struct FrameEncoder {
    base: Option<BookBase>,
}

impl FrameEncoder {
    /// Appends one frame for `event` to `out`.
    pub fn encode(&mut self, event: &Event, out: &mut Vec<u8>) {
        let Event::Mbp10(m) = event else {
            return encode_frame(event, out);
        };
        match &mut self.base {
            Some(base) if base.source == m.source && base.symbol == m.symbol => {
                let start = out.len();
                out.extend_from_slice(&[0; 4]);
                let mut w = Writer(out);
                w.u8(TAG_MBP10_DELTA);
                w.u64(m.ts_event_ns);
                w.u64(m.ts_recv_ns);
                let mask = (0..BOOK_DEPTH)
                    .filter(|&i| !same_row(&base.levels[i], &m.levels[i]))
                    .fold(0u16, |acc, i| acc | (1 << i));
                w.0.extend_from_slice(&mask.to_le_bytes());
                for i in (0..BOOK_DEPTH).filter(|i| mask & (1 << i) != 0) {
                    w.row(&m.levels[i]);
                }
                w.mbp10_tail(m);
                let len = (out.len() - start - 4) as u32;
                out[start..start + 4].copy_from_slice(&len.to_le_bytes());
                base.levels = m.levels;
            }
            _ => {
                encode_frame(event, out);
                self.base = Some(BookBase {
                    source: m.source.clone(),
                    symbol: m.symbol.clone(),
                    levels: m.levels,
                });
            }
        }
    }
}

/// Rows compare by bits, so NaN prices and their absence are told apart exactly.
fn same_row(a: &BookRow, b: &BookRow) -> bool {
    a.bid_px.map(f64::to_bits) == b.bid_px.map(f64::to_bits)
        && a.ask_px.map(f64::to_bits) == b.ask_px.map(f64::to_bits)
        && a.bid_sz == b.bid_sz
        && a.ask_sz == b.ask_sz
        && a.bid_ct == b.bid_ct
        && a.ask_ct == b.ask_ct
}

/// Reads binary frames written by [`FrameEncoder`] (and plain frames).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    base: Option<BookBase>,
    /// A book image handed back by the consumer, reused (box and strings) by the next delta.
    spare: Option<Box<Mbp10>>,
}

impl FrameDecoder {
    /// Decodes one frame payload (without its length prefix).
    pub fn decode(&mut self, payload: &[u8]) -> Result<Event, FrameError> {
        if payload.first() != Some(&TAG_MBP10_DELTA) {
            let event = decode_payload(payload)?;
            if let Event::Mbp10(m) = &event {
                self.base = Some(BookBase {
                    source: m.source.clone(),
                    symbol: m.symbol.clone(),
                    levels: m.levels,
                });
            }
            return Ok(event);
        }
        let base = self.base.as_mut().ok_or(FrameError::NoBase)?;
        let mut r = Reader(&payload[1..]);
        let ts_event_ns = r.u64()?;
        let ts_recv_ns = r.u64()?;
        let mask = u16::from_le_bytes(r.array()?);
        if mask >> BOOK_DEPTH != 0 {
            return Err(FrameError::BadMask(mask));
        }
        // Written in place into a recycled image when there is one: no allocation, and the
        // rows are copied once in and once back to the base.
        let mut m = self.spare.take().unwrap_or_default();
        m.source.clone_from(&base.source);
        m.symbol.clone_from(&base.symbol);
        m.levels = base.levels;
        m.ts_event_ns = ts_event_ns;
        m.ts_recv_ns = ts_recv_ns;
        for (i, row) in m.levels.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *row = r.row()?;
            }
        }
        r.mbp10_tail_into(&mut m)?;
        if !r.0.is_empty() {
            return Err(FrameError::Trailing(r.0.len()));
        }
        base.levels = m.levels;
        Ok(Event::Mbp10(m))
    }

    /// Takes back an event the consumer is done with (see [`crate::io::EventSource::recycle`]).
    pub fn recycle(&mut self, event: Event) {
        if let Event::Mbp10(m) = event {
            self.spare = Some(m);
        }
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn row(&mut self, row: &BookRow) {
        self.opt_f64(row.bid_px);
        self.u32(row.bid_sz);
        self.opt_f64(row.ask_px);
        self.u32(row.ask_sz);
        self.opt_u32(row.bid_ct);
        self.opt_u32(row.ask_ct);
    }
    fn mbp10_tail(&mut self, m: &Mbp10) {
        self.u8(m.is_snapshot as u8);
        self.opt_u64(m.seq);
        self.opt_char(m.action);
        self.opt_char(m.side);
        self.opt_f64(m.price);
        self.opt_u32(m.size);
        match m.flags {
            Some(f) => {
                self.u8(1);
                self.u8(f);
            }
            None => self.u8(0),
        }
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn str(&mut self, s: &str) {
        // Strings longer than 64 KiB do not occur in market data; cut at a char boundary.
        let mut end = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.extend_from_slice(&(end as u16).to_le_bytes());
        self.0.extend_from_slice(&s.as_bytes()[..end]);
    }
    fn header(&mut self, ts_event: u64, ts_recv: u64, source: &str, symbol: &str) {
        self.u64(ts_event);
        self.u64(ts_recv);
        self.str(source);
        self.str(symbol);
    }
    fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.f64(x);
            }
            None => self.u8(0),
        }
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u32(x);
            }
            None => self.u8(0),
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
            None => self.u8(0),
        }
    }
    fn opt_char(&mut self, v: Option<char>) {
        self.opt_u32(v.map(|c| c as u32));
    }
    fn opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn row(&mut self) -> Result<BookRow, FrameError> {
        Ok(BookRow {
            bid_px: self.opt_f64()?,
            bid_sz: self.u32()?,
            ask_px: self.opt_f64()?,
            ask_sz: self.u32()?,
            bid_ct: self.opt_u32()?,
            ask_ct: self.opt_u32()?,
        })
    }
    fn mbp10_tail(
        &mut self,
        ts_event_ns: u64,
        ts_recv_ns: u64,
        source: String,
        symbol: String,
        levels: [BookRow; BOOK_DEPTH],
    ) -> Result<Mbp10, FrameError> {
        let mut m = Mbp10 {
            ts_event_ns,
            ts_recv_ns,
            source,
            symbol,
            levels,
            ..Mbp10::default()
        };
        self.mbp10_tail_into(&mut m)?;
        Ok(m)
    }
    /// Reads the fields after the rows into an existing image.
    fn mbp10_tail_into(&mut self, m: &mut Mbp10) -> Result<(), FrameError> {
        m.is_snapshot = self.u8()? != 0;
        m.seq = self.opt_u64()?;
        m.action = self.opt_char()?;
        m.side = self.opt_char()?;
        m.price = self.opt_f64()?;
        m.size = self.opt_u32()?;
        m.flags = if self.u8()? != 0 {
            Some(self.u8()?)
        } else {
            None
        };
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Short {
                needed: n - self.0.len(),
            });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, FrameError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn str(&mut self) -> Result<String, FrameError> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| FrameError::Utf8)
    }
    fn char(&mut self) -> Result<char, FrameError> {
        let code = self.u32()?;
        char::from_u32(code).ok_or(FrameError::Char(code))
    }
    fn header(&mut self) -> Result<(u64, u64, String, String), FrameError> {
        Ok((self.u64()?, self.u64()?, self.str()?, self.str()?))
    }
    fn present(&mut self) -> Result<bool, FrameError> {
        Ok(self.u8()? != 0)
    }
    fn opt_f64(&mut self) -> Result<Option<f64>, FrameError> {
        Ok(if self.present()? {
            Some(self.f64()?)
        } else {
            None
        })
    }
    fn opt_u32(&mut self) -> Result<Option<u32>, FrameError> {
        Ok(if self.present()? {
            Some(self.u32()?)
        } else {
            None
        })
    }
    fn opt_u64(&mut self) -> Result<Option<u64>, FrameError> {
        Ok(if self.present()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    fn opt_char(&mut self) -> Result<Option<char>, FrameError> {
        Ok(if self.present()? {
            Some(self.char()?)
        } else {
            None
        })
    }
    fn opt_str(&mut self) -> Result<Option<String>, FrameError> {
        Ok(if self.present()? {
            Some(self.str()?)
        } else {
            None
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{LevelSignal, LevelSignals, SpyQuote};

    /// One event of every kind, with optional fields both set and unset.
    pub(crate) fn sample_events() -> Vec<Event> {
        let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
        levels[0] = BookRow {
            bid_px: Some(6870.0),
            bid_sz: 10,
            ask_px: Some(6870.25),
            ask_sz: 7,
            bid_ct: Some(2),
            ask_ct: None,
        };
        vec![
            Event::FuturesTrade(FuturesTrade {
                ts_event_ns: 1,
                ts_recv_ns: 2,
                source: "replay".into(),
                symbol: "ESZ5".into(),
                price: 6870.25,
                size: 4,
                aggressor: -1,
                exchange: Some("XCME".into()),
                seq: Some(9),
            }),
            Event::Mbp10(Box::new(Mbp10 {
                ts_event_ns: 3,
                ts_recv_ns: 4,
                source: "replay".into(),
                symbol: "ESZ5".into(),
                levels,
                is_snapshot: true,
                seq: None,
                action: Some('C'),
                side: Some('A'),
                price: Some(6870.25),
                size: Some(1),
                flags: Some(0x80),
            })),
            Event::OptionTrade(OptionTrade {
                ts_event_ns: 5,
                ts_recv_ns: 6,
                source: "sim".into(),
                underlying: "SPY".into(),
                option_symbol: "SPY   251121C00687000".into(),
                exp_date: "2025-11-21".into(),
                strike: 687.0,
                right: 'C',
                price: 1.25,
                size: 10,
                opt_bid: Some(1.2),
                opt_ask: None,
                aggressor: 1,
                seq: None,
            }),
            Event::StockTrade(StockTrade {
                ts_event_ns: 7,
                ts_recv_ns: 8,
                source: "polygon_ws".into(),
                symbol: "SPY".into(),
                price: 687.01,
                size: 100,
                exchange: None,
                seq: Some(1),
            }),
            Event::StockQuote(StockQuote {
                ts_event_ns: 9,
                ts_recv_ns: 10,
                source: "replay".into(),
                symbol: "SPY".into(),
                bid_px: 687.0,
                ask_px: f64::NAN,
                bid_sz: 3,
                ask_sz: 0,
                seq: None,
            }),
            Event::LevelSignals(LevelSignals {
                ts: 11,
                spy: SpyQuote {
                    spot: Some(687.0),
                    bid: None,
                    ask: Some(687.01),
                },
                levels: vec![LevelSignal {
                    id: "ROUND_687".into(),
                    price: 687.0,
                    ..Default::default()
                }],
            }),
        ]
    }

    /// NaN is not equal to itself; compare events through their JSON form, which is exact.
    pub(crate) fn same(a: &Event, b: &Event) -> bool {
        a.to_json() == b.to_json()
    }

    #[test]
    fn every_event_kind_round_trips_through_a_frame() {
        for ev in sample_events() {
            let mut buf = Vec::new();
            encode_frame(&ev, &mut buf);
            let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
            assert_eq!(len, buf.len() - 4);
            let back = decode_payload(&buf[4..]).unwrap();
            assert!(same(&ev, &back), "{ev:?} != {back:?}");
        }
    }

    #[test]
    fn book_deltas_rebuild_every_image_exactly_and_are_smaller() {
        let Event::Mbp10(first) = sample_events()[1].clone() else {
            unreachable!()
        };
        let mut images = vec![first.clone()];
        let mut m = first.clone();
        for k in 0..20u32 {
            m.ts_event_ns += 1;
            m.levels[(k % 10) as usize].bid_sz = k;
            if k == 7 {
                m.levels[3].ask_px = None;
            }
            if k == 12 {
                m.symbol = "ESH6".into(); // another contract: a full frame again
            }
            images.push(m.clone());
        }
        let (mut enc, mut dec) = (FrameEncoder::default(), FrameDecoder::default());
        let (mut full, mut delta) = (Vec::new(), Vec::new());
        for img in &images {
            let ev = Event::Mbp10(img.clone());
            encode_frame(&ev, &mut full);
            let start = delta.len();
            enc.encode(&ev, &mut delta);
            let back = dec.decode(&delta[start + 4..]).unwrap();
            assert!(same(&back, &ev), "{back:?} != {ev:?}");
        }
        assert!(
            delta.len() * 2 < full.len(),
            "{} vs {}",
            delta.len(),
            full.len()
        );
        // A delta with no image before it is an error, not a guess.
        let mut enc = FrameEncoder::default();
        let mut buf = Vec::new();
        enc.encode(&Event::Mbp10(images[0].clone()), &mut buf);
        let first_len = buf.len();
        enc.encode(&Event::Mbp10(images[1].clone()), &mut buf);
        assert_eq!(
            FrameDecoder::default()
                .decode(&buf[first_len + 4..])
                .unwrap_err(),
            FrameError::NoBase
        );
    }

    #[test]
    fn a_recycled_image_is_overwritten_completely() {
        let Event::Mbp10(first) = sample_events()[1].clone() else {
            unreachable!()
        };
        let mut next = first.clone();
        next.ts_event_ns += 5;
        next.levels[2].ask_sz += 1;
        next.seq = None;
        next.flags = None;
        let (mut enc, mut buf) = (FrameEncoder::default(), Vec::new());
        enc.encode(&Event::Mbp10(first.clone()), &mut buf);
        let at = buf.len();
        enc.encode(&Event::Mbp10(next.clone()), &mut buf);
        // A stale image from elsewhere, every field different, handed back before the delta.
        let mut stale = next.clone();
        stale.ts_event_ns = 1;
        stale.source = "a much longer source name".into();
        stale.symbol = "NQZ5".into();
        stale.levels = [BookRow::EMPTY; BOOK_DEPTH];
        stale.seq = Some(99);
        stale.flags = Some(1);
        stale.action = None;
        stale.price = Some(f64::NAN);
        let mut dec = FrameDecoder::default();
        dec.decode(&buf[4..at]).unwrap();
        dec.recycle(Event::Mbp10(stale));
        let back = dec.decode(&buf[at + 4..]).unwrap();
        assert!(same(&back, &Event::Mbp10(next.clone())), "{back:?}");
    }

    #[test]
    fn truncated_or_padded_frames_are_errors_not_panics() {
        for ev in sample_events() {
            let mut buf = Vec::new();
            encode_frame(&ev, &mut buf);
            let payload = &buf[4..];
            for cut in 0..payload.len() {
                assert!(
                    decode_payload(&payload[..cut]).is_err(),
                    "cut at {cut} of {ev:?}"
                );
            }
            if !matches!(ev, Event::LevelSignals(_)) {
                let mut padded = payload.to_vec();
                padded.push(0);
                assert_eq!(decode_payload(&padded), Err(FrameError::Trailing(1)));
            }
        }
        assert_eq!(decode_payload(&[99]), Err(FrameError::UnknownTag(99)));
    }
}
