//! Market events ↔ typed columns, for the bronze (and silver) tables.
//!
//! Each event becomes one row; every field of the contract has its own typed column
//! (timestamps in UTC nanoseconds, prices `DOUBLE` with `null` for a missing or non-finite
//! price, sizes integers), so reading a row back gives the same event, byte for byte once
//! written as JSON. The partition value (`symbol` or `underlying`) lives in the path.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int8Builder, StringBuilder,
    TimestampNanosecondBuilder, UInt8Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int8Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt8Array, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::table::{lake_seq_field, timestamp_ns};
use super::{LakeError, PartitionValues, Reject, Stored, Table, TableRows};
use crate::event::{
    BOOK_DEPTH, BookRow, Event, FuturesTrade, Mbp10, OptionTrade, StockQuote, StockTrade,
};

/// The schema of a market table.
pub fn schema(table: Table) -> SchemaRef {
    let ts = |name: &str| Field::new(name, timestamp_ns(), false);
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    use DataType::*;
    let mut fields = vec![
        ts("ts_event_ns"),
        ts("ts_recv_ns"),
        f("source", Utf8, false),
    ];
    match table {
        Table::FuturesTrades | Table::StocksTrades => {
            fields.extend([
                f("price", Float64, true),
                f("size", UInt32, false),
                f("exchange", Utf8, true),
                f("seq", UInt64, true),
            ]);
            if table == Table::FuturesTrades {
                fields.insert(5, f("aggressor", Int8, false));
            }
        }
        Table::FuturesMbp10 => {
            fields.extend([
                f("action", Utf8, true),
                f("side", Utf8, true),
                f("price", Float64, true),
                f("size", UInt32, true),
                f("flags", UInt8, true),
                f("is_snapshot", Boolean, false),
                f("seq", UInt64, true),
            ]);
            for i in 1..=BOOK_DEPTH {
                fields.extend([
                    f(&format!("bid_px_{i}"), Float64, true),
                    f(&format!("bid_sz_{i}"), UInt32, false),
                    f(&format!("bid_ct_{i}"), UInt32, true),
                    f(&format!("ask_px_{i}"), Float64, true),
                    f(&format!("ask_sz_{i}"), UInt32, false),
                    f(&format!("ask_ct_{i}"), UInt32, true),
                ]);
            }
        }
        Table::OptionsTrades => fields.extend([
            f("option_symbol", Utf8, false),
            f("exp_date", Date32, false),
            f("strike", Float64, true),
            f("right", Utf8, false),
            f("price", Float64, true),
            f("size", UInt32, false),
            f("opt_bid", Float64, true),
            f("opt_ask", Float64, true),
            f("aggressor", Int8, false),
            f("seq", UInt64, true),
        ]),
        Table::StocksQuotes => fields.extend([
            f("bid_px", Float64, true),
            f("ask_px", Float64, true),
            f("bid_sz", UInt32, false),
            f("ask_sz", UInt32, false),
            f("seq", UInt64, true),
        ]),
        Table::LevelSignals | Table::FeedsStatus => {
            unreachable!("{} is not a market table", table.name())
        }
    }
    fields.push(lake_seq_field());
    Arc::new(Schema::new(fields))
}

