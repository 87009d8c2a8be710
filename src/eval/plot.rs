//! The session as an SVG: spot, the level lines, and every call marked by its outcome.
//!
//! Spot is one path, downsampled to the min and max of each pixel column so spikes survive.
//! Only levels with a call are drawn; flat levels at one price share a line and a label. A
//! call is a triangle at (onset, level price) pointing the way it profits, filled by outcome,
//! with a tooltip. Times are US/Eastern. The same evaluation gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};

use chrono::{DateTime, Offset, Timelike};
use chrono_tz::{America::New_York, Tz};

use super::{Call, Evaluation, Outcome};

const WIDTH: f64 = 1400.0;
const HEIGHT: f64 = 700.0;
/// The plot area; the right margin holds the level labels.
const LEFT: f64 = 66.0;
const RIGHT: f64 = 1170.0;
const TOP: f64 = 72.0;
const BOTTOM: f64 = 650.0;
/// Minimum vertical distance between two level labels, px.
const LABEL_GAP: f64 = 11.0;
/// Prices beyond this are garbage, not SPY: skipped, so no span overflows.
const MAX_PRICE: f64 = 1e9;
const STYLE: &str = "<style>
text { font: 11px system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; fill: #555 }
.title { font-size: 17px; font-weight: 600; fill: #222 }
.sub, .note { font-size: 13px } .note { fill: #888 } .legend { font-size: 12px; fill: #444 }
.end { text-anchor: end } .mid { text-anchor: middle }
.label { font-size: 10px; stroke: white; stroke-width: 3px; paint-order: stroke; stroke-linejoin: round }
.level { fill: none; stroke-width: 1.1; stroke-opacity: 0.7; stroke-linecap: round }
.spot { fill: none; stroke: #222; stroke-width: 1.2; stroke-linejoin: round; stroke-linecap: round }
.marker, .key { stroke: white; stroke-width: 1 }
</style>";

/// Renders the evaluation's trace and calls as a standalone SVG document.
pub fn render_svg(eval: &Evaluation, title: &str) -> String {
    let mut out = String::new();
    write_svg(&mut out, eval, title).expect("writing to a String cannot fail");
    out
}

/// Maps event time (ms) and price to pixels.
struct Frame {
    t0: f64,
    t1: f64,
    p0: f64,
    p1: f64,
}

impl Frame {
    /// The frame around every usable (ts, price), padded; `None` when there is none.
    fn around(points: impl Iterator<Item = (i64, f64)>) -> Option<Frame> {
        let (mut t0, mut t1) = (i64::MAX, i64::MIN);
        let (mut p0, mut p1) = (f64::INFINITY, f64::NEG_INFINITY);
        for (ts, p) in points.filter(|&(_, p)| usable(p)) {
            (t0, t1, p0, p1) = (t0.min(ts), t1.max(ts), p0.min(p), p1.max(p));
        }
        let (t0, t1) = (t0 as f64, t1 as f64);
        let (mid_t, half_t) = ((t0 + t1) / 2.0, ((t1 - t0) / 2.0).max(30_000.0));
        let (mid_p, half_p) = ((p0 + p1) / 2.0, (p1 - p0).max(0.2) * 0.56);
        let (p0, p1) = (mid_p - half_p, mid_p + half_p);
        (t0 <= t1).then_some(Frame {
            t0: mid_t - half_t,
            t1: mid_t + half_t,
            p0,
            p1,
        })
    }

    fn x(&self, ts: i64) -> f64 {
        LEFT + (ts as f64 - self.t0) / (self.t1 - self.t0) * (RIGHT - LEFT)
    }

    fn y(&self, price: f64) -> f64 {
        BOTTOM - (price - self.p0) / (self.p1 - self.p0) * (BOTTOM - TOP)
    }
}

fn usable(p: f64) -> bool {
    p.is_finite() && p.abs() < MAX_PRICE
}

/// The round step at or above `raw`: 1, 2, 2.5 or 5 × 10ⁿ (2.5 only from 0.25 up, so a
/// price label never needs a third decimal).
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let mantissas: &[f64] = if mag >= 0.1 {
        &[1.0, 2.0, 2.5, 5.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let step = mantissas
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9));
    step.unwrap_or(10.0 * mag)
}

fn eastern(ts: i64) -> Option<DateTime<Tz>> {
    Some(DateTime::from_timestamp_millis(ts)?.with_timezone(&New_York))
}

/// US/Eastern wall clock, HH:MM or HH:MM:SS.
fn clock(ts: i64, seconds: bool) -> String {
    match eastern(ts) {
        Some(t) if seconds => format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
        Some(t) => format!("{:02}:{:02}", t.hour(), t.minute()),
        None => "??:??".into(),
    }
}

fn escape(s: &str) -> String {
    let s = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    s.replace('"', "&quot;").replace('\'', "&apos;")
}

fn money(v: f64) -> String {
    match v.is_finite() {
        true => format!("${v:.2}"),
        false => "$?".into(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn fill(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Win => "#1a9850",
        Outcome::Loss => "#d73027",
        Outcome::Open => "#9e9e9e",
    }
}

/// Level kinds and their colours; a line shared by several kinds takes the first's colour.
const KINDS: [(&str, &str); 9] = [
    ("CALL_WALL", "#e07b00"),
    ("PUT_WALL", "#1b9e9e"),
    ("GAMMA_FLIP", "#c2187a"),
    ("USER_HOTZONE", "#c9a100"),
    ("VWAP", "#7b4fa6"),
    ("SESSION_HIGH", "#8c5a2b"),
    ("SESSION_LOW", "#8c5a2b"),
    ("STRIKE", "#5b7083"),
    ("ROUND", "#8a8a8a"),
];

fn kind_rank(kind: &str) -> usize {
    let rank = KINDS.iter().position(|k| k.0 == kind);
    rank.unwrap_or(KINDS.len())
}

fn kind_colour(kind: &str) -> &'static str {
    KINDS.get(kind_rank(kind)).map_or("#777777", |k| k.1)
}

/// Pixel points of spot: the lowest and highest point of each pixel column in time order,
/// so spikes survive.
fn downsample(points: impl Iterator<Item = (i64, f64)>, f: &Frame) -> Vec<(f64, f64)> {
    let points = pixels(points, f);
    let mut all = Vec::new();
    for col in points.chunk_by(|a, b| a.0.floor() == b.0.floor()) {
        let by_y = |a: &usize, b: &usize| col[*a].1.total_cmp(&col[*b].1);
        let (lo, hi) = ((0..col.len()).min_by(by_y), (0..col.len()).max_by(by_y));
        let (a, b) = (lo.min(hi).unwrap_or(0), lo.max(hi).unwrap_or(0));
        all.push(col[a]);
        if b != a {
            all.push(col[b]);
        }
    }
    drop_flat_runs(all)
}

/// Pixel points of a level: the mean of every 2 px, a line where the level was rather than
/// its snap-to-snap jitter.
fn smooth(points: &[(i64, f64)], f: &Frame) -> Vec<(f64, f64)> {
    let points = pixels(points.iter().copied(), f);
    let means = points
        .chunk_by(|a, b| (a.0 / 2.0).floor() == (b.0 / 2.0).floor())
        .map(|c| {
            let n = c.len() as f64;
            let sum = c.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
            (sum.0 / n, sum.1 / n)
        });
    drop_flat_runs(means.collect())
}

fn pixels(points: impl Iterator<Item = (i64, f64)>, f: &Frame) -> Vec<(f64, f64)> {
    let usable_points = points.filter(|p| usable(p.1));
    usable_points.map(|(t, p)| (f.x(t), f.y(p))).collect()
}

/// Drops the inner points of horizontal runs (as drawn, to 0.1 px).
fn drop_flat_runs(all: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let level = |i: usize| all.get(i).map(|p: &(f64, f64)| (p.1 * 10.0).round() as i64);
    let inner = |i: usize| i > 0 && level(i - 1) == level(i) && level(i + 1) == level(i);
    (0..all.len())
        .filter(|&i| !inner(i))
        .map(|i| all[i])
        .collect()
}

fn path_d(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        let sep = ["M", " L", " "][i.min(2)];
        let _ = write!(d, "{sep}{x:.1},{y:.1}");
    }
    if points.len() == 1 {
        d.push_str(" h0.1");
    }
    d
}

/// A triangle of about 7 px around (x, y), pointing up or down.
fn triangle(x: f64, y: f64, up: bool) -> String {
    let s = if up { 1.0 } else { -1.0 };
    let (apex, base, l, r) = (y - 6.5 * s, y + 4.5 * s, x - 6.0, x + 6.0);
    format!("M{x:.1},{apex:.1} L{l:.1},{base:.1} L{r:.1},{base:.1} Z")
}

/// A level line to draw: one or more ids (flat levels at one price share a line).
struct Line<'a> {
    ids: Vec<&'a str>,
    kind: &'a str,
    /// A flat line's price, µ$.
    flat: Option<i64>,
    /// Runs while active; a flat line's are merged (start, end) pairs.
    segments: Vec<Vec<(i64, f64)>>,
}

fn level_lines(eval: &Evaluation) -> Vec<Line<'_>> {
    let called: BTreeSet<&str> = eval.calls.iter().map(|c| c.level_id.as_str()).collect();
    let mut lines: Vec<Line> = Vec::new();
    let levels = eval.trace.iter().flat_map(|t| &t.levels);
    for level in levels.filter(|l| called.contains(l.id.as_str())) {
        let usable_run = |s: &Vec<(i64, f64)>| s.iter().copied().filter(|p| usable(p.1)).collect();
        let segments: Vec<Vec<_>> = level.segments.iter().map(usable_run).collect();
        let mut segments: Vec<_> = segments.into_iter().filter(|s| !s.is_empty()).collect();
        let Some(&(_, first)) = segments.first().and_then(|s| s.first()) else {
            continue;
        };
        let (ids, kind) = (vec![level.id.as_str()], level.kind.as_str());
        let moves = |s: &Vec<(i64, f64)>| s.iter().any(|&(_, p)| (p - first).abs() > 1e-6);
        let micro = (first * 1e6).round() as i64;
        let flat = (!segments.iter().any(moves)).then_some(micro);
        if flat.is_some() {
            let p = micro as f64 / 1e6;
            segments = segments
                .iter()
                .map(|s| vec![(s[0].0, p), (s[s.len() - 1].0, p)])
                .collect();
        }
        match lines.iter_mut().find(|l| flat.is_some() && l.flat == flat) {
            Some(line) => {
                line.ids.extend(ids);
                if kind_rank(kind) < kind_rank(line.kind) {
                    line.kind = kind;
                }
                line.segments.extend(segments);
            }
            None => lines.push(Line {
                ids,
                kind,
                flat,
                segments,
            }),
        }
    }
    for line in lines.iter_mut().filter(|l| l.flat.is_some()) {
        line.segments.sort_by_key(|s| s[0].0);
        let mut merged: Vec<Vec<(i64, f64)>> = Vec::new();
        for s in line.segments.drain(..) {
            match merged.last_mut() {
                Some(m) if s[0].0 <= m[1].0 => m[1].0 = m[1].0.max(s[1].0),
                _ => merged.push(s),
            }
        }
        line.segments = merged;
    }
    lines
}

/// `<text>` at (x, y) of a class; the content escaped.
fn text(out: &mut String, (x, y): (f64, f64), class: &str, content: &str) -> fmt::Result {
    let content = escape(content);
    writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" class="{class}">{content}</text>"#
    )
}

fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), colour: &str) -> fmt::Result {
    writeln!(
        out,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{colour}"/>"#
    )
}

fn write_svg(out: &mut String, eval: &Evaluation, title: &str) -> fmt::Result {
    let (w, h, ns) = (WIDTH, HEIGHT, "http://www.w3.org/2000/svg");
    writeln!(
        out,
        r#"<svg xmlns="{ns}" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    )?;
    writeln!(
        out,
        "{STYLE}\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>"
    )?;

    // Title, summary and legend, above the plot area.
    let calls = &eval.calls;
    let count = |o: Outcome| calls.iter().filter(|c| c.outcome == o).count();
    let s = &eval.settings;
    let horizon = if s.horizon_s.is_finite() {
        s.horizon_s.to_string()
    } else {
        "?".into()
    };
    let summary = format!(
        "{}: {}, {}, {} open · target {} · stop {} · horizon {horizon} s",
        plural(calls.len(), "call", "calls"),
        plural(count(Outcome::Win), "win", "wins"),
        plural(count(Outcome::Loss), "loss", "losses"),
        count(Outcome::Open),
        money(s.target),
        money(s.stop),
    );
    text(out, (LEFT, 28.0), "title", title)?;
    text(out, (LEFT, 50.0), "sub", &summary)?;
    let outcomes = [Outcome::Win, Outcome::Loss, Outcome::Open];
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let x = RIGHT - 420.0 + 58.0 * i as f64;
        let (d, fill) = (triangle(x + 6.0, 45.0, true), fill(outcome));
        writeln!(out, r#"<path class="key" d="{d}" fill="{fill}"/>"#)?;
        text(out, (x + 15.0, 50.0), "legend", outcome.as_str())?;
    }
    text(
        out,
        (RIGHT, 50.0),
        "legend end",
        "▲ profits if spot rises · ▼ if it falls",
    )?;

    let (pw, ph) = (RIGHT - LEFT, BOTTOM - TOP);
    let border = format!(
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#c8c8c8"/>"##
    );
    let lines = level_lines(eval);
    let spot = eval.trace.iter().flat_map(|t| t.spot.iter().copied());
    let levels = lines.iter().flat_map(|l| l.segments.iter().flatten());
    let marks = calls.iter().map(|c| (c.onset_ts, c.level_price));
    let Some(f) = Frame::around(spot.clone().chain(levels.copied()).chain(marks)) else {
        writeln!(out, "{border}")?;
        let centre = ((LEFT + RIGHT) / 2.0, (TOP + BOTTOM) / 2.0);
        text(out, centre, "note mid", "nothing to plot")?;
        return writeln!(out, "</svg>");
    };
    write_axes(out, &f)?;
    writeln!(out, "{border}")?;
    let message = match &eval.trace {
        None => "no trace recorded: calls only",
        Some(t) if t.spot.is_empty() => "no spot in the trace",
        Some(_) => "",
    };
    if !message.is_empty() {
        text(out, (LEFT + 10.0, TOP + 18.0), "note", message)?;
    }
    write_levels(out, &f, &lines)?;
    let d = path_d(&downsample(spot, &f));
    writeln!(out, r#"<path class="spot" d="{d}"/>"#)?;
    write_markers(out, &f, calls)?;
    writeln!(out, "</svg>")
}

/// The price axis in round steps and the US/Eastern time axis in round minutes, with grids.
fn write_axes(out: &mut String, f: &Frame) -> fmt::Result {
    let step = nice_step((f.p1 - f.p0) / 12.0);
    let decimals = if step < 0.995 {
        2
    } else {
        usize::from(step.fract() != 0.0)
    };
    let first = (f.p0 / step).ceil();
    let ticks = (0..40).map(|i| (first + f64::from(i)) * step);
    for v in ticks.take_while(|v| *v <= f.p1) {
        let y = f.y(v);
        line(out, (LEFT, y), (RIGHT, y), "#ececec")?;
        text(
            out,
            (LEFT - 6.0, y + 4.0),
            "end",
            &format!("{v:.decimals$}"),
        )?;
    }
    text(out, (LEFT - 6.0, TOP - 8.0), "end", "SPY $")?;

    let start = eastern(f.t0 as i64);
    let offset = start.map_or(0, |t| t.offset().fix().local_minus_utc()) as f64 * 1000.0;
    let span_min = (f.t1 - f.t0) / 60_000.0;
    let minutes = [1, 2, 5, 10, 15, 30, 60, 120, 240, 720, 1440].map(f64::from);
    let step = minutes.into_iter().find(|m| span_min / m <= 12.0);
    let step = step.unwrap_or_else(|| (span_min / 12.0 / 1440.0).ceil() * 1440.0) * 60_000.0;
    let first = ((f.t0 + offset) / step).ceil() * step - offset;
    let ticks = (0..40).map(|i| first + f64::from(i) * step);
    for t in ticks.take_while(|t| *t <= f.t1) {
        let x = f.x(t as i64);
        line(out, (x, TOP), (x, BOTTOM), "#f2f2f2")?;
        text(out, (x, BOTTOM + 16.0), "mid", &clock(t as i64, false))?;
    }
    let date = start.map_or(String::new(), |t| format!(", {}", t.date_naive()));
    let centre = ((LEFT + RIGHT) / 2.0, BOTTOM + 36.0);
    text(out, centre, "mid", &format!("time (US/Eastern{date})"))
}

/// A level label: where its line ends, where the label goes, its rows (long ones wrap).
struct Label<'a> {
    x: f64,
    end_y: f64,
    y: f64,
    rows: Vec<String>,
    colour: &'a str,
}

impl Label<'_> {
    fn width(&self) -> f64 {
        self.rows.iter().map(|r| text_width(r)).fold(0.0, f64::max)
    }

    fn height(&self) -> f64 {
        self.rows.len() as f64 * LABEL_GAP
    }
}

