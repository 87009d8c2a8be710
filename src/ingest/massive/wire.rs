//! Massive's WebSocket messages (Polygon's format) → canonical events.
//!
//! Every frame is a JSON array of objects told apart by `ev`: `status` (the session's
//! answers), `T` (trade), `Q` (quote); other event types (aggregates, LULD, …) are ignored.
//! Timestamps `t` are Unix milliseconds (→ nanoseconds); `q` is the feed's sequence number.
//!
//! ```text
//! {"ev":"T","sym":"SPY","x":4,"i":"52983525029461","z":3,"p":687.12,"s":100,"c":[12],"t":1763740800123,"q":1234}
//! {"ev":"Q","sym":"SPY","bx":4,"bp":687.11,"bs":3,"ax":7,"ap":687.13,"as":2,"t":1763740800124,"q":1235}
//! {"ev":"T","sym":"O:SPY251121C00687000","x":65,"p":1.23,"s":5,"t":1763740800125,"q":77}
//! {"ev":"Q","sym":"O:SPY251121C00687000","bx":302,"bp":1.2,"bs":17,"ax":302,"ap":1.25,"as":24,"t":1763740800126,"q":78}
//! ```
//!
//! Sizes are passed on as the feed gives them. For stock quotes that is the number of shares
//! on current plans, but Polygon's stocks quotes long gave `bs`/`as` in round lots (×100) and
//! some plans still do: `StockQuote::bid_sz`/`ask_sz` are *not* rescaled here. Trade sizes are
//! shares (stocks) or contracts (options).

use serde::Deserialize;

use crate::event::{OptionTrade, StockQuote, StockTrade};

use super::occ::OptionSymbol;

/// One object of a frame, every field optional (what a kind needs is checked when mapping).
#[derive(Debug, Default, Deserialize)]
pub struct Wire {
    pub ev: Option<String>,
    pub sym: Option<String>,
    /// Exchange id (trades).
    pub x: Option<i64>,
    /// Trade price.
    pub p: Option<f64>,
    /// Trade size.
    pub s: Option<f64>,
    /// Unix milliseconds.
    pub t: Option<u64>,
    /// Sequence number.
    pub q: Option<u64>,
    pub bp: Option<f64>,
    pub bs: Option<f64>,
    pub ap: Option<f64>,
    #[serde(rename = "as")]
    pub ask_size: Option<f64>,
    /// `status` messages: `connected`, `auth_success`, `auth_failed`, `success`,
    /// `max_connections`, `error`, …
    pub status: Option<String>,
    pub message: Option<String>,
}

/// What one object of a frame is.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Status,
    Trade,
    Quote,
    /// An event type this feed does not map (aggregates, LULD, FMV, …).
    Other,
}

impl Wire {
    pub fn kind(&self) -> Kind {
        match self.ev.as_deref() {
            Some("status") => Kind::Status,
            Some("T") => Kind::Trade,
            Some("Q") => Kind::Quote,
            _ => Kind::Other,
        }
    }

    /// The event time in nanoseconds.
    pub fn ts_event_ns(&self) -> Result<u64, &'static str> {
        self.t
            .ok_or("no timestamp `t`")?
            .checked_mul(1_000_000)
            .ok_or("a timestamp `t` out of range")
    }

    fn symbol(&self) -> Result<&str, &'static str> {
        match self.sym.as_deref() {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err("no symbol `sym`"),
        }
    }
}

/// Parses one frame: a JSON array of objects (a lone object is accepted too).
pub fn parse(text: &str) -> Result<Vec<Wire>, serde_json::Error> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str::<Wire>(text).map(|w| vec![w])
    } else {
        serde_json::from_str(text)
    }
}

/// A size: a non-negative number, rounded to an integer.
fn size(v: Option<f64>, what: &'static str) -> Result<u32, &'static str> {
    match v {
        Some(s) if s.is_finite() && s >= 0.0 => Ok(s.round().min(u32::MAX as f64) as u32),
        _ => Err(what),
    }
}

fn trade_price(v: Option<f64>) -> Result<f64, &'static str> {
    match v {
        Some(p) if p.is_finite() => Ok(p),
        _ => Err("a trade without a price `p`"),
    }
}

/// A stock trade. `ts_recv_ns`: when the frame arrived.
pub fn stock_trade(w: &Wire, ts_recv_ns: u64, source: &str) -> Result<StockTrade, &'static str> {
    Ok(StockTrade {
        ts_event_ns: w.ts_event_ns()?,
        ts_recv_ns,
        source: source.to_string(),
        symbol: w.symbol()?.to_string(),
        price: trade_price(w.p)?,
        size: size(w.s, "a trade without a size `s`")?,
        exchange: w.x.map(|x| x.to_string()),
        seq: w.q,
    })
}