/// An empty set of rows for a market table.
pub fn rows(table: Table) -> Box<dyn TableRows> {
    Box::new(MarketRows::new(table))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, only if it prints back the same way.
fn date_days(text: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    if d.format("%Y-%m-%d").to_string() != text {
        return None;
    }
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

fn days_date(days: i32) -> Option<String> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let d = epoch.checked_add_signed(chrono::Duration::days(days.into()))?;
    Some(d.format("%Y-%m-%d").to_string())
}

fn ts_value(ns: u64) -> Result<i64, Reject> {
    i64::try_from(ns).map_err(|_| Reject("timestamp beyond the year 2262"))
}

/// A finite price, or `null`.
fn px(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn opx(v: Option<f64>) -> Option<f64> {
    v.and_then(px)
}

fn char_text(c: Option<char>, buf: &mut [u8; 4]) -> Option<&str> {
    c.map(|c| &*c.encode_utf8(buf))
}

/// Builders of one book row's six columns.
#[derive(Default)]
struct RowBuilders {
    bid_px: Float64Builder,
    bid_sz: UInt32Builder,
    bid_ct: UInt32Builder,
    ask_px: Float64Builder,
    ask_sz: UInt32Builder,
    ask_ct: UInt32Builder,
}

/// Columns of every market table; a table uses the ones its schema names.
struct MarketRows {
    table: Table,
    len: usize,
    ts_event: TimestampNanosecondBuilder,
    ts_recv: TimestampNanosecondBuilder,
    source: StringBuilder,
    price: Float64Builder,
    size: UInt32Builder,
    aggressor: Int8Builder,
    exchange: StringBuilder,
    seq: UInt64Builder,
    // MBP-10
    action: StringBuilder,
    side: StringBuilder,
    flags: UInt8Builder,
    is_snapshot: BooleanBuilder,
    book: Vec<RowBuilders>,
    // options
    option_symbol: StringBuilder,
    exp_date: Date32Builder,
    strike: Float64Builder,
    right: StringBuilder,
    opt_bid: Float64Builder,
    opt_ask: Float64Builder,
    // quotes
    bid_px: Float64Builder,
    ask_px: Float64Builder,
    bid_sz: UInt32Builder,
    ask_sz: UInt32Builder,
    lake_seq: UInt64Builder,
}

impl MarketRows {
    fn new(table: Table) -> Self {
        let utc = || TimestampNanosecondBuilder::new().with_timezone("UTC");
        MarketRows {
            table,
            len: 0,
            ts_event: utc(),
            ts_recv: utc(),
            source: StringBuilder::new(),
            price: Float64Builder::new(),
            size: UInt32Builder::new(),
            aggressor: Int8Builder::new(),
            exchange: StringBuilder::new(),
            seq: UInt64Builder::new(),
            action: StringBuilder::new(),
            side: StringBuilder::new(),
            flags: UInt8Builder::new(),
            is_snapshot: BooleanBuilder::new(),
            book: (0..BOOK_DEPTH).map(|_| RowBuilders::default()).collect(),
            option_symbol: StringBuilder::new(),
            exp_date: Date32Builder::new(),
            strike: Float64Builder::new(),
            right: StringBuilder::new(),
            opt_bid: Float64Builder::new(),
            opt_ask: Float64Builder::new(),
            bid_px: Float64Builder::new(),
            ask_px: Float64Builder::new(),
            bid_sz: UInt32Builder::new(),
            ask_sz: UInt32Builder::new(),
            lake_seq: UInt64Builder::new(),
        }
    }

    fn times(&mut self, ts_event: u64, ts_recv: u64, source: &str) -> Result<(), Reject> {
        let (e, r) = (ts_value(ts_event)?, ts_value(ts_recv)?);
        self.ts_event.append_value(e);
        self.ts_recv.append_value(r);
        self.source.append_value(source);
        Ok(())
    }

    fn futures_trade(&mut self, t: &FuturesTrade) -> Result<(), Reject> {
        self.times(t.ts_event_ns, t.ts_recv_ns, &t.source)?;
        self.price.append_option(px(t.price));
        self.size.append_value(t.size);
        self.aggressor.append_value(t.aggressor);
        self.exchange.append_option(t.exchange.as_deref());
        self.seq.append_option(t.seq);
        Ok(())
    }

    fn stock_trade(&mut self, t: &StockTrade) -> Result<(), Reject> {
        self.times(t.ts_event_ns, t.ts_recv_ns, &t.source)?;
        self.price.append_option(px(t.price));
        self.size.append_value(t.size);
        self.exchange.append_option(t.exchange.as_deref());
        self.seq.append_option(t.seq);
        Ok(())
    }

    fn mbp10(&mut self, m: &Mbp10) -> Result<(), Reject> {
        self.times(m.ts_event_ns, m.ts_recv_ns, &m.source)?;
        let mut buf = [0u8; 4];
        self.action.append_option(char_text(m.action, &mut buf));
        self.side.append_option(char_text(m.side, &mut buf));
        self.price.append_option(opx(m.price));
        self.size.append_option(m.size);
        self.flags.append_option(m.flags);
        self.is_snapshot.append_value(m.is_snapshot);
        self.seq.append_option(m.seq);
        for (b, r) in self.book.iter_mut().zip(&m.levels) {
            b.bid_px.append_option(opx(r.bid_px));
            b.bid_sz.append_value(r.bid_sz);
            b.bid_ct.append_option(r.bid_ct);
            b.ask_px.append_option(opx(r.ask_px));
            b.ask_sz.append_value(r.ask_sz);
            b.ask_ct.append_option(r.ask_ct);
        }
        Ok(())
    }

    fn option_trade(&mut self, t: &OptionTrade) -> Result<(), Reject> {
        let exp = date_days(&t.exp_date).ok_or(Reject("exp_date is not a YYYY-MM-DD date"))?;
        self.times(t.ts_event_ns, t.ts_recv_ns, &t.source)?;
        self.option_symbol.append_value(&t.option_symbol);
        self.exp_date.append_value(exp);
        self.strike.append_option(px(t.strike));
        let mut buf = [0u8; 4];
        self.right.append_value(t.right.encode_utf8(&mut buf));
        self.price.append_option(px(t.price));
        self.size.append_value(t.size);
        self.opt_bid.append_option(opx(t.opt_bid));
        self.opt_ask.append_option(opx(t.opt_ask));
        self.aggressor.append_value(t.aggressor);
        self.seq.append_option(t.seq);
        Ok(())
    }

    fn stock_quote(&mut self, q: &StockQuote) -> Result<(), Reject> {
        self.times(q.ts_event_ns, q.ts_recv_ns, &q.source)?;
        self.bid_px.append_option(px(q.bid_px));
        self.ask_px.append_option(px(q.ask_px));
        self.bid_sz.append_value(q.bid_sz);
        self.ask_sz.append_value(q.ask_sz);
        self.seq.append_option(q.seq);
        Ok(())
    }
}

impl TableRows for MarketRows {
    fn push(&mut self, event: &Event, lake_seq: u64) -> Result<(), Reject> {
        match (self.table, event) {
            (Table::FuturesTrades, Event::FuturesTrade(t)) => self.futures_trade(t)?,
            (Table::FuturesMbp10, Event::Mbp10(m)) => self.mbp10(m)?,
            (Table::OptionsTrades, Event::OptionTrade(t)) => self.option_trade(t)?,
            (Table::StocksTrades, Event::StockTrade(t)) => self.stock_trade(t)?,
            (Table::StocksQuotes, Event::StockQuote(q)) => self.stock_quote(q)?,
            _ => return Err(Reject("event of another table")),
        }
        self.lake_seq.append_value(lake_seq);
        self.len += 1;
        Ok(())
    }

    fn len(&self) -> usize {
        self.len
    }

    fn take(&mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts_event.finish()),
            Arc::new(self.ts_recv.finish()),
            Arc::new(self.source.finish()),
        ];
        match self.table {
            Table::FuturesTrades | Table::StocksTrades => {
                cols.push(Arc::new(self.price.finish()));
                cols.push(Arc::new(self.size.finish()));
                if self.table == Table::FuturesTrades {
                    cols.push(Arc::new(self.aggressor.finish()));
                }
                cols.push(Arc::new(self.exchange.finish()));
                cols.push(Arc::new(self.seq.finish()));
            }
            Table::FuturesMbp10 => {
                cols.push(Arc::new(self.action.finish()));
                cols.push(Arc::new(self.side.finish()));
                cols.push(Arc::new(self.price.finish()));
                cols.push(Arc::new(self.size.finish()));
                cols.push(Arc::new(self.flags.finish()));
                cols.push(Arc::new(self.is_snapshot.finish()));
                cols.push(Arc::new(self.seq.finish()));
                for b in &mut self.book {
                    cols.push(Arc::new(b.bid_px.finish()));
                    cols.push(Arc::new(b.bid_sz.finish()));
                    cols.push(Arc::new(b.bid_ct.finish()));
                    cols.push(Arc::new(b.ask_px.finish()));
                    cols.push(Arc::new(b.ask_sz.finish()));
                    cols.push(Arc::new(b.ask_ct.finish()));
                }
            }
            Table::OptionsTrades => {
                cols.push(Arc::new(self.option_symbol.finish()));
                cols.push(Arc::new(self.exp_date.finish()));
                cols.push(Arc::new(self.strike.finish()));
                cols.push(Arc::new(self.right.finish()));
                cols.push(Arc::new(self.price.finish()));
                cols.push(Arc::new(self.size.finish()));
                cols.push(Arc::new(self.opt_bid.finish()));
                cols.push(Arc::new(self.opt_ask.finish()));
                cols.push(Arc::new(self.aggressor.finish()));
                cols.push(Arc::new(self.seq.finish()));
            }
            Table::StocksQuotes => {
                cols.push(Arc::new(self.bid_px.finish()));
                cols.push(Arc::new(self.ask_px.finish()));
                cols.push(Arc::new(self.bid_sz.finish()));
                cols.push(Arc::new(self.ask_sz.finish()));
                cols.push(Arc::new(self.seq.finish()));
            }
            Table::LevelSignals | Table::FeedsStatus => {
                unreachable!("{} is not a market table", self.table.name())
            }
        }
        cols.push(Arc::new(self.lake_seq.finish()));
        self.len = 0;
        RecordBatch::try_new(schema(self.table), cols)
            .expect("the builders follow the table's schema")
    }
}

