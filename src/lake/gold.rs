//! Level signals ↔ typed columns: one row per level per snap.
//!
//! The nested payload (`barrier`, `tape.sweep`, `fuel`, `runway.next_obstacle`) is flattened
//! into prefixed columns, so a reader filters on `barrier_state` or `tape_imbalance` directly.
//! `level_index` keeps the levels' order inside a snap; a snap without active levels is one row
//! whose level columns are `null`, so that no snap is lost. Rows of one snap share `snap_ts`
//! and `lake_seq`, which is how [`read`] puts the snap back together.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::bronze::{Columns, opt};
use super::table::{lake_seq_field, timestamp_ns};
use super::{LakeError, Reject, Stored, TableRows};
use crate::event::{
    BarrierPayload, DefendingQuote, Event, FuelPayload, LevelRef, LevelSignal, LevelSignals,
    RunwayPayload, SpyQuote, SweepPayload, TapePayload,
};

/// Kinds of the flattened columns, in schema order.
#[derive(Clone, Copy)]
enum Kind {
    F64,
    Str,
    U32,
    Bool,
}

/// The flattened level columns after `snap_ts, spot, bid, ask, level_index`.
const LEVEL_COLUMNS: &[(&str, Kind)] = &[
    ("level_id", Kind::Str),
    ("level_kind", Kind::Str),
    ("level_price", Kind::F64),
    ("direction", Kind::Str),
    ("distance", Kind::F64),
    ("break_score_raw", Kind::F64),
    ("break_score_smooth", Kind::F64),
    ("signal", Kind::Str),
    ("confidence", Kind::Str),
    ("barrier_state", Kind::Str),
    ("barrier_delta_liq", Kind::F64),
    ("barrier_delta_liq_smooth", Kind::F64),
    ("barrier_replenishment_ratio", Kind::F64),
    ("barrier_replenishment_ratio_smooth", Kind::F64),
    ("barrier_added", Kind::F64),
    ("barrier_canceled", Kind::F64),
    ("barrier_filled", Kind::F64),
    ("barrier_defending_price", Kind::F64),
    ("barrier_defending_size", Kind::U32),
    ("barrier_churn", Kind::F64),
    ("barrier_depth_in_zone", Kind::F64),
    ("tape_imbalance", Kind::F64),
    ("tape_buy_vol", Kind::F64),
    ("tape_sell_vol", Kind::F64),
    ("tape_velocity", Kind::F64),
    ("tape_velocity_smooth", Kind::F64),
    ("sweep_detected", Kind::Bool),
    ("sweep_direction", Kind::Str),
    ("sweep_notional", Kind::F64),
    ("sweep_num_prints", Kind::U32),
    ("sweep_window_ms", Kind::F64),
    ("fuel_effect", Kind::Str),
    ("fuel_net_dealer_gamma", Kind::F64),
    ("fuel_net_dealer_gamma_smooth", Kind::F64),
    ("fuel_call_wall", Kind::F64),
    ("fuel_put_wall", Kind::F64),
    ("fuel_hvl", Kind::F64),
    ("runway_direction", Kind::Str),
    ("runway_distance", Kind::F64),
    ("runway_next_obstacle_id", Kind::Str),
    ("runway_next_obstacle_price", Kind::F64),
    ("runway_quality", Kind::Str),
    ("note", Kind::Str),
];

/// The schema of `levels/signals`.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = vec![
                Field::new("snap_ts", timestamp_ns(), false),
                Field::new("spot", DataType::Float64, true),
                Field::new("bid", DataType::Float64, true),
                Field::new("ask", DataType::Float64, true),
                Field::new("level_index", DataType::UInt32, true),
            ];
            for &(name, kind) in LEVEL_COLUMNS {
                let t = match kind {
                    Kind::F64 => DataType::Float64,
                    Kind::Str => DataType::Utf8,
                    Kind::U32 => DataType::UInt32,
                    Kind::Bool => DataType::Boolean,
                };
                fields.push(Field::new(name, t, true));
            }
            fields.push(lake_seq_field());
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// One builder per flattened column.
enum Builder {
    F64(Float64Builder),
    Str(StringBuilder),
    U32(UInt32Builder),
    Bool(BooleanBuilder),
}