/// Width of a label's text, a little generous.
fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * 6.0
}

/// The ids joined by " · " in rows no wider than `room`.
fn wrap(ids: &[&str], room: f64) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    for id in ids {
        let joined = rows.last().map(|r| format!("{r} · {id}"));
        match joined.filter(|j| text_width(j) <= room) {
            Some(j) => {
                rows.pop();
                rows.push(j);
            }
            None if rows.is_empty() => rows.push(id.to_string()),
            None => rows.push(format!("· {id}")),
        }
    }
    rows
}

/// The level lines, each labelled at its right end; labels too close are nudged down.
fn write_levels(out: &mut String, f: &Frame, lines: &[Line]) -> fmt::Result {
    let mut labels: Vec<Label> = Vec::new();
    for l in lines {
        let colour = kind_colour(l.kind);
        let runs: Vec<_> = l.segments.iter().map(|s| smooth(s, f)).collect();
        let d = runs.iter().map(|r| path_d(r)).collect::<Vec<_>>().join(" ");
        let tip = escape(&l.ids.join(" · "));
        writeln!(
            out,
            r#"<path class="level" d="{d}" stroke="{colour}"><title>{tip}</title></path>"#
        )?;
        // Runs are in time order (a flat line's merged ones too): the last one ends last.
        if let Some(&(x, y)) = runs.last().and_then(|r| r.last()) {
            let rows = wrap(&l.ids, WIDTH - 10.0 - x);
            labels.push(Label {
                x,
                end_y: y,
                y,
                rows,
                colour,
            });
        }
    }
    labels.sort_by(|a, b| a.y.total_cmp(&b.y).then_with(|| a.rows.cmp(&b.rows)));
    for i in 1..labels.len() {
        let (placed, rest) = labels.split_at_mut(i);
        let me = &mut rest[0];
        let (x, w, h) = (me.x, me.width(), me.height());
        let clash = |o: &Label, y: f64| {
            let apart = o.y >= y + h - 1e-9 || y >= o.y + o.height() - 1e-9;
            !apart && o.x < x + w && x < o.x + o.width()
        };
        while let Some(o) = placed.iter().find(|o| clash(o, me.y)) {
            me.y = o.y + o.height();
        }
    }
    for l in &labels {
        let y = l.y.min(HEIGHT - 4.0 - l.height() + LABEL_GAP);
        if (y - l.end_y).abs() > 2.0 {
            line(out, (l.x + 1.0, l.end_y), (l.x + 5.0, y), l.colour)?;
        }
        for (i, row) in l.rows.iter().enumerate() {
            let at = format!(
                r#"x="{:.1}" y="{:.1}""#,
                l.x + 6.0,
                y + 3.5 + i as f64 * LABEL_GAP
            );
            let (colour, row) = (l.colour, escape(row));
            writeln!(
                out,
                r#"<text {at} class="label" style="fill: {colour}">{row}</text>"#
            )?;
        }
    }
    Ok(())
}

