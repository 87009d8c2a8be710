//! The report of an evaluation: outcomes grouped by signal × level kind, beside the base rate.
//!
//! Win rate is wins / (wins + losses): open calls say nothing either way and are left out of
//! it (they are counted). Its 95 % interval is Wilson's score interval, which stays inside
//! [0, 1] and is honest for the handful of calls a day gives. The base rate is the same ratio
//! over the day's touches without a call at the same kind of level, scored as the row's signal;
//! the edge is the difference, in percentage points.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{TimeZone, Utc};
use chrono_tz::America::New_York;

use super::{Call, EvalSettings, Evaluation, InputCounts, Outcome, Signal};

/// z of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of `wins` out of `n` at 95 %; `None` when `n` is 0.
pub fn wilson(wins: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = wins as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // All wins (or none) puts that end exactly at 1 (or 0), which rounding can miss.
    let n_wins = wins as f64 == n;
    let low = if wins == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let high = if n_wins {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some((low, high))
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    pub signal: Signal,
    /// A level kind, or `ALL`.
    pub level_kind: String,
    pub calls: u64,
    pub wins: u64,
    pub losses: u64,
    pub open: u64,
    pub win_rate: Option<f64>,
    pub win_rate_low: Option<f64>,
    pub win_rate_high: Option<f64>,
    /// Touches without a call at this kind of level, scored as this signal.
    pub base_touches: u64,
    pub base_wins: u64,
    pub base_losses: u64,
    pub base_rate: Option<f64>,
    /// win_rate − base_rate, in percentage points.
    pub edge: Option<f64>,
    pub median_seconds_to_outcome: Option<f64>,
    pub median_mfe: Option<f64>,
    pub median_mae: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub settings: EvalSettings,
    pub input: InputCounts,
    pub touches: u64,
    pub touches_with_call: u64,
    pub rows: Vec<Row>,
}

/// Level kinds in PHYSICS.md's universe order; others follow alphabetically.
const KIND_ORDER: [&str; 9] = [
    "VWAP",
    "SESSION_HIGH",
    "SESSION_LOW",
    "ROUND",
    "STRIKE",
    "CALL_WALL",
    "PUT_WALL",
    "GAMMA_FLIP",
    "USER_HOTZONE",
];

fn kind_rank(kind: &str) -> (usize, &str) {
    (
        KIND_ORDER
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(KIND_ORDER.len()),
        kind,
    )
}

/// Tallies of one group.
#[derive(Default)]
struct Tally {
    calls: u64,
    wins: u64,
    losses: u64,
    open: u64,
    seconds: Vec<f64>,
    mfe: Vec<f64>,
    mae: Vec<f64>,
}

impl Tally {
    fn add(&mut self, call: &Call) {
        self.calls += 1;
        match call.outcome {
            Outcome::Win => self.wins += 1,
            Outcome::Loss => self.losses += 1,
            Outcome::Open => self.open += 1,
        }
        self.seconds.extend(call.seconds_to_outcome);
        self.mfe.push(call.mfe);
        self.mae.push(call.mae);
    }
}

fn rate(wins: u64, losses: u64) -> Option<f64> {
    (wins + losses > 0).then(|| wins as f64 / (wins + losses) as f64)
}

/// Groups the calls and touches into rows: per signal, one row per level kind with calls,
/// then `ALL`.
pub fn build(eval: &Evaluation) -> Report {
    // (wins, losses) of the touches per (signal, kind), and over all kinds.
    let mut base: BTreeMap<(Signal, &str), (u64, u64)> = BTreeMap::new();
    for touch in &eval.touches {
        for (signal, outcome) in [
            (Signal::Break, touch.as_break),
            (Signal::Reject, touch.as_reject),
        ] {
            for kind in [touch.level_kind.as_str(), "ALL"] {
                let e = base.entry((signal, kind)).or_default();
                match outcome {
                    Outcome::Win => e.0 += 1,
                    Outcome::Loss => e.1 += 1,
                    Outcome::Open => {}
                }
            }
        }
    }
    let mut rows = Vec::new();
    for signal in Signal::ALL {
        let mut by_kind: BTreeMap<(usize, &str), Tally> = BTreeMap::new();
        let mut all = Tally::default();
        for call in eval.calls.iter().filter(|c| c.signal == signal) {
            by_kind
                .entry(kind_rank(&call.level_kind))
                .or_default()
                .add(call);
            all.add(call);
        }
        let groups = by_kind
            .into_iter()
            .map(|((_, kind), t)| (kind, t))
            .chain(std::iter::once(("ALL", all)));
        for (kind, mut t) in groups {
            let (base_wins, base_losses) = base.get(&(signal, kind)).copied().unwrap_or_default();
            let win_rate = rate(t.wins, t.losses);
            let base_rate = rate(base_wins, base_losses);
            let interval = wilson(t.wins, t.wins + t.losses);
            rows.push(Row {
                signal,
                level_kind: kind.to_string(),
                calls: t.calls,
                wins: t.wins,
                losses: t.losses,
                open: t.open,
                win_rate,
                win_rate_low: interval.map(|i| i.0),
                win_rate_high: interval.map(|i| i.1),
                base_touches: base_wins + base_losses,
                base_wins,
                base_losses,
                base_rate,
                edge: win_rate.zip(base_rate).map(|(w, b)| (w - b) * 100.0),
                median_seconds_to_outcome: median(&mut t.seconds),
                median_mfe: median(&mut t.mfe),
                median_mae: median(&mut t.mae),
            });
        }
    }
    Report {
        settings: eval.settings,
        input: eval.counts,
        touches: eval.touches.len() as u64,
        touches_with_call: eval.touches_with_call,
        rows,
    }
}

/// `HH:MM:SS` US/Eastern of an event time in ms.
pub fn et_clock(ts_ms: i64) -> String {
    match Utc.timestamp_millis_opt(ts_ms).single() {
        Some(t) => t.with_timezone(&New_York).format("%H:%M:%S").to_string(),
        None => "-".to_string(),
    }
}

/// `YYYY-MM-DD` US/Eastern of an event time in ms.
pub fn et_date(ts_ms: i64) -> String {
    match Utc.timestamp_millis_opt(ts_ms).single() {
        Some(t) => t.with_timezone(&New_York).format("%Y-%m-%d").to_string(),
        None => "-".to_string(),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn dollars(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |v| format!("${v:.2}"))
}

/// The one-line description of the input and the settings.
pub fn headline(report: &Report) -> String {
    let c = &report.input;
    let span = match (c.first_ts, c.last_ts) {
        (Some(a), Some(b)) => format!(
            " · {} {}–{} ET",
            et_date(a),
            &et_clock(a)[..5],
            &et_clock(b)[..5]
        ),
        _ => String::new(),
    };
    let s = &report.settings;
    format!(
        "{} snaps, {} level-snaps{span} · target ${:.2} · stop ${:.2} · horizon {} s",
        crate::cli::thousands(c.snaps),
        crate::cli::thousands(c.level_snaps),
        s.target,
        s.stop,
        s.horizon_s
    )
}

/// The width of each column of a table of cells, in characters.
pub fn column_widths(lines: &[Vec<String>]) -> Vec<usize> {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    (0..columns)
        .map(|i| {
            lines
                .iter()
                .filter_map(|l| l.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// The report as an aligned table for a terminal.
pub fn write_table(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", headline(report))?;
    writeln!(out)?;
    let header = [
        "signal",
        "level",
        "calls",
        "win",
        "loss",
        "open",
        "win rate",
        "95% interval",
        "base",
        "touches",
        "edge",
        "to outcome",
        "MFE",
        "MAE",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in &report.rows {
        lines.push(vec![
            r.signal.as_str().to_string(),
            r.level_kind.clone(),
            r.calls.to_string(),
            r.wins.to_string(),
            r.losses.to_string(),
            r.open.to_string(),
            pct(r.win_rate),
            match (r.win_rate_low, r.win_rate_high) {
                (Some(lo), Some(hi)) => format!("{:.0}–{:.0}%", lo * 100.0, hi * 100.0),
                _ => "—".to_string(),
            },
            pct(r.base_rate),
            r.base_touches.to_string(),
            r.edge.map_or("—".to_string(), |e| format!("{e:+.1} pt")),
            r.median_seconds_to_outcome
                .map_or("—".to_string(), |s| format!("{s:.1} s")),
            dollars(r.median_mfe),
            dollars(r.median_mae),
        ]);
    }
    let widths = column_widths(&lines);
    for (n, line) in lines.iter().enumerate() {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i > 0 {
                text.push_str("  ");
            }
            // Names left, figures right.
            if i < 2 {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            } else {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            }
        }
        writeln!(out, "{}", text.trim_end())?;
        // A rule under the header and under each signal's ALL row.
        let all_row = n > 0 && report.rows[n - 1].level_kind == "ALL";
        if n == 0 || (all_row && n < lines.len() - 1) {
            writeln!(out, "{}", "─".repeat(text.trim_end().chars().count()))?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "base: {} touches without a call (within ${:.2} of a level, one per approach; {} with a call left out), each scored as if BREAK and as if REJECT",
        crate::cli::thousands(report.touches),
        report.settings.touch_band,
        crate::cli::thousands(report.touches_with_call)
    )?;
    writeln!(
        out,
        "win rate = wins / (wins + losses), open calls left out; edge = win rate − base, in points; medians over the calls of the row"
    )?;
    if report.input.out_of_order + report.input.no_spot > 0 {
        writeln!(
            out,
            "skipped: {} snaps out of order, {} without spot",
            report.input.out_of_order, report.input.no_spot
        )?;
    }
    Ok(())
}

/// The report as JSON (one document).
pub fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{}", (v * 1e6).round() / 1e6))
}

/// The report's rows as CSV.
pub fn write_csv(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "signal,level_kind,calls,wins,losses,open,win_rate,win_rate_low,win_rate_high,base_touches,base_wins,base_losses,base_rate,edge,median_seconds_to_outcome,median_mfe,median_mae"
    )?;
    for r in &report.rows {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.signal.as_str(),
            csv_text(&r.level_kind),
            r.calls,
            r.wins,
            r.losses,
            r.open,
            opt(r.win_rate),
            opt(r.win_rate_low),
            opt(r.win_rate_high),
            r.base_touches,
            r.base_wins,
            r.base_losses,
            opt(r.base_rate),
            opt(r.edge),
            opt(r.median_seconds_to_outcome),
            opt(r.median_mfe),
            opt(r.median_mae),
        )?;
    }
    Ok(())
}

/// A CSV field, quoted when it needs to be.
pub fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per call.
pub fn write_calls_csv(calls: &[Call], out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "onset_ts,onset_time_et,level_id,level_kind,level_price,direction,signal,score,score_smooth,confidence,barrier_state,fuel_effect,spot,distance,outcome,seconds_to_outcome,mfe,mae"
    )?;
    for c in calls {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            c.onset_ts,
            et_clock(c.onset_ts),
            csv_text(&c.level_id),
            csv_text(&c.level_kind),
            opt(Some(c.level_price)),
            csv_text(&c.direction),
            c.signal.as_str(),
            opt(Some(c.score)),
            opt(Some(c.score_smooth)),
            csv_text(&c.confidence),
            csv_text(&c.barrier_state),
            csv_text(&c.fuel_effect),
            opt(Some(c.spot)),
            opt(Some(c.distance)),
            c.outcome.as_str(),
            opt(c.seconds_to_outcome),
            opt(Some(c.mfe)),
            opt(Some(c.mae)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_textbook_figures() {
        // 8 of 10: Wilson 95 % is [0.4902, 0.9433] (Newcombe 1998, table I method 3 style).
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!((lo - 0.4902).abs() < 1e-4, "{lo}");
        assert!((hi - 0.9433).abs() < 1e-4, "{hi}");
        // 0 of 10 stays at 0 and 10 of 10 at 1, with sensible other ends.
        let (lo, hi) = wilson(0, 10).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.2775).abs() < 1e-4, "{hi}");
        let (lo, hi) = wilson(10, 10).unwrap();
        assert!((lo - 0.7225).abs() < 1e-4, "{lo}");
        assert_eq!(hi, 1.0);
        // 1 of 1 is a wide interval, not certainty.
        let (lo, _) = wilson(1, 1).unwrap();
        assert!((lo - 0.2065).abs() < 1e-4, "{lo}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn wilson_interval_narrows_with_more_calls_around_the_same_rate() {
        let (a, b) = wilson(6, 10).unwrap();
        let (c, d) = wilson(600, 1000).unwrap();
        assert!(b - a > 3.0 * (d - c));
        assert!(c < 0.6 && 0.6 < d);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_text("ROUND_687"), "ROUND_687");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn eastern_clock_of_an_event_time() {
        // 2025-11-21 15:09:22.750 UTC is 10:09:22 EST.
        assert_eq!(et_clock(1_763_737_762_750), "10:09:22");
    }
}