/// A level's values in [`LEVEL_COLUMNS`] order.
enum Value<'a> {
    F64(Option<f64>),
    Str(Option<&'a str>),
    U32(u32),
    Bool(bool),
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn level_values(l: &LevelSignal) -> [Value<'_>; 43] {
    use Value::*;
    let f = |v: f64| F64(finite(v));
    let of = |v: Option<f64>| F64(v.and_then(finite));
    fn s(v: &str) -> Value<'_> {
        Value::Str(Some(v))
    }
    let (b, t, w, fu, r) = (&l.barrier, &l.tape, &l.tape.sweep, &l.fuel, &l.runway);
    [
        s(&l.id),
        s(&l.kind),
        f(l.price),
        s(&l.direction),
        f(l.distance),
        f(l.break_score_raw),
        f(l.break_score_smooth),
        s(&l.signal),
        s(&l.confidence),
        s(&b.state),
        f(b.delta_liq),
        f(b.delta_liq_smooth),
        f(b.replenishment_ratio),
        f(b.replenishment_ratio_smooth),
        f(b.added),
        f(b.canceled),
        f(b.filled),
        of(b.defending_quote.price),
        U32(b.defending_quote.size),
        f(b.churn),
        f(b.depth_in_zone),
        f(t.imbalance),
        f(t.buy_vol),
        f(t.sell_vol),
        f(t.velocity),
        f(t.velocity_smooth),
        Bool(w.detected),
        Str(w.direction.as_deref()),
        f(w.notional),
        U32(w.num_prints),
        f(w.window_ms),
        s(&fu.effect),
        f(fu.net_dealer_gamma),
        f(fu.net_dealer_gamma_smooth),
        of(fu.call_wall),
        of(fu.put_wall),
        of(fu.hvl),
        s(&r.direction),
        of(r.distance),
        Str(r.next_obstacle.as_ref().map(|o| o.id.as_str())),
        of(r.next_obstacle.as_ref().map(|o| o.price)),
        s(&r.quality),
        s(&l.note),
    ]
}

/// Rows of `levels/signals` being gathered.
pub struct SignalRows {
    len: usize,
    snap_ts: TimestampNanosecondBuilder,
    spot: Float64Builder,
    bid: Float64Builder,
    ask: Float64Builder,
    level_index: UInt32Builder,
    levels: Vec<Builder>,
    lake_seq: UInt64Builder,
}

impl Default for SignalRows {
    fn default() -> Self {
        SignalRows {
            len: 0,
            snap_ts: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            spot: Float64Builder::new(),
            bid: Float64Builder::new(),
            ask: Float64Builder::new(),
            level_index: UInt32Builder::new(),
            levels: LEVEL_COLUMNS
                .iter()
                .map(|&(_, k)| match k {
                    Kind::F64 => Builder::F64(Float64Builder::new()),
                    Kind::Str => Builder::Str(StringBuilder::new()),
                    Kind::U32 => Builder::U32(UInt32Builder::new()),
                    Kind::Bool => Builder::Bool(BooleanBuilder::new()),
                })
                .collect(),
            lake_seq: UInt64Builder::new(),
        }
    }
}

impl SignalRows {
    fn snap_columns(&mut self, ts_ns: i64, spy: &SpyQuote, index: Option<u32>, lake_seq: u64) {
        self.snap_ts.append_value(ts_ns);
        self.spot.append_option(spy.spot.and_then(finite));
        self.bid.append_option(spy.bid.and_then(finite));
        self.ask.append_option(spy.ask.and_then(finite));
        self.level_index.append_option(index);
        self.lake_seq.append_value(lake_seq);
        self.len += 1;
    }
}

