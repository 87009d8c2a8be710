//! Sweep mode: the engine re-run in-process over the same events for each value of one physics
//! constant (or each pair of a grid of two), every run scored like the pipe.
//!
//! The events are read once; each batch goes to every engine, the engines spread over the
//! machine's cores. Engine time is event time and every run sees the same events in the same
//! order, so two sweeps give the same table.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc;

use super::report::{self, Report, csv_text};
use super::{EvalSettings, Evaluation, Evaluator, Signal};
use crate::core::{Config, Engine};
use crate::event::Event;
use crate::io::{EventSource, SourceError};

/// Errors of a sweep specification.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SweepError {
    #[error("--sweep {0}: expected KEY=V1,V2,...")]
    Syntax(String),
    #[error("--sweep: `{key}` is not a physics constant; constants: {known}")]
    UnknownKey { key: String, known: String },
    #[error("--sweep {key}: `{value}` is not {expected}")]
    Value {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("--sweep {key}={value}: {message}")]
    Invalid {
        key: String,
        value: String,
        message: String,
    },
    #[error("--sweep: at most two constants (a grid of two), got {0}")]
    TooMany(usize),
    #[error("--sweep: `{0}` is swept twice")]
    Twice(String),
}

/// One swept constant and its values, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl std::str::FromStr for Axis {
    type Err = SweepError;
    fn from_str(spec: &str) -> Result<Axis, SweepError> {
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| SweepError::Syntax(spec.to_string()))?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if key.trim().is_empty() || values.is_empty() {
            return Err(SweepError::Syntax(spec.to_string()));
        }
        Ok(Axis {
            key: key.trim().to_string(),
            values,
        })
    }
}

/// One run of the sweep: the values it sets and the configuration they give.
#[derive(Debug, Clone)]
pub struct Point {
    pub values: Vec<(String, String)>,
    pub config: Config,
}

fn set(base: &Config, key: &str, value: &str) -> Result<Config, SweepError> {
    let mut table = toml::Table::try_from(base).map_err(|e| SweepError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        message: e.to_string(),
    })?;
    let bad = |expected| SweepError::Value {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    };
    let new = match table.get(key) {
        Some(toml::Value::Integer(_)) => {
            toml::Value::Integer(value.parse().map_err(|_| bad("a whole number"))?)
        }
        Some(toml::Value::Float(_)) => {
            let v: f64 = value.parse().map_err(|_| bad("a number"))?;
            if !v.is_finite() {
                return Err(bad("a finite number"));
            }
            toml::Value::Float(v)
        }
        Some(toml::Value::String(_)) => toml::Value::String(value.to_string()),
        _ => {
            let known: Vec<&str> = table
                .iter()
                .filter(|(_, v)| v.is_integer() || v.is_float() || v.is_str())
                .map(|(k, _)| k.as_str())
                .collect();
            return Err(SweepError::UnknownKey {
                key: key.to_string(),
                known: known.join(", "),
            });
        }
    };
    table.insert(key.to_string(), new);
    let config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| SweepError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            message: e.message().to_string(),
        })?;
    config.validate().map_err(|e| SweepError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        message: e.to_string(),
    })?;
    Ok(config)
}