/// One marker per (time, price, signal, direction), whatever the number of level ids.
fn write_markers(out: &mut String, f: &Frame, calls: &[Call]) -> fmt::Result {
    let mut groups: BTreeMap<_, Vec<&Call>> = BTreeMap::new();
    for c in calls.iter().filter(|c| usable(c.level_price)) {
        let micro = (c.level_price * 1e6).round() as i64;
        let key = (c.onset_ts, micro, c.signal, c.direction.as_str());
        groups.entry(key).or_default().push(c);
    }
    writeln!(out, "<g>")?;
    for group in groups.values() {
        let c = group[0];
        let ids: Vec<&str> = group.iter().map(|c| c.level_id.as_str()).collect();
        let result = match c.seconds_to_outcome.filter(|s| s.is_finite()) {
            Some(s) if c.outcome != Outcome::Open => format!("{} in {s:.1} s", c.outcome.as_str()),
            _ => c.outcome.as_str().into(),
        };
        let tip = format!(
            "{} {} at {} ET: {result}, MFE {}, MAE {}\n{} {}, spot {}",
            c.signal.as_str(),
            ids.join(" · "),
            clock(c.onset_ts, true),
            money(c.mfe),
            money(c.mae),
            c.direction,
            money(c.level_price),
            money(c.spot),
        );
        let up = c.signal.favourable(c.direction == "SUPPORT") > 0.0;
        let d = triangle(f.x(c.onset_ts), f.y(c.level_price), up);
        let (fill, tip) = (fill(c.outcome), escape(&tip));
        writeln!(
            out,
            r#"<path class="marker" d="{d}" fill="{fill}"><title>{tip}</title></path>"#
        )?;
    }
    writeln!(out, "</g>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalSettings, InputCounts, LevelTrace, Signal, Trace};

    /// 2025-01-15 14:30 UTC (09:30 ET), ms.
    const OPEN_MS: i64 = 1_736_951_400_000;

    fn kind_of(id: &str) -> String {
        id.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_')
            .to_string()
    }

    /// A BREAK of a support `at_s` seconds after the open.
    fn call(at_s: i64, id: &str, price: f64, outcome: Outcome) -> Call {
        Call {
            onset_ts: OPEN_MS + at_s * 1000,
            level_id: id.into(),
            level_kind: kind_of(id),
            level_price: price,
            direction: "SUPPORT".into(),
            signal: Signal::Break,
            score: 0.8,
            score_smooth: 0.7,
            confidence: "HIGH".into(),
            barrier_state: "NEUTRAL".into(),
            fuel_effect: "NEUTRAL".into(),
            spot: price + 0.02,
            distance: 0.02,
            outcome,
            seconds_to_outcome: (outcome != Outcome::Open).then_some(12.34),
            mfe: 0.41,
            mae: 0.05,
        }
    }

    fn with(signal: Signal, direction: &str, c: Call) -> Call {
        Call {
            signal,
            direction: direction.into(),
            ..c
        }
    }

    fn eval(trace: Option<Trace>, calls: Vec<Call>) -> Evaluation {
        let (counts, settings) = (InputCounts::default(), EvalSettings::default());
        let touches = Vec::new();
        Evaluation {
            settings,
            counts,
            calls,
            touches,
            touches_with_call: 0,
            trace,
        }
    }

    /// Spot every 250 ms for `n` snaps (a slow wave around 687), and flat levels all along.
    fn trace(n: usize, levels: &[(&str, f64)]) -> Trace {
        let wave = |i: usize| 687.0 + (i as f64 / 400.0).sin() * 0.8;
        let spot: Vec<_> = (0..n)
            .map(|i| (OPEN_MS + 250 * i as i64, wave(i)))
            .collect();
        let level = |&(id, price): &(&str, f64)| LevelTrace {
            id: id.into(),
            kind: kind_of(id),
            segments: vec![spot.iter().map(|&(t, _)| (t, price)).collect()],
        };
        Trace {
            levels: levels.iter().map(level).collect(),
            spot,
        }
    }

    fn assert_well_formed(svg: &str) {
        assert!(
            svg.starts_with("<svg ") && svg.ends_with("</svg>\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    /// The lines of `svg` with elements of a class.
    fn class<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        let attr = format!(r#"class="{class}""#);
        svg.lines().filter(|l| l.contains(&attr)).collect()
    }

    #[test]
    fn the_svg_is_well_formed_with_axes_levels_and_the_summary() {
        let t = trace(3600, &[("ROUND_687", 687.0)]);
        let c = call(60, "ROUND_687", 687.0, Outcome::Win);
        let svg = render_svg(&eval(Some(t), vec![c]), "SPY 2025-01-15");
        assert_well_formed(&svg);
        assert!(svg.contains(r#"viewBox="0 0 1400 700""#));
        assert!(svg.contains(">ROUND_687</text>") && svg.contains(">687.00</text>"));
        assert!(svg.contains(">09:30</text>") && svg.contains("(US/Eastern, 2025-01-15)"));
        let summary = "1 call: 1 win, 0 losses, 0 open · target $0.25 · stop $0.25 · horizon 120 s";
        assert!(svg.contains(summary), "{svg}");
    }

    #[test]
    fn one_marker_per_distinct_time_and_price_filled_by_outcome_with_a_tooltip() {
        let calls = vec![
            call(60, "ROUND_687", 687.0, Outcome::Win),
            call(60, "STRIKE_687", 687.0, Outcome::Win),
            with(
                Signal::Reject,
                "RESISTANCE",
                call(61, "ROUND_688", 688.0, Outcome::Loss),
            ),
            call(62, "ROUND_686", 686.0, Outcome::Open),
        ];
        let svg = render_svg(&eval(Some(trace(3600, &[])), calls), "t");
        let m = class(&svg, "marker");
        assert_eq!(m.len(), 3, "{m:#?}");
        let tip =
            "BREAK ROUND_687 · STRIKE_687 at 09:31:00 ET: win in 12.3 s, MFE $0.41, MAE $0.05";
        assert!(
            m[0].contains(fill(Outcome::Win)) && m[0].contains(tip),
            "{}",
            m[0]
        );
        assert!(
            m[1].contains(fill(Outcome::Loss)) && m[1].contains("REJECT ROUND_688 at 09:31:01")
        );
        assert!(m[2].contains(fill(Outcome::Open)) && m[2].contains("09:31:02 ET: open, MFE"));
    }

    #[test]
    fn markers_point_the_way_the_call_profits() {
        let points_up = |signal, dir| {
            let c = with(signal, dir, call(0, "ROUND_687", 687.0, Outcome::Win));
            let svg = render_svg(&eval(None, vec![c]), "t");
            let d = class(&svg, "marker")[0]
                .split("d=\"M")
                .nth(1)
                .map(str::to_string);
            let ys: Vec<f64> = d
                .iter()
                .flat_map(|d| d.split([' ', 'L', 'Z']))
                .filter_map(|p| p.split_once(',')?.1.parse().ok())
                .collect();
            ys[0] < ys[1] // the apex above the base
        };
        assert!(!points_up(Signal::Break, "SUPPORT"));
        assert!(points_up(Signal::Break, "RESISTANCE"));
        assert!(points_up(Signal::Reject, "SUPPORT"));
        assert!(!points_up(Signal::Reject, "RESISTANCE"));
    }

    #[test]
    fn flat_levels_at_one_price_share_a_line_and_a_label_and_uncalled_levels_are_not_drawn() {
        let ids = [
            ("ROUND_687", 687.0),
            ("STRIKE_687", 687.0),
            ("CALL_WALL", 687.0),
        ];
        let mut t = trace(3600, &[ids[0], ids[1], ids[2], ("ROUND_690", 690.0)]);
        t.levels[1].segments[0].drain(..100); // the strike appears later
        let calls = ids.map(|(id, p)| call(0, id, p, Outcome::Win));
        let svg = render_svg(&eval(Some(t), calls.into()), "t");
        assert_eq!(class(&svg, "level").len(), 1);
        assert!(
            svg.contains(">ROUND_687 · STRIKE_687 · CALL_WALL</text>"),
            "{svg}"
        );
        assert!(class(&svg, "level")[0].contains(kind_colour("CALL_WALL")));
        assert!(!svg.contains("ROUND_690"));
    }

    #[test]
    fn labels_closer_than_the_gap_are_nudged_apart_and_long_ones_wrap() {
        let ids = [
            "ROUND_687",
            "STRIKE_687",
            "CALL_WALL",
            "PUT_WALL",
            "GAMMA_FLIP",
        ];
        let mut levels: Vec<_> = ids.iter().map(|id| (*id, 687.0)).collect();
        levels.push(("VWAP", 687.01));
        let calls = levels
            .iter()
            .map(|&(id, p)| call(0, id, p, Outcome::Win))
            .collect();
        let svg = render_svg(&eval(Some(trace(3600, &levels)), calls), "t");
        let label = |l: &str| -> Option<(f64, String)> {
            let y = l.split("y=\"").nth(1)?.split('"').next()?.parse().ok()?;
            Some((
                y,
                l.rsplit_once("\">")?.1.strip_suffix("</text>")?.to_string(),
            ))
        };
        let labels: Vec<_> = class(&svg, "label").into_iter().filter_map(label).collect();
        // VWAP is 1¢ above: its label keeps its place, the shared line's two rows go below.
        let rows = [
            "VWAP",
            "ROUND_687 · STRIKE_687 · CALL_WALL",
            "· PUT_WALL · GAMMA_FLIP",
        ];
        assert_eq!(
            labels.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
            rows
        );
        assert!(
            labels
                .windows(2)
                .all(|w| w[1].0 - w[0].0 >= LABEL_GAP - 0.05),
            "{labels:?}"
        );
    }

    #[test]
    fn downsampling_keeps_at_most_two_points_per_pixel_column_and_the_spikes() {
        let mut t = trace(100_000, &[]);
        t.spot[50_000].1 = 700.0;
        let top = Frame::around(t.spot.iter().copied()).map(|f| (f.y(700.0) * 10.0).round() / 10.0);
        let svg = render_svg(&eval(Some(t), Vec::new()), "t");
        assert_well_formed(&svg);
        let path = class(&svg, "spot").concat();
        let n = path.matches(',').count();
        assert!(
            n > 500 && n <= 2 * (RIGHT - LEFT) as usize + 2,
            "{n} points"
        );
        let ys = path
            .split([' ', '"'])
            .filter_map(|p| p.split_once(',')?.1.parse::<f64>().ok());
        assert_eq!(ys.reduce(f64::min), top);
    }

    #[test]
    fn text_is_escaped() {
        let c = call(0, "A<&>\"'", 687.0, Outcome::Loss);
        let svg = render_svg(&eval(None, vec![c]), "<b> & \"q\" 'a'");
        assert!(svg.contains("&lt;b&gt; &amp; &quot;q&quot; &apos;a&apos;"));
        assert!(svg.contains("A&lt;&amp;&gt;&quot;&apos;"));
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn degenerate_inputs_render_without_nan_or_inf() {
        let one = Trace {
            spot: vec![(OPEN_MS, 687.0)],
            levels: Vec::new(),
        };
        let flat = Trace {
            spot: (0..100).map(|i| (OPEN_MS + i, 687.0)).collect(),
            ..one.clone()
        };
        let junk = vec![
            (OPEN_MS, f64::NAN),
            (OPEN_MS, f64::INFINITY),
            (0, 687.0),
            (1, 1e300),
        ];
        let nan_level = trace(1, &[("ROUND_687", f64::NAN)]).levels;
        let junk = Trace {
            spot: junk,
            levels: nan_level,
        };
        let mut odd = call(0, "ROUND_687", 687.0, Outcome::Win);
        (odd.mfe, odd.seconds_to_outcome) = (f64::NAN, Some(f64::INFINITY));
        for trace in [
            None,
            Some(Trace::default()),
            Some(one),
            Some(flat),
            Some(junk),
        ] {
            for calls in [Vec::new(), vec![odd.clone()]] {
                assert_well_formed(&render_svg(&eval(trace.clone(), calls), "t"));
            }
        }
        assert!(render_svg(&eval(None, Vec::new()), "t").contains("nothing to plot"));
        assert!(render_svg(&eval(None, vec![odd]), "t").contains("no trace recorded"));
    }

    #[test]
    fn the_same_evaluation_gives_the_same_bytes() {
        let c = call(9, "ROUND_687", 687.0, Outcome::Win);
        let e = eval(Some(trace(5000, &[("ROUND_687", 687.0)])), vec![c]);
        assert_eq!(render_svg(&e, "t"), render_svg(&e, "t"));
    }

    #[test]
    fn price_steps_are_round_and_never_need_a_third_decimal() {
        let cases = [
            (0.07, 0.1),
            (0.021, 0.05),
            (0.2, 0.2),
            (0.21, 0.25),
            (2.1, 2.5),
            (4.0, 5.0),
        ];
        for (raw, step) in cases {
            assert!(
                (nice_step(raw) - step).abs() < 1e-12,
                "{raw}: {}",
                nice_step(raw)
            );
        }
    }
}