impl TableRows for SignalRows {
    fn push(&mut self, event: &Event, lake_seq: u64) -> Result<(), Reject> {
        let Event::LevelSignals(s) = event else {
            return Err(Reject("event of another table"));
        };
        let ts_ns =
            s.ts.checked_mul(1_000_000)
                .filter(|&t| t >= 0)
                .ok_or(Reject("snap time outside 1970..2262"))?;
        let n = u32::try_from(s.levels.len()).map_err(|_| Reject("too many levels in a snap"))?;
        if n == 0 {
            self.snap_columns(ts_ns, &s.spy, None, lake_seq);
            for b in &mut self.levels {
                match b {
                    Builder::F64(b) => b.append_null(),
                    Builder::Str(b) => b.append_null(),
                    Builder::U32(b) => b.append_null(),
                    Builder::Bool(b) => b.append_null(),
                }
            }
            return Ok(());
        }
        for (i, level) in (0..n).zip(&s.levels) {
            self.snap_columns(ts_ns, &s.spy, Some(i), lake_seq);
            for (b, v) in self.levels.iter_mut().zip(level_values(level)) {
                match (b, v) {
                    (Builder::F64(b), Value::F64(v)) => b.append_option(v),
                    (Builder::Str(b), Value::Str(v)) => b.append_option(v),
                    (Builder::U32(b), Value::U32(v)) => b.append_value(v),
                    (Builder::Bool(b), Value::Bool(v)) => b.append_value(v),
                    _ => unreachable!("LEVEL_COLUMNS and level_values agree"),
                }
            }
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.len
    }

    fn take(&mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.snap_ts.finish()),
            Arc::new(self.spot.finish()),
            Arc::new(self.bid.finish()),
            Arc::new(self.ask.finish()),
            Arc::new(self.level_index.finish()),
        ];
        for b in &mut self.levels {
            cols.push(match b {
                Builder::F64(b) => Arc::new(b.finish()),
                Builder::Str(b) => Arc::new(b.finish()),
                Builder::U32(b) => Arc::new(b.finish()),
                Builder::Bool(b) => Arc::new(b.finish()),
            });
        }
        cols.push(Arc::new(self.lake_seq.finish()));
        self.len = 0;
        RecordBatch::try_new(schema(), cols).expect("the builders follow the schema")
    }
}

