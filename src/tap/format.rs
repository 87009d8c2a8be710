//! Output formats of `spm-tap`.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::Value;

use crate::event::{
    BOOK_DEPTH, BookRow, Event, EventKind, FeedState, FeedStatus, FuturesTrade, LevelRef,
    LevelSignal, LevelSignals, Mbp10, OptionTrade, StockQuote, StockTrade,
};

/// How `spm-tap` prints each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TapFormat {
    /// One JSON line per message: the bytes a pipe carries.
    #[default]
    Json,
    /// Indented JSON.
    Pretty,
    /// Flattened CSV, a header row before the first row of each kind.
    Csv,
    /// The levels view of `levels.signals` (other events print as JSON lines).
    Table,
}

/// Writes events in one [`TapFormat`].
pub struct Formatter<W: Write> {
    out: W,
    format: TapFormat,
    tty: bool,
    csv_kind: Option<EventKind>,
    tables: u64,
    buf: Vec<u8>,
}

impl<W: Write> Formatter<W> {
    /// `tty`: the output is a terminal (tables redraw in place and are coloured).
    pub fn new(out: W, format: TapFormat, tty: bool) -> Self {
        Formatter {
            out,
            format,
            tty,
            csv_kind: None,
            tables: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        match (self.format, event) {
            (TapFormat::Json, _) => self.json_line(event),
            (TapFormat::Pretty, _) => {
                serde_json::to_writer_pretty(&mut self.out, event).map_err(io::Error::other)?;
                self.out.write_all(b"\n")
            }
            (TapFormat::Csv, _) => self.csv(event),
            (TapFormat::Table, Event::LevelSignals(s)) => self.table(s),
            (TapFormat::Table, Event::FeedStatus(s)) => self.feed_line(s),
            (TapFormat::Table, _) => self.json_line(event),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn json_line(&mut self, event: &Event) -> io::Result<()> {
        self.buf.clear();
        event.write_json(&mut self.buf);
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    fn csv(&mut self, event: &Event) -> io::Result<()> {
        let kind = event.kind();
        let columns = csv_columns(kind);
        if self.csv_kind != Some(kind) {
            write_csv_row(&mut self.out, columns.iter().map(String::as_str))?;
            self.csv_kind = Some(kind);
        }
        for row in flat_rows(event) {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| row.get(c).map(cell).unwrap_or_default())
                .collect();
            write_csv_row(&mut self.out, cells.iter().map(String::as_str))?;
        }
        Ok(())
    }

    /// One line per feed report: time, source and connection, state, gap range, reason.
    fn feed_line(&mut self, s: &FeedStatus) -> io::Result<()> {
        let (on, off) = match (self.tty, s.state) {
            (true, FeedState::Gap | FeedState::Error | FeedState::Disconnected) => {
                ("\x1b[1;31m", "\x1b[0m")
            }
            (true, FeedState::Connected) => ("\x1b[1;32m", "\x1b[0m"),
            _ => ("", ""),
        };
        let mut line = format!(
            "{}  {:<11} {:<12} {on}{:<12}{off}",
            crate::cli::format_ts(s.ts_ns),
            s.source,
            s.feed.as_deref().unwrap_or("-"),
            s.state.as_str().to_uppercase(),
        );
        if let (Some(a), Some(b)) = (s.gap_start_ns, s.gap_end_ns) {
            line.push_str(&format!(
                " {} → {}",
                crate::cli::format_ts(a),
                crate::cli::format_ts(b)
            ));
        }
        if let Some(n) = s.records_lost {
            line.push_str(&format!(" {} lost", crate::cli::thousands(n)));
        }
        writeln!(self.out, "{line}  {}", s.reason)
    }

    fn table(&mut self, snap: &LevelSignals) -> io::Result<()> {
        let out = &mut self.out;
        if self.tty {
            out.write_all(b"\x1b[2J\x1b[H")?;
        } else if self.tables > 0 {
            out.write_all(b"\n")?;
        }
        self.tables += 1;
        let when = chrono::DateTime::from_timestamp_millis(snap.ts)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
            .unwrap_or_else(|| format!("ts {}", snap.ts));
        writeln!(
            out,
            "levels.signals  {when}  SPY {} (bid {} ask {})  {} levels",
            num(snap.spy.spot, 2),
            num(snap.spy.bid, 2),
            num(snap.spy.ask, 2),
            snap.levels.len()
        )?;
        writeln!(
            out,
            "{:<18} {:>9} {:>8}  {:<10} {:>6}  {:<11} {:<8}",
            "LEVEL", "PRICE", "DIST", "SIGNAL", "SCORE", "BARRIER", "FUEL"
        )?;
        for l in &snap.levels {
            let signal = format!("{:<10}", l.signal);
            let signal = match (self.tty, l.signal.as_str()) {
                (true, "BREAK") => format!("\x1b[31m{signal}\x1b[0m"),
                (true, "REJECT") => format!("\x1b[32m{signal}\x1b[0m"),
                _ => signal,
            };
            writeln!(
                out,
                "{:<18} {:>9} {:>8}  {} {:>6}  {:<11} {:<8}",
                l.id,
                num(Some(l.price), 2),
                signed(l.distance),
                signal,
                num(Some(l.break_score_smooth), 1),
                l.barrier.state,
                l.fuel.effect
            )?;
        }
        Ok(())
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".into(),
    }
}

fn signed(x: f64) -> String {
    if x.is_finite() {
        format!("{x:+.2}")
    } else {
        "-".into()
    }
}

/// One CSV cell: `null` is empty, strings are raw, numbers as in JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_csv_row<'a>(out: &mut impl Write, cells: impl Iterator<Item = &'a str>) -> io::Result<()> {
    let mut first = true;
    for c in cells {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        if c.contains([',', '"', '\n', '\r']) || c.starts_with(' ') || c.ends_with(' ') {
            out.write_all(b"\"")?;
            out.write_all(c.replace('"', "\"\"").as_bytes())?;
            out.write_all(b"\"")?;
        } else {
            out.write_all(c.as_bytes())?;
        }
    }
    out.write_all(b"\n")
}

/// Flattens a JSON value: nested keys joined with `.`, and an array of objects (the MBP-10
/// book) as `{key}_{n}` with 1-based `n`.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Array(items) if items.iter().all(Value::is_object) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Value::Object(row) = item {
                                for (rk, rv) in row {
                                    flatten(&format!("{}_{}", join(rk), i + 1), rv, out);
                                }
                            }
                        }
                    }
                    _ => flatten(&join(k), v, out),
                }
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// The flattened rows of an event: one, or one per level for `level_signals`.
fn flat_rows(event: &Event) -> Vec<HashMap<String, Value>> {
    let value = serde_json::to_value(event).unwrap_or(Value::Null);
    match (event, value) {
        (Event::LevelSignals(_), Value::Object(mut map)) => {
            let levels = match map.remove("levels") {
                Some(Value::Array(levels)) => levels,
                _ => Vec::new(),
            };
            levels
                .into_iter()
                .map(|level| {
                    let mut m = map.clone();
                    m.insert("levels".into(), level);
                    let mut flat = Vec::new();
                    flatten_levels_row(&Value::Object(m), &mut flat);
                    flat.into_iter().collect()
                })
                .collect()
        }
        (_, value) => {
            let mut flat = Vec::new();
            flatten("", &value, &mut flat);
            vec![flat.into_iter().collect()]
        }
    }
}