/// Typed access to a batch's columns by name, with the file's path in every error.
pub(super) struct Columns<'a> {
    pub batch: &'a RecordBatch,
    pub path: &'a str,
}

impl<'a> Columns<'a> {
    pub fn get<T: Array + 'static>(&self, name: &str) -> Result<&'a T, LakeError> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| LakeError::Corrupt {
                path: self.path.to_string(),
                message: format!("no column `{name}` of the expected type"),
            })
    }
    pub fn f64(&self, name: &str) -> Result<&'a Float64Array, LakeError> {
        self.get(name)
    }
    pub fn u32(&self, name: &str) -> Result<&'a UInt32Array, LakeError> {
        self.get(name)
    }
    pub fn u64(&self, name: &str) -> Result<&'a UInt64Array, LakeError> {
        self.get(name)
    }
    pub fn str(&self, name: &str) -> Result<&'a StringArray, LakeError> {
        self.get(name)
    }
    pub fn ts(&self, name: &str) -> Result<&'a TimestampNanosecondArray, LakeError> {
        self.get(name)
    }
    pub fn corrupt(&self, row: usize, what: &str) -> LakeError {
        LakeError::Corrupt {
            path: self.path.to_string(),
            message: format!("row {row}: {what}"),
        }
    }
}

pub(super) fn opt<T: Array>(a: &T, i: usize, v: impl FnOnce() -> f64) -> Option<f64> {
    (!a.is_null(i)).then(v)
}