/// Reads `levels/signals` rows back into snaps: consecutive rows with the same `lake_seq` and
/// `snap_ts` are one snap, in `level_index` order.
pub fn read(batch: &RecordBatch, path: &str, out: &mut Vec<Stored>) -> Result<(), LakeError> {
    let c = Columns { batch, path };
    let snap_ts = c.ts("snap_ts")?;
    let (spot, bid, ask) = (c.f64("spot")?, c.f64("bid")?, c.f64("ask")?);
    let index = c.u32("level_index")?;
    let lake_seq = c.u64("lake_seq")?;
    let f = |name: &str| c.f64(name);
    let s = |name: &str| c.str(name);
    let u = |name: &str| c.u32(name);
    let (id, kind, price, direction, distance) = (
        s("level_id")?,
        s("level_kind")?,
        f("level_price")?,
        s("direction")?,
        f("distance")?,
    );
    let (raw, smooth, signal, confidence) = (
        f("break_score_raw")?,
        f("break_score_smooth")?,
        s("signal")?,
        s("confidence")?,
    );
    let b = (
        s("barrier_state")?,
        [
            f("barrier_delta_liq")?,
            f("barrier_delta_liq_smooth")?,
            f("barrier_replenishment_ratio")?,
            f("barrier_replenishment_ratio_smooth")?,
            f("barrier_added")?,
            f("barrier_canceled")?,
            f("barrier_filled")?,
            f("barrier_defending_price")?,
            f("barrier_churn")?,
            f("barrier_depth_in_zone")?,
        ],
        u("barrier_defending_size")?,
    );
    let t = [
        f("tape_imbalance")?,
        f("tape_buy_vol")?,
        f("tape_sell_vol")?,
        f("tape_velocity")?,
        f("tape_velocity_smooth")?,
        f("sweep_notional")?,
        f("sweep_window_ms")?,
    ];
    let sweep_detected = c.get::<BooleanArray>("sweep_detected")?;
    let (sweep_direction, sweep_prints) = (s("sweep_direction")?, u("sweep_num_prints")?);
    let fuel_effect = s("fuel_effect")?;
    let fu = [
        f("fuel_net_dealer_gamma")?,
        f("fuel_net_dealer_gamma_smooth")?,
        f("fuel_call_wall")?,
        f("fuel_put_wall")?,
        f("fuel_hvl")?,
    ];
    let (runway_direction, runway_distance) = (s("runway_direction")?, f("runway_distance")?);
    let (obstacle_id, obstacle_price) = (
        s("runway_next_obstacle_id")?,
        f("runway_next_obstacle_price")?,
    );
    let (runway_quality, note) = (s("runway_quality")?, s("note")?);

    let nan = f64::NAN;
    let val = |a: &arrow_array::Float64Array, i: usize| opt(a, i, || a.value(i));
    let num = |a: &arrow_array::Float64Array, i: usize| val(a, i).unwrap_or(nan);
    let text = |a: &arrow_array::StringArray, i: usize| -> Result<String, LakeError> {
        if a.is_null(i) {
            Err(c.corrupt(i, "a level's text column is null"))
        } else {
            Ok(a.value(i).to_string())
        }
    };
    let n = batch.num_rows();
    for i in 0..n {
        let ts_ns = snap_ts.value(i);
        let seq = lake_seq.value(i);
        let idx = (!index.is_null(i)).then(|| index.value(i) as usize);
        // A snap's rows may continue from the previous batch of the file (see `LakeSource`).
        let continues = match (out.last(), idx) {
            (
                Some(Stored {
                    event: Event::LevelSignals(s),
                    lake_seq,
                }),
                Some(k),
            ) => k > 0 && *lake_seq == seq && s.ts * 1_000_000 == ts_ns && s.levels.len() == k,
            _ => false,
        };
        if !continues {
            if idx.is_some_and(|k| k > 0) {
                return Err(c.corrupt(i, "levels of a snap out of order"));
            }
            out.push(Stored {
                event: Event::LevelSignals(LevelSignals {
                    ts: ts_ns / 1_000_000,
                    spy: SpyQuote {
                        spot: val(spot, i),
                        bid: val(bid, i),
                        ask: val(ask, i),
                    },
                    levels: Vec::new(),
                }),
                lake_seq: seq,
            });
        }
        if idx.is_none() {
            continue;
        }
        let Some(Stored {
            event: Event::LevelSignals(snap),
            ..
        }) = out.last_mut()
        else {
            unreachable!("a snap was pushed or continued above")
        };
        let obstacle = (!obstacle_id.is_null(i)).then(|| LevelRef {
            id: obstacle_id.value(i).to_string(),
            price: num(obstacle_price, i),
        });
        snap.levels.push(LevelSignal {
            id: text(id, i)?,
            price: num(price, i),
            kind: text(kind, i)?,
            direction: text(direction, i)?,
            distance: num(distance, i),
            break_score_raw: num(raw, i),
            break_score_smooth: num(smooth, i),
            signal: text(signal, i)?,
            confidence: text(confidence, i)?,
            barrier: BarrierPayload {
                state: text(b.0, i)?,
                delta_liq: num(b.1[0], i),
                delta_liq_smooth: num(b.1[1], i),
                replenishment_ratio: num(b.1[2], i),
                replenishment_ratio_smooth: num(b.1[3], i),
                added: num(b.1[4], i),
                canceled: num(b.1[5], i),
                filled: num(b.1[6], i),
                defending_quote: DefendingQuote {
                    price: val(b.1[7], i),
                    size: b.2.value(i),
                },
                churn: num(b.1[8], i),
                depth_in_zone: num(b.1[9], i),
            },
            tape: TapePayload {
                imbalance: num(t[0], i),
                buy_vol: num(t[1], i),
                sell_vol: num(t[2], i),
                velocity: num(t[3], i),
                velocity_smooth: num(t[4], i),
                sweep: SweepPayload {
                    detected: sweep_detected.value(i),
                    direction: (!sweep_direction.is_null(i))
                        .then(|| sweep_direction.value(i).to_string()),
                    notional: num(t[5], i),
                    num_prints: sweep_prints.value(i),
                    window_ms: num(t[6], i),
                },
            },
            fuel: FuelPayload {
                effect: text(fuel_effect, i)?,
                net_dealer_gamma: num(fu[0], i),
                net_dealer_gamma_smooth: num(fu[1], i),
                call_wall: val(fu[2], i),
                put_wall: val(fu[3], i),
                hvl: val(fu[4], i),
            },
            runway: RunwayPayload {
                direction: text(runway_direction, i)?,
                distance: val(runway_distance, i),
                next_obstacle: obstacle,
                quality: text(runway_quality, i)?,
            },
            note: text(note, i)?,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(id: &str, obstacle: bool) -> LevelSignal {
        LevelSignal {
            id: id.into(),
            price: 600.0,
            kind: "STRIKE".into(),
            direction: "UP".into(),
            distance: 0.12,
            break_score_raw: 61.5,
            break_score_smooth: 58.25,
            signal: "BREAK".into(),
            confidence: "HIGH".into(),
            barrier: BarrierPayload {
                state: "VACUUM".into(),
                delta_liq: -1234.5,
                defending_quote: DefendingQuote {
                    price: obstacle.then_some(600.01),
                    size: 300,
                },
                ..Default::default()
            },
            tape: TapePayload {
                imbalance: 0.4,
                sweep: SweepPayload {
                    detected: obstacle,
                    direction: obstacle.then(|| "UP".into()),
                    notional: 1e6,
                    num_prints: 12,
                    window_ms: 250.0,
                },
                ..Default::default()
            },
            fuel: FuelPayload {
                effect: "AMPLIFY".into(),
                call_wall: Some(605.0),
                hvl: None,
                ..Default::default()
            },
            runway: RunwayPayload {
                direction: "UP".into(),
                distance: obstacle.then_some(1.5),
                next_obstacle: obstacle.then(|| LevelRef {
                    id: "CALL_WALL".into(),
                    price: 605.0,
                }),
                quality: "CLEAR".into(),
            },
            note: "".into(),
        }
    }

    #[test]
    fn snaps_read_back_to_the_same_json_including_a_snap_without_levels() {
        let snaps = [
            LevelSignals {
                ts: 1_764_772_200_000,
                spy: SpyQuote {
                    spot: Some(600.02),
                    bid: Some(600.01),
                    ask: Some(600.03),
                },
                levels: vec![level("STRIKE_600", true), level("VWAP", false)],
            },
            LevelSignals {
                ts: 1_764_772_200_250,
                spy: SpyQuote::default(),
                levels: vec![],
            },
            LevelSignals {
                ts: 1_764_772_200_500,
                spy: SpyQuote {
                    spot: Some(600.0),
                    bid: None,
                    ask: None,
                },
                levels: vec![level("PM_HIGH", false)],
            },
        ];
        let mut rows = SignalRows::default();
        for (i, s) in snaps.iter().enumerate() {
            rows.push(&Event::LevelSignals(s.clone()), 10 + i as u64)
                .unwrap();
        }
        assert_eq!(rows.len(), 4, "one row per level, one for the empty snap");
        let batch = rows.take();
        let mut out = Vec::new();
        read(&batch, "mem", &mut out).unwrap();
        let back: Vec<String> = out.iter().map(|s| s.event.to_json()).collect();
        let want: Vec<String> = snaps
            .iter()
            .map(|s| Event::LevelSignals(s.clone()).to_json())
            .collect();
        assert_eq!(back, want);
        assert_eq!(out[2].lake_seq, 12);
    }
}