/// A signals row: `levels` holds one level object, flattened as `levels.…`.
fn flatten_levels_row(v: &Value, out: &mut Vec<(String, Value)>) {
    if let Value::Object(map) = v {
        for (k, v) in map {
            flatten(k, v, out);
        }
    }
}

/// The CSV columns of a kind, in order: every field of the kind, optional ones included.
pub fn csv_columns(kind: EventKind) -> Vec<String> {
    let sample = full_sample(kind);
    let value = serde_json::to_value(&sample).unwrap_or(Value::Null);
    let mut flat = Vec::new();
    match (kind, value) {
        (EventKind::LevelSignals, Value::Object(mut map)) => {
            if let Some(Value::Array(mut levels)) = map.remove("levels") {
                map.insert("levels".into(), levels.pop().unwrap_or(Value::Null));
            }
            flatten_levels_row(&Value::Object(map), &mut flat);
        }
        (_, value) => flatten("", &value, &mut flat),
    }
    flat.into_iter().map(|(k, _)| k).collect()
}

/// An event of `kind` with every optional field present, to name the columns.
fn full_sample(kind: EventKind) -> Event {
    let s = String::new;
    match kind {
        EventKind::FuturesTrade => Event::FuturesTrade(FuturesTrade {
            ts_event_ns: 0,
            ts_recv_ns: 0,
            source: s(),
            symbol: s(),
            price: 0.0,
            size: 0,
            aggressor: 0,
            exchange: Some(s()),
            seq: Some(0),
        }),
        EventKind::Mbp10 => Event::Mbp10(Box::new(Mbp10 {
            ts_event_ns: 0,
            ts_recv_ns: 0,
            source: s(),
            symbol: s(),
            levels: [BookRow {
                bid_px: Some(0.0),
                bid_sz: 0,
                ask_px: Some(0.0),
                ask_sz: 0,
                bid_ct: Some(0),
                ask_ct: Some(0),
            }; BOOK_DEPTH],
            is_snapshot: false,
            seq: Some(0),
            action: Some('A'),
            side: Some('B'),
            price: Some(0.0),
            size: Some(0),
            flags: Some(0),
        })),
        EventKind::OptionTrade => Event::OptionTrade(OptionTrade {
            ts_event_ns: 0,
            ts_recv_ns: 0,
            source: s(),
            underlying: s(),
            option_symbol: s(),
            exp_date: s(),
            strike: 0.0,
            right: 'C',
            price: 0.0,
            size: 0,
            opt_bid: Some(0.0),
            opt_ask: Some(0.0),
            aggressor: 0,
            seq: Some(0),
        }),
        EventKind::StockTrade => Event::StockTrade(StockTrade {
            ts_event_ns: 0,
            ts_recv_ns: 0,
            source: s(),
            symbol: s(),
            price: 0.0,
            size: 0,
            exchange: Some(s()),
            seq: Some(0),
        }),
        EventKind::StockQuote => Event::StockQuote(StockQuote {
            ts_event_ns: 0,
            ts_recv_ns: 0,
            source: s(),
            symbol: s(),
            bid_px: 0.0,
            ask_px: 0.0,
            bid_sz: 0,
            ask_sz: 0,
            seq: Some(0),
        }),
        EventKind::FeedStatus => Event::FeedStatus(FeedStatus {
            ts_ns: 0,
            source: s(),
            feed: Some(s()),
            state: FeedState::Gap,
            gap_start_ns: Some(0),
            gap_end_ns: Some(0),
            reason: s(),
            records_lost: Some(0),
        }),
        EventKind::LevelSignals => {
            let mut level = LevelSignal::default();
            level.runway.next_obstacle = Some(LevelRef::default());
            Event::LevelSignals(LevelSignals {
                levels: vec![level],
                ..Default::default()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{BarrierPayload, FuelPayload, SpyQuote};

    fn trade() -> Event {
        Event::FuturesTrade(FuturesTrade {
            ts_event_ns: 10,
            ts_recv_ns: 11,
            source: "replay".into(),
            symbol: "ESZ5".into(),
            price: 6870.25,
            size: 2,
            aggressor: -1,
            exchange: None,
            seq: Some(7),
        })
    }

    fn level(id: &str, price: f64, signal: &str, state: &str) -> LevelSignal {
        LevelSignal {
            id: id.into(),
            price,
            kind: "STRIKE".into(),
            direction: "SUPPORT".into(),
            distance: 0.35,
            break_score_smooth: 82.34,
            signal: signal.into(),
            note: "a, \"quoted\" note".into(),
            barrier: BarrierPayload {
                state: state.into(),
                ..Default::default()
            },
            fuel: FuelPayload {
                effect: "AMPLIFY".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn snap() -> Event {
        Event::LevelSignals(LevelSignals {
            ts: 1_764_000_000_250,
            spy: SpyQuote {
                spot: Some(687.35),
                bid: Some(687.34),
                ask: Some(687.36),
            },
            levels: vec![
                level("STRIKE_687", 687.0, "BREAK", "VACUUM"),
                level("ROUND_690", 690.0, "REJECT", "WALL"),
            ],
        })
    }

    fn render(format: TapFormat, tty: bool, events: &[Event]) -> String {
        let mut f = Formatter::new(Vec::new(), format, tty);
        for e in events {
            f.write_event(e).unwrap();
        }
        String::from_utf8(f.into_inner()).unwrap()
    }

    #[test]
    fn json_format_prints_the_pipe_line_of_each_event() {
        let text = render(TapFormat::Json, false, &[trade(), snap()]);
        assert_eq!(
            text,
            format!("{}\n{}\n", trade().to_json(), snap().to_json())
        );
    }

    #[test]
    fn pretty_format_is_indented_json_of_the_same_event() {
        let text = render(TapFormat::Pretty, false, &[trade()]);
        assert!(text.contains("\n  \"symbol\": \"ESZ5\""), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        let line: Value = serde_json::from_str(&trade().to_json()).unwrap();
        assert_eq!(back, line);
    }

    fn parse_csv_line(line: &str) -> Vec<String> {
        // Enough of RFC 4180 for these tests: quoted cells with doubled quotes.
        let mut cells = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                (true, '"') => quoted = false,
                (false, '"') => quoted = true,
                (false, ',') => cells.push(std::mem::take(&mut cur)),
                (_, c) => cur.push(c),
            }
        }
        cells.push(cur);
        cells
    }

    #[test]
    fn csv_of_signals_has_one_row_per_level_with_dotted_keys_and_quoted_cells() {
        let text = render(TapFormat::Csv, false, &[snap(), snap()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 4, "one header, then two rows per snap");
        let header = parse_csv_line(lines[0]);
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
        };
        let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| parse_csv_line(l)).collect();
        assert!(rows.iter().all(|r| r.len() == header.len()));
        assert_eq!(rows[0][col("levels.id")], "STRIKE_687");
        assert_eq!(rows[1][col("levels.id")], "ROUND_690");
        assert_eq!(rows[1][col("levels.barrier.state")], "WALL");
        assert_eq!(rows[0][col("levels.fuel.effect")], "AMPLIFY");
        assert_eq!(rows[0][col("spy.spot")], "687.35");
        assert_eq!(rows[0][col("ts")], "1764000000250");
        assert_eq!(rows[0][col("levels.note")], "a, \"quoted\" note");
        // An absent next obstacle is an empty cell, not a missing column.
        assert_eq!(rows[0][col("levels.runway.next_obstacle.id")], "");
    }

    #[test]
    fn csv_of_mbp10_flattens_the_book_one_based_and_repeats_the_header_on_kind_change() {
        let book = crate::bus::testing::synthetic_mbp10(3);
        let text = render(
            TapFormat::Csv,
            false,
            &[book.clone(), trade(), book.clone()],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        let header = parse_csv_line(lines[0]);
        for name in [
            "bid_px_1",
            "ask_sz_1",
            "bid_px_10",
            "ask_sz_10",
            "ask_ct_10",
        ] {
            assert!(header.iter().any(|h| h == name), "{name} in {header:?}");
        }
        assert!(!header.iter().any(|h| h.starts_with("levels")));
        let row = parse_csv_line(lines[1]);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let Event::Mbp10(m) = &book else {
            unreachable!()
        };
        assert_eq!(
            row[col("bid_px_1")],
            m.levels[0].bid_px.unwrap().to_string()
        );
        assert_eq!(row[col("ask_sz_10")], m.levels[9].ask_sz.to_string());
        assert_eq!(row[col("type")], "mbp10");
        // The trade gets its own header; its absent `exchange` is an empty cell.
        let trade_header = parse_csv_line(lines[2]);
        assert_eq!(trade_header, csv_columns(EventKind::FuturesTrade));
        let trade_row = parse_csv_line(lines[3]);
        let tcol = |name: &str| trade_header.iter().position(|h| h == name).unwrap();
        assert_eq!(trade_row[tcol("exchange")], "");
        assert_eq!(trade_row[tcol("aggressor")], "-1");
        assert_eq!(parse_csv_line(lines[4]), header);
    }

    #[test]
    fn table_on_a_pipe_prints_plain_blocks_separated_by_a_blank_line() {
        let text = render(TapFormat::Table, false, &[snap(), snap()]);
        assert!(!text.contains('\x1b'), "no escapes off a terminal");
        let blocks: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(blocks.len(), 2);
        let first: Vec<&str> = blocks[0].lines().collect();
        assert!(
            first[0].contains("2025-11-24 16:00:00.250 UTC"),
            "{}",
            first[0]
        );
        assert!(first[0].contains("SPY 687.35"));
        assert!(first[1].starts_with("LEVEL"));
        let row: Vec<&str> = first[2].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "STRIKE_687",
                "687.00",
                "+0.35",
                "BREAK",
                "82.3",
                "VACUUM",
                "AMPLIFY"
            ]
        );
        assert!(first[3].starts_with("ROUND_690"));
    }

    #[test]
    fn table_on_a_terminal_redraws_in_place_and_colours_break_and_reject() {
        let text = render(TapFormat::Table, true, &[snap()]);
        assert!(text.starts_with("\x1b[2J\x1b[H"));
        assert!(text.contains("\x1b[31mBREAK"));
        assert!(text.contains("\x1b[32mREJECT"));
    }

    #[test]
    fn table_prints_other_events_as_json_lines() {
        let text = render(TapFormat::Table, false, &[trade()]);
        assert_eq!(text, format!("{}\n", trade().to_json()));
    }
}