fn of64(a: &Float64Array, i: usize) -> Option<f64> {
    opt(a, i, || a.value(i))
}

fn ou32(a: &UInt32Array, i: usize) -> Option<u32> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn ou64(a: &UInt64Array, i: usize) -> Option<u64> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn ostr(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

fn ochar(a: &StringArray, i: usize) -> Option<char> {
    if a.is_null(i) {
        None
    } else {
        a.value(i).chars().next()
    }
}

/// Reads one batch of a market table back into events.
pub fn read(
    table: Table,
    batch: &RecordBatch,
    partition: &PartitionValues,
    path: &str,
    out: &mut Vec<Stored>,
) -> Result<(), LakeError> {
    let c = Columns { batch, path };
    let ts_event = c.ts("ts_event_ns")?;
    let ts_recv = c.ts("ts_recv_ns")?;
    let source = c.str("source")?;
    let lake_seq = c.u64("lake_seq")?;
    let seq = c.u64("seq")?;
    let n = batch.num_rows();
    out.reserve(n);
    let nan = f64::NAN;
    let symbol = &partition.key;
    let stamp = |i: usize| -> Result<(u64, u64), LakeError> {
        let (e, r) = (ts_event.value(i), ts_recv.value(i));
        match (u64::try_from(e), u64::try_from(r)) {
            (Ok(e), Ok(r)) => Ok((e, r)),
            _ => Err(c.corrupt(i, "negative timestamp")),
        }
    };
    match table {
        Table::FuturesTrades | Table::StocksTrades => {
            let price = c.f64("price")?;
            let size = c.u32("size")?;
            let exchange = c.str("exchange")?;
            let aggressor = match table {
                Table::FuturesTrades => Some(c.get::<Int8Array>("aggressor")?),
                _ => None,
            };
            for i in 0..n {
                let (ts_event_ns, ts_recv_ns) = stamp(i)?;
                let event = match aggressor {
                    Some(agg) => Event::FuturesTrade(FuturesTrade {
                        ts_event_ns,
                        ts_recv_ns,
                        source: source.value(i).to_string(),
                        symbol: symbol.clone(),
                        price: of64(price, i).unwrap_or(nan),
                        size: size.value(i),
                        aggressor: agg.value(i),
                        exchange: ostr(exchange, i),
                        seq: ou64(seq, i),
                    }),
                    None => Event::StockTrade(StockTrade {
                        ts_event_ns,
                        ts_recv_ns,
                        source: source.value(i).to_string(),
                        symbol: symbol.clone(),
                        price: of64(price, i).unwrap_or(nan),
                        size: size.value(i),
                        exchange: ostr(exchange, i),
                        seq: ou64(seq, i),
                    }),
                };
                out.push(Stored {
                    event,
                    lake_seq: lake_seq.value(i),
                });
            }
        }
        Table::FuturesMbp10 => {
            let action = c.str("action")?;
            let side = c.str("side")?;
            let price = c.f64("price")?;
            let size = c.u32("size")?;
            let flags = c.get::<UInt8Array>("flags")?;
            let is_snapshot = c.get::<BooleanArray>("is_snapshot")?;
            let mut book = Vec::with_capacity(BOOK_DEPTH);
            for l in 1..=BOOK_DEPTH {
                book.push((
                    c.f64(&format!("bid_px_{l}"))?,
                    c.u32(&format!("bid_sz_{l}"))?,
                    c.u32(&format!("bid_ct_{l}"))?,
                    c.f64(&format!("ask_px_{l}"))?,
                    c.u32(&format!("ask_sz_{l}"))?,
                    c.u32(&format!("ask_ct_{l}"))?,
                ));
            }
            for i in 0..n {
                let (ts_event_ns, ts_recv_ns) = stamp(i)?;
                let mut levels = [BookRow::default(); BOOK_DEPTH];
                for (row, (bp, bs, bc, ap, asz, ac)) in levels.iter_mut().zip(&book) {
                    *row = BookRow {
                        bid_px: of64(bp, i),
                        bid_sz: bs.value(i),
                        ask_px: of64(ap, i),
                        ask_sz: asz.value(i),
                        bid_ct: ou32(bc, i),
                        ask_ct: ou32(ac, i),
                    };
                }
                let event = Event::Mbp10(Box::new(Mbp10 {
                    ts_event_ns,
                    ts_recv_ns,
                    source: source.value(i).to_string(),
                    symbol: symbol.clone(),
                    levels,
                    is_snapshot: is_snapshot.value(i),
                    seq: ou64(seq, i),
                    action: ochar(action, i),
                    side: ochar(side, i),
                    price: of64(price, i),
                    size: ou32(size, i),
                    flags: (!flags.is_null(i)).then(|| flags.value(i)),
                }));
                out.push(Stored {
                    event,
                    lake_seq: lake_seq.value(i),
                });
            }
        }
        Table::OptionsTrades => {
            let option_symbol = c.str("option_symbol")?;
            let exp_date = c.get::<Date32Array>("exp_date")?;
            let strike = c.f64("strike")?;
            let right = c.str("right")?;
            let price = c.f64("price")?;
            let size = c.u32("size")?;
            let opt_bid = c.f64("opt_bid")?;
            let opt_ask = c.f64("opt_ask")?;
            let aggressor = c.get::<Int8Array>("aggressor")?;
            for i in 0..n {
                let (ts_event_ns, ts_recv_ns) = stamp(i)?;
                let exp = days_date(exp_date.value(i)).ok_or_else(|| c.corrupt(i, "exp_date"))?;
                let event = Event::OptionTrade(OptionTrade {
                    ts_event_ns,
                    ts_recv_ns,
                    source: source.value(i).to_string(),
                    underlying: symbol.clone(),
                    option_symbol: option_symbol.value(i).to_string(),
                    exp_date: exp,
                    strike: of64(strike, i).unwrap_or(nan),
                    right: ochar(right, i).ok_or_else(|| c.corrupt(i, "empty right"))?,
                    price: of64(price, i).unwrap_or(nan),
                    size: size.value(i),
                    opt_bid: of64(opt_bid, i),
                    opt_ask: of64(opt_ask, i),
                    aggressor: aggressor.value(i),
                    seq: ou64(seq, i),
                });
                out.push(Stored {
                    event,
                    lake_seq: lake_seq.value(i),
                });
            }
        }
        Table::StocksQuotes => {
            let bid_px = c.f64("bid_px")?;
            let ask_px = c.f64("ask_px")?;
            let bid_sz = c.u32("bid_sz")?;
            let ask_sz = c.u32("ask_sz")?;
            for i in 0..n {
                let (ts_event_ns, ts_recv_ns) = stamp(i)?;
                let event = Event::StockQuote(StockQuote {
                    ts_event_ns,
                    ts_recv_ns,
                    source: source.value(i).to_string(),
                    symbol: symbol.clone(),
                    bid_px: of64(bid_px, i).unwrap_or(nan),
                    ask_px: of64(ask_px, i).unwrap_or(nan),
                    bid_sz: bid_sz.value(i),
                    ask_sz: ask_sz.value(i),
                    seq: ou64(seq, i),
                });
                out.push(Stored {
                    event,
                    lake_seq: lake_seq.value(i),
                });
            }
        }
        Table::LevelSignals | Table::FeedsStatus => {
            unreachable!("{} is not a market table", table.name())
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(table: Table, events: &[Event]) {
        let mut rows = rows(table);
        for (i, e) in events.iter().enumerate() {
            rows.push(e, i as u64 * 7).unwrap();
        }
        let batch = rows.take();
        assert_eq!(batch.num_rows(), events.len());
        assert!(rows.is_empty());
        let part = PartitionValues {
            key: crate::lake::table::partition_value(&events[0]).to_string(),
        };
        let mut out = Vec::new();
        read(table, &batch, &part, "mem", &mut out).unwrap();
        let back: Vec<String> = out.iter().map(|s| s.event.to_json()).collect();
        let want: Vec<String> = events.iter().map(Event::to_json).collect();
        assert_eq!(back, want);
        assert_eq!(out[1].lake_seq, 7);
    }

    fn parse(lines: &[&str]) -> Vec<Event> {
        lines
            .iter()
            .map(|l| Event::from_json(l.as_bytes(), None).unwrap())
            .collect()
    }

    #[test]
    fn trades_and_quotes_read_back_to_the_same_json_with_nulls_and_absent_fields_kept() {
        roundtrip(
            Table::FuturesTrades,
            &parse(&[
                r#"{"type":"futures_trade","ts_event_ns":1,"ts_recv_ns":2,"source":"replay","symbol":"ESZ6","price":6000.25,"size":3,"aggressor":1,"exchange":"XCME","seq":9}"#,
                r#"{"type":"futures_trade","ts_event_ns":1,"ts_recv_ns":2,"source":"replay","symbol":"ESZ6","price":null,"size":0,"aggressor":-1}"#,
            ]),
        );
        roundtrip(
            Table::StocksQuotes,
            &parse(&[
                r#"{"type":"stock_quote","ts_event_ns":5,"ts_recv_ns":6,"source":"sim","symbol":"SPY","bid_px":600.01,"ask_px":600.02,"bid_sz":100,"ask_sz":200,"seq":4}"#,
                r#"{"type":"stock_quote","ts_event_ns":5,"ts_recv_ns":6,"source":"sim","symbol":"SPY","bid_px":null,"ask_px":1e-7,"bid_sz":0,"ask_sz":0}"#,
            ]),
        );
        roundtrip(
            Table::StocksTrades,
            &parse(&[
                r#"{"type":"stock_trade","ts_event_ns":5,"ts_recv_ns":6,"source":"sim","symbol":"SPY","price":600.015,"size":100,"exchange":"XNAS"}"#,
                r#"{"type":"stock_trade","ts_event_ns":5,"ts_recv_ns":6,"source":"sim","symbol":"SPY","price":-0.0,"size":1,"seq":18446744073709551615}"#,
            ]),
        );
    }

    #[test]
    fn options_keep_their_date_strike_and_quote() {
        roundtrip(
            Table::OptionsTrades,
            &parse(&[
                r#"{"type":"option_trade","ts_event_ns":1,"ts_recv_ns":1,"source":"replay","underlying":"SPY","option_symbol":"SPY   261203C00600000","exp_date":"2026-12-03","strike":600.0,"right":"C","price":1.25,"size":10,"opt_bid":1.2,"opt_ask":1.3,"aggressor":1}"#,
                r#"{"type":"option_trade","ts_event_ns":2,"ts_recv_ns":3,"source":"replay","underlying":"SPY","option_symbol":"x","exp_date":"1969-12-31","strike":null,"right":"P","price":0.01,"size":1,"aggressor":0,"seq":1}"#,
            ]),
        );
        let bad = parse(&[
            r#"{"type":"option_trade","ts_event_ns":1,"ts_recv_ns":1,"source":"replay","underlying":"SPY","option_symbol":"x","exp_date":"2026-1-3","strike":600.0,"right":"C","price":1.25,"size":10,"aggressor":1}"#,
        ]);
        let mut rows = rows(Table::OptionsTrades);
        assert_eq!(
            rows.push(&bad[0], 0),
            Err(Reject("exp_date is not a YYYY-MM-DD date"))
        );
        assert_eq!(rows.take().num_rows(), 0);
    }

    #[test]
    fn book_images_keep_every_row_count_and_the_record_fields() {
        let mut m = Mbp10 {
            ts_event_ns: 1_700_000_000_123_456_789,
            ts_recv_ns: 1_700_000_000_123_456_999,
            source: "replay".into(),
            symbol: "ESZ6".into(),
            levels: [BookRow::default(); BOOK_DEPTH],
            is_snapshot: false,
            seq: Some(3),
            action: Some('A'),
            side: Some('B'),
            price: Some(6000.25),
            size: Some(4),
            flags: Some(128),
        };
        for (i, r) in m.levels.iter_mut().enumerate().take(7) {
            *r = BookRow {
                bid_px: Some(6000.0 - i as f64 * 0.25),
                bid_sz: 10 + i as u32,
                ask_px: Some(6000.25 + i as f64 * 0.25),
                ask_sz: 20 + i as u32,
                bid_ct: Some(i as u32),
                ask_ct: (i % 2 == 0).then_some(1),
            };
        }
        let mut snap = m.clone();
        snap.is_snapshot = true;
        snap.action = None;
        snap.side = None;
        snap.price = None;
        snap.size = None;
        snap.flags = None;
        snap.seq = None;
        roundtrip(
            Table::FuturesMbp10,
            &[Event::Mbp10(Box::new(m)), Event::Mbp10(Box::new(snap))],
        );
        assert_eq!(schema(Table::FuturesMbp10).fields().len(), 3 + 7 + 60 + 1);
    }

    #[test]
    fn a_timestamp_past_2262_is_refused_and_nothing_is_half_written() {
        let e = parse(&[
            r#"{"type":"futures_trade","ts_event_ns":18446744073709551615,"ts_recv_ns":2,"source":"replay","symbol":"ESZ6","price":1.0,"size":3}"#,
        ]);
        let mut rows = rows(Table::FuturesTrades);
        assert!(rows.push(&e[0], 0).is_err());
        assert_eq!(rows.take().num_rows(), 0);
    }
}
