//! Line and frame codecs for pipes: NDJSON (the contract) and the compact binary framing.
//!
//! The binary stream starts with [`BIN_MAGIC`], then one frame per event: a little-endian `u32`
//! payload length, then the payload — a kind tag byte followed by the event's fields in a fixed
//! order (integers little-endian, floats as IEEE-754 bits so NaN and `None` survive exactly,
//! strings as a `u16` length and UTF-8 bytes). `level_signals` frames carry the event's JSON,
//! since signals are few and their consumers want JSON anyway. A reader tells the two formats
//! apart from the first bytes: NDJSON starts with `{` or whitespace, never with the magic.

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
                w.opt_f64(row.bid_px);
                w.u32(row.bid_sz);
                w.opt_f64(row.ask_px);
                w.u32(row.ask_sz);
                w.opt_u32(row.bid_ct);
                w.opt_u32(row.ask_ct);
            }
            w.u8(m.is_snapshot as u8);
            w.opt_u64(m.seq);
            w.opt_char(m.action);
            w.opt_char(m.side);
            w.opt_f64(m.price);
            w.opt_u32(m.size);
            match m.flags {
                Some(f) => {
                    w.u8(1);
                    w.u8(f);
                }
                None => w.u8(0),
            }
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
        Event::LevelSignals(_) => event.write_json(w.0),
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
                *row = BookRow {
                    bid_px: r.opt_f64()?,
                    bid_sz: r.u32()?,
                    ask_px: r.opt_f64()?,
                    ask_sz: r.u32()?,
                    bid_ct: r.opt_u32()?,
                    ask_ct: r.opt_u32()?,
                };
            }
            Event::Mbp10(Mbp10 {
                ts_event_ns,
                ts_recv_ns,
                source,
                symbol,
                levels,
                is_snapshot: r.u8()? != 0,
                seq: r.opt_u64()?,
                action: r.opt_char()?,
                side: r.opt_char()?,
                price: r.opt_f64()?,
                size: r.opt_u32()?,
                flags: if r.u8()? != 0 { Some(r.u8()?) } else { None },
            })
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
        6 => {
            let json = std::mem::take(&mut r.0);
            Event::from_json_as(EventKind::LevelSignals, json)
                .map_err(|e| FrameError::Json(e.to_string()))?
        }
        other => return Err(FrameError::UnknownTag(other)),
    };
    if !r.0.is_empty() {
        return Err(FrameError::Trailing(r.0.len()));
    }
    Ok(event)
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
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
            Event::Mbp10(Mbp10 {
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
            }),
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