/// A stock quote. A side with no positive price (Massive sends 0 for an empty side) has a
/// `null` price and size 0; sizes as the feed gives them (see the module doc).
pub fn stock_quote(w: &Wire, ts_recv_ns: u64, source: &str) -> Result<StockQuote, &'static str> {
    let side = |px: Option<f64>, sz: Option<f64>| -> Result<(f64, u32), &'static str> {
        match px {
            Some(p) if p.is_finite() && p > 0.0 => {
                Ok((p, size(sz, "a quote size that is not a size")?))
            }
            _ => Ok((f64::NAN, 0)),
        }
    };
    let (bid_px, bid_sz) = side(w.bp, w.bs)?;
    let (ask_px, ask_sz) = side(w.ap, w.ask_size)?;
    Ok(StockQuote {
        ts_event_ns: w.ts_event_ns()?,
        ts_recv_ns,
        source: source.to_string(),
        symbol: w.symbol()?.to_string(),
        bid_px,
        ask_px,
        bid_sz,
        ask_sz,
        seq: w.q,
    })
}

/// The contract a message is about.
pub fn option_symbol(w: &Wire) -> Result<OptionSymbol, &'static str> {
    OptionSymbol::parse(w.symbol()?).map_err(|e| e.why)
}

/// An option quote's bid and ask: a bid of 0 is a real (worthless) bid, an ask of 0 means no
/// offer.
pub fn option_quote(w: &Wire) -> (Option<f64>, Option<f64>) {
    let bid = w.bp.filter(|p| p.is_finite() && *p >= 0.0);
    let ask = w.ap.filter(|p| p.is_finite() && *p > 0.0);
    (bid, ask)
}

/// An option trade, with the contract's last quote (`opt_bid`/`opt_ask`) when there is one.
/// The aggressor is left unknown (0): the engine classifies it against the quote.
pub fn option_trade(
    w: &Wire,
    contract: &OptionSymbol,
    quote: Option<(Option<f64>, Option<f64>)>,
    ts_recv_ns: u64,
    source: &str,
) -> Result<OptionTrade, &'static str> {
    let (opt_bid, opt_ask) = quote.unwrap_or((None, None));
    Ok(OptionTrade {
        ts_event_ns: w.ts_event_ns()?,
        ts_recv_ns,
        source: source.to_string(),
        underlying: contract.root().to_string(),
        option_symbol: contract.osi(),
        exp_date: contract.exp_date(),
        strike: contract.strike(),
        right: contract.right(),
        price: trade_price(w.p)?,
        size: size(w.s, "a trade without a size `s`")?,
        opt_bid,
        opt_ask,
        aggressor: 0,
        seq: w.q,
    })
}