/// Every combination of the axes' values over `base`, the first axis outermost.
pub fn grid(base: &Config, axes: &[Axis]) -> Result<Vec<Point>, SweepError> {
    if axes.len() > 2 {
        return Err(SweepError::TooMany(axes.len()));
    }
    if let [a, b] = axes
        && a.key == b.key
    {
        return Err(SweepError::Twice(a.key.clone()));
    }
    let mut points = vec![Point {
        values: Vec::new(),
        config: base.clone(),
    }];
    for axis in axes {
        let mut next = Vec::with_capacity(points.len() * axis.values.len());
        for p in &points {
            for v in &axis.values {
                let mut values = p.values.clone();
                values.push((axis.key.clone(), v.clone()));
                next.push(Point {
                    values,
                    config: set(&p.config, &axis.key, v)?,
                });
            }
        }
        points = next;
    }
    Ok(points)
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct SweepResult {
    pub values: Vec<(String, String)>,
    pub report: Report,
}

/// Events handed to the workers at a time.
const BATCH: usize = 2048;

/// One engine and its scorer.
struct Run {
    engine: Engine,
    evaluator: Evaluator,
}

impl Run {
    fn new(point: &Point, settings: EvalSettings) -> Run {
        let settings = EvalSettings {
            touch_band: point.config.touch_band,
            ..settings
        };
        Run {
            engine: Engine::new(point.config.clone()),
            evaluator: Evaluator::new(settings, false),
        }
    }

    fn apply(&mut self, events: &[Event]) {
        for event in events {
            if let Some(snap) = self.engine.apply(event) {
                self.evaluator.observe_signals(&snap);
            }
        }
    }
}

/// Runs every point over the events of `source` and scores each run. A bad input item is
/// logged and skipped (as `spm-core` does) unless `strict`.
pub fn run(
    points: &[Point],
    settings: EvalSettings,
    source: &mut dyn EventSource,
    strict: bool,
) -> Result<Vec<SweepResult>, SourceError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(points.len())
        .max(1);
    let mut groups: Vec<Vec<(usize, Run)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, p) in points.iter().enumerate() {
        groups[i % threads].push((i, Run::new(p, settings)));
    }
    let mut evaluations: Vec<Option<Evaluation>> = vec![None; points.len()];
    std::thread::scope(|scope| -> Result<(), SourceError> {
        let mut senders = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for mut group in groups {
            let (tx, rx) = mpsc::sync_channel::<Arc<Vec<Event>>>(4);
            senders.push(tx);
            handles.push(scope.spawn(move || {
                for batch in rx {
                    for (_, run) in &mut group {
                        run.apply(&batch);
                    }
                }
                group
                    .into_iter()
                    .map(|(i, run)| (i, run.evaluator.finish()))
                    .collect::<Vec<_>>()
            }));
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut result = Ok(());
        loop {
            match source.next_event() {
                Ok(Some(event)) => {
                    batch.push(event);
                    if batch.len() == BATCH {
                        let full =
                            Arc::new(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                        if senders.iter().any(|tx| tx.send(full.clone()).is_err()) {
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_recoverable() && !strict => {
                    tracing::warn!("skipping bad input: {e}");
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let last = Arc::new(batch);
            for tx in &senders {
                let _ = tx.send(last.clone());
            }
        }
        drop(senders);
        for handle in handles {
            // A panicking worker is a bug: pass the panic on.
            let done = handle
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            for (i, evaluation) in done {
                evaluations[i] = Some(evaluation);
            }
        }
        result
    })?;
    Ok(points
        .iter()
        .zip(evaluations)
        .filter_map(|(p, e)| {
            e.map(|e| SweepResult {
                values: p.values.clone(),
                report: report::build(&e),
            })
        })
        .collect())
}

/// The `ALL` row of a signal in a report.
fn all_row(report: &Report, signal: Signal) -> Option<&report::Row> {
    report
        .rows
        .iter()
        .find(|r| r.signal == signal && r.level_kind == "ALL")
}

/// Flat figures of one run: per signal calls, wins, losses, open, win rate, base, edge.
fn figures(result: &SweepResult) -> Vec<String> {
    let mut cells: Vec<String> = result.values.iter().map(|(_, v)| v.clone()).collect();
    for signal in Signal::ALL {
        let row = all_row(&result.report, signal);
        let n = |f: fn(&report::Row) -> u64| row.map_or(0, f).to_string();
        let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
        cells.push(n(|r| r.calls));
        cells.push(n(|r| r.wins));
        cells.push(n(|r| r.losses));
        cells.push(pct(row.and_then(|r| r.win_rate)));
        cells.push(pct(row.and_then(|r| r.base_rate)));
        cells.push(
            row.and_then(|r| r.edge)
                .map_or("—".to_string(), |e| format!("{e:+.1} pt")),
        );
    }
    cells
}

const FIGURE_NAMES: [&str; 6] = ["calls", "wins", "losses", "win_rate", "base_rate", "edge"];

/// The sweep as an aligned table: one line per run.
pub fn write_table(results: &[SweepResult], out: &mut dyn Write) -> io::Result<()> {
    let Some(first) = results.first() else {
        return writeln!(out, "no runs");
    };
    writeln!(out, "{}", report::headline(&first.report))?;
    writeln!(out)?;
    let mut header: Vec<String> = first.values.iter().map(|(k, _)| k.clone()).collect();
    for signal in Signal::ALL {
        for name in ["calls", "win", "loss", "win rate", "base", "edge"] {
            header.push(format!("{} {name}", signal.as_str()));
        }
    }
    let mut lines = vec![header];
    lines.extend(results.iter().map(figures));
    let widths = report::column_widths(&lines);
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        writeln!(out, "{}", cells.join("  "))?;
    }
    Ok(())
}

/// The sweep as CSV: one row per run.
pub fn write_csv(results: &[SweepResult], out: &mut dyn Write) -> io::Result<()> {
    let Some(first) = results.first() else {
        return Ok(());
    };
    let mut header: Vec<String> = first.values.iter().map(|(k, _)| csv_text(k)).collect();
    for signal in Signal::ALL {
        for name in FIGURE_NAMES {
            header.push(format!("{}_{name}", signal.as_str().to_lowercase()));
        }
    }
    writeln!(out, "{}", header.join(","))?;
    for result in results {
        let mut cells: Vec<String> = result.values.iter().map(|(_, v)| csv_text(v)).collect();
        for signal in Signal::ALL {
            let row = all_row(&result.report, signal);
            let opt = |v: Option<f64>| {
                v.map_or(String::new(), |v| format!("{}", (v * 1e6).round() / 1e6))
            };
            cells.push(row.map_or(0, |r| r.calls).to_string());
            cells.push(row.map_or(0, |r| r.wins).to_string());
            cells.push(row.map_or(0, |r| r.losses).to_string());
            cells.push(opt(row.and_then(|r| r.win_rate)));
            cells.push(opt(row.and_then(|r| r.base_rate)));
            cells.push(opt(row.and_then(|r| r.edge)));
        }
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

/// The sweep as JSON: the values of each run and its full report.
pub fn write_json(results: &[SweepResult], out: &mut dyn Write) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        values: serde_json::Map<String, serde_json::Value>,
        report: &'a Report,
    }
    let entries: Vec<Entry> = results
        .iter()
        .map(|r| Entry {
            values: r
                .values
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
            report: &r.report,
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &entries).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_spec_is_a_key_and_its_values() {
        let a: Axis = "break_score_threshold=70, 80,90".parse().unwrap();
        assert_eq!(a.key, "break_score_threshold");
        assert_eq!(a.values, ["70", "80", "90"]);
        assert!(matches!(
            "nothing".parse::<Axis>(),
            Err(SweepError::Syntax(_))
        ));
        assert!(matches!("k=".parse::<Axis>(), Err(SweepError::Syntax(_))));
    }

    #[test]
    fn a_grid_of_two_sets_every_combination_with_the_right_types() {
        let axes = [
            "break_score_threshold=70,80".parse().unwrap(),
            "trigger_hold_time_ms=1000,3000,5000".parse().unwrap(),
        ];
        let points = grid(&Config::default(), &axes).unwrap();
        assert_eq!(points.len(), 6);
        assert_eq!(points[1].config.break_score_threshold, 70.0);
        assert_eq!(points[1].config.trigger_hold_time_ms, 3000);
        assert_eq!(points[5].config.break_score_threshold, 80.0);
        assert_eq!(
            points[5].values,
            [
                ("break_score_threshold".to_string(), "80".to_string()),
                ("trigger_hold_time_ms".to_string(), "5000".to_string())
            ]
        );
        // Everything else keeps the base value.
        assert_eq!(points[0].config.touch_band, Config::default().touch_band);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = grid(&Config::default(), &["brake_score=1".parse().unwrap()]).unwrap_err();
        match e {
            SweepError::UnknownKey { key, known } => {
                assert_eq!(key, "brake_score");
                assert!(known.contains("break_score_threshold"), "{known}");
            }
            other => panic!("{other:?}"),
        }
        let e = grid(
            &Config::default(),
            &["trigger_hold_time_ms=1.5".parse().unwrap()],
        )
        .unwrap_err();
        assert!(matches!(e, SweepError::Value { .. }), "{e:?}");
        let e = grid(&Config::default(), &["snap_interval_ms=0".parse().unwrap()]).unwrap_err();
        assert!(
            e.to_string().contains("snap_interval_ms must be > 0"),
            "{e}"
        );
        let e = grid(&Config::default(), &["fuel_expiry=weekly".parse().unwrap()]).unwrap_err();
        assert!(matches!(e, SweepError::Invalid { .. }), "{e:?}");
        let three: Vec<Axis> = ["a=1", "b=2", "c=3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            grid(&Config::default(), &three).unwrap_err(),
            SweepError::TooMany(3)
        );
    }
}