/// The first `max` characters of `text` in backticks (control characters escaped), for a
/// report.
pub fn snippet(text: &str, max: usize) -> String {
    let mut out = String::from("`");
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str("`…");
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Wire {
        let mut v = parse(text).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn stock_trade_maps_every_field_and_ms_to_ns() {
        let w = one(
            r#"[{"ev":"T","sym":"SPY","x":4,"i":"52983525029461","z":3,"p":687.12,"s":100,"c":[12,37],"t":1763740800123,"q":1234}]"#,
        );
        assert_eq!(w.kind(), Kind::Trade);
        let t = stock_trade(&w, 42, "massive_ws").unwrap();
        assert_eq!(
            t,
            StockTrade {
                ts_event_ns: 1_763_740_800_123_000_000,
                ts_recv_ns: 42,
                source: "massive_ws".into(),
                symbol: "SPY".into(),
                price: 687.12,
                size: 100,
                exchange: Some("4".into()),
                seq: Some(1234),
            }
        );
    }

    #[test]
    fn stock_quote_maps_every_field_and_an_empty_side_to_null() {
        let w = one(
            r#"[{"ev":"Q","sym":"SPY","bx":4,"bp":687.11,"bs":3,"ax":7,"ap":687.13,"as":2,"c":0,"i":[604],"t":1763740800124,"q":1235,"z":3}]"#,
        );
        assert_eq!(w.kind(), Kind::Quote);
        let q = stock_quote(&w, 7, "massive_ws").unwrap();
        assert_eq!(
            q,
            StockQuote {
                ts_event_ns: 1_763_740_800_124_000_000,
                ts_recv_ns: 7,
                source: "massive_ws".into(),
                symbol: "SPY".into(),
                bid_px: 687.11,
                ask_px: 687.13,
                bid_sz: 3,
                ask_sz: 2,
                seq: Some(1235),
            }
        );
        let w = one(r#"{"ev":"Q","sym":"SPY","bp":0,"bs":0,"ap":687.13,"as":2,"t":1}"#);
        let q = stock_quote(&w, 0, "s").unwrap();
        assert!(q.bid_px.is_nan());
        assert_eq!((q.bid_sz, q.ask_px, q.ask_sz, q.seq), (0, 687.13, 2, None));
    }

    #[test]
    fn option_trade_carries_the_normalised_contract_and_the_quote() {
        let w = one(
            r#"[{"ev":"T","sym":"O:SPY251121C00687000","x":65,"p":1.23,"s":5,"c":[233],"t":1763740800125,"q":77}]"#,
        );
        let c = option_symbol(&w).unwrap();
        let t = option_trade(&w, &c, Some((Some(1.2), Some(1.25))), 9, "massive_ws").unwrap();
        assert_eq!(
            t,
            OptionTrade {
                ts_event_ns: 1_763_740_800_125_000_000,
                ts_recv_ns: 9,
                source: "massive_ws".into(),
                underlying: "SPY".into(),
                option_symbol: "SPY   251121C00687000".into(),
                exp_date: "2025-11-21".into(),
                strike: 687.0,
                right: 'C',
                price: 1.23,
                size: 5,
                opt_bid: Some(1.2),
                opt_ask: Some(1.25),
                aggressor: 0,
                seq: Some(77),
            }
        );
        let t = option_trade(&w, &c, None, 9, "massive_ws").unwrap();
        assert_eq!((t.opt_bid, t.opt_ask), (None, None));
    }

    #[test]
    fn option_quote_keeps_a_zero_bid_but_not_a_zero_ask() {
        let w = one(r#"[{"ev":"Q","sym":"O:SPY251121P00600000","bp":0,"ap":0.01,"t":1}]"#);
        assert_eq!(option_quote(&w), (Some(0.0), Some(0.01)));
        let w = one(r#"[{"ev":"Q","sym":"O:SPY251121P00600000","bp":0.05,"ap":0,"t":1}]"#);
        assert_eq!(option_quote(&w), (Some(0.05), None));
    }

    #[test]
    fn incomplete_messages_are_refused_with_a_reason() {
        let w = one(r#"[{"ev":"T","sym":"SPY","s":1,"t":1}]"#);
        assert_eq!(
            stock_trade(&w, 0, "s").unwrap_err(),
            "a trade without a price `p`"
        );
        let w = one(r#"[{"ev":"T","sym":"SPY","p":1.0,"s":1}]"#);
        assert_eq!(stock_trade(&w, 0, "s").unwrap_err(), "no timestamp `t`");
        let w = one(r#"[{"ev":"T","p":1.0,"s":1,"t":1}]"#);
        assert_eq!(stock_trade(&w, 0, "s").unwrap_err(), "no symbol `sym`");
        let w = one(r#"[{"ev":"T","sym":"SPY","p":1.0,"s":-1,"t":1}]"#);
        assert_eq!(
            stock_trade(&w, 0, "s").unwrap_err(),
            "a trade without a size `s`"
        );
        let w = one(r#"[{"ev":"T","sym":"SPY","p":1.0,"s":1,"t":18446744073709551}]"#);
        assert_eq!(
            stock_trade(&w, 0, "s").unwrap_err(),
            "a timestamp `t` out of range"
        );
        let w = one(r#"[{"ev":"T","sym":"O:SPY251121X00687000","p":1.0,"s":1,"t":1}]"#);
        assert_eq!(
            option_symbol(&w).unwrap_err(),
            "the right is neither C nor P"
        );
    }

    #[test]
    fn frames_hold_several_kinds_and_unknown_ones_are_other() {
        let v = parse(
            r#"[{"ev":"status","status":"connected","message":"Connected Successfully"},{"ev":"A","sym":"SPY"},{"ev":"T","sym":"SPY","p":1,"s":1,"t":1}]"#,
        )
        .unwrap();
        let kinds: Vec<_> = v.iter().map(Wire::kind).collect();
        assert_eq!(kinds, [Kind::Status, Kind::Other, Kind::Trade]);
        assert_eq!(v[0].status.as_deref(), Some("connected"));
        assert_eq!(v[0].message.as_deref(), Some("Connected Successfully"));
        assert!(parse(r#"[{"ev":"T","sym":"SPY""#).is_err());
        assert!(parse(r#"[{"ev":"T","p":"high"}]"#).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn snippets_are_short_and_escaped() {
        assert_eq!(snippet("abc", 10), "`abc`");
        assert_eq!(snippet("abc", 3), "`abc`");
        assert_eq!(snippet("abcdef", 3), "`abc`…");
        assert_eq!(snippet("é\nx", 2), "`é\\n`…");
        assert_eq!(snippet(r#"[{"ev":"T"}]"#, 7), r#"`[{"ev":`…"#);
    }
}
