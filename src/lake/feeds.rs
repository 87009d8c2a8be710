//! Feed health ↔ typed columns, for the bronze table `feeds/status`.
//!
//! One row per `feed_status` event that `spm-ingest` published: when (`ts_ns`, wall clock),
//! which connection (`feed`), its `state`, and for a gap the missing event-time range and the
//! records lost. The partition value (`source`: `direct_feed`, `massive_ws`) lives in the
//! path, so a data engineer finds a day's gaps with one query:
//! `SELECT * FROM read_parquet('lake/bronze/feeds/status/**/*.parquet') WHERE state = 'gap'`.

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampNanosecondBuilder, UInt64Builder};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::bronze::Columns;
use super::table::{lake_seq_field, timestamp_ns};
use super::{LakeError, PartitionValues, Reject, Stored, TableRows};
use crate::event::{Event, FeedState, FeedStatus};

/// The schema of `feeds/status`.
pub fn schema() -> SchemaRef {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("ts_ns", timestamp_ns(), false),
        f("feed", DataType::Utf8, true),
        f("state", DataType::Utf8, false),
        f("gap_start_ns", timestamp_ns(), true),
        f("gap_end_ns", timestamp_ns(), true),
        f("reason", DataType::Utf8, false),
        f("records_lost", DataType::UInt64, true),
        lake_seq_field(),
    ]))
}

fn ts(ns: u64) -> Result<i64, Reject> {
    i64::try_from(ns).map_err(|_| Reject("timestamp beyond 2262"))
}

/// Rows of `feeds/status`.
pub struct StatusRows {
    len: usize,
    ts: TimestampNanosecondBuilder,
    feed: StringBuilder,
    state: StringBuilder,
    gap_start: TimestampNanosecondBuilder,
    gap_end: TimestampNanosecondBuilder,
    reason: StringBuilder,
    records_lost: UInt64Builder,
    lake_seq: UInt64Builder,
}

impl Default for StatusRows {
    fn default() -> Self {
        let utc = || TimestampNanosecondBuilder::new().with_timezone("UTC");
        StatusRows {
            len: 0,
            ts: utc(),
            feed: StringBuilder::new(),
            state: StringBuilder::new(),
            gap_start: utc(),
            gap_end: utc(),
            reason: StringBuilder::new(),
            records_lost: UInt64Builder::new(),
            lake_seq: UInt64Builder::new(),
        }
    }
}

impl TableRows for StatusRows {
    fn push(&mut self, event: &Event, lake_seq: u64) -> Result<(), Reject> {
        let Event::FeedStatus(s) = event else {
            return Err(Reject("event of another table"));
        };
        // Every value is checked before anything is appended: a row is whole or absent.
        let at = ts(s.ts_ns)?;
        let start = s.gap_start_ns.map(ts).transpose()?;
        let end = s.gap_end_ns.map(ts).transpose()?;
        self.ts.append_value(at);
        self.feed.append_option(s.feed.as_deref());
        self.state.append_value(s.state.as_str());
        self.gap_start.append_option(start);
        self.gap_end.append_option(end);
        self.reason.append_value(&s.reason);
        self.records_lost.append_option(s.records_lost);
        self.lake_seq.append_value(lake_seq);
        self.len += 1;
        Ok(())
    }

    fn len(&self) -> usize {
        self.len
    }

    fn take(&mut self) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.feed.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.gap_start.finish()),
            Arc::new(self.gap_end.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.records_lost.finish()),
            Arc::new(self.lake_seq.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(schema(), cols).expect("the builders follow the table's schema")
    }
}

fn state_of(text: &str) -> Option<FeedState> {
    [
        FeedState::Connected,
        FeedState::Disconnected,
        FeedState::Reconnecting,
        FeedState::Gap,
        FeedState::Error,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

/// Reads one batch of `feeds/status` back into events.
pub fn read(
    batch: &RecordBatch,
    partition: &PartitionValues,
    path: &str,
    out: &mut Vec<Stored>,
) -> Result<(), LakeError> {
    let c = Columns { batch, path };
    let at = c.ts("ts_ns")?;
    let feed = c.str("feed")?;
    let state = c.str("state")?;
    let gap_start = c.ts("gap_start_ns")?;
    let gap_end = c.ts("gap_end_ns")?;
    let reason = c.str("reason")?;
    let lost = c.u64("records_lost")?;
    let lake_seq = c.u64("lake_seq")?;
    let opt_ts = |a: &TimestampNanosecondArray, i: usize| -> Result<Option<u64>, LakeError> {
        if a.is_null(i) {
            return Ok(None);
        }
        u64::try_from(a.value(i))
            .map(Some)
            .map_err(|_| c.corrupt(i, "negative timestamp"))
    };
    let opt_str = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    for i in 0..batch.num_rows() {
        let st = state_of(state.value(i)).ok_or_else(|| c.corrupt(i, "unknown feed state"))?;
        let event = Event::FeedStatus(FeedStatus {
            ts_ns: u64::try_from(at.value(i)).map_err(|_| c.corrupt(i, "negative timestamp"))?,
            source: partition.key.clone(),
            feed: opt_str(feed, i),
            state: st,
            gap_start_ns: opt_ts(gap_start, i)?,
            gap_end_ns: opt_ts(gap_end, i)?,
            reason: reason.value(i).to_string(),
            records_lost: (!lost.is_null(i)).then(|| lost.value(i)),
        });
        out.push(Stored {
            event,
            lake_seq: lake_seq.value(i),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: FeedState, gap: bool) -> Event {
        Event::FeedStatus(FeedStatus {
            ts_ns: 1_763_737_200_000_000_000,
            source: "direct_feed".into(),
            feed: Some("GLBX.MDP3".into()),
            state,
            gap_start_ns: gap.then_some(1_763_737_100_000_000_000),
            gap_end_ns: gap.then_some(1_763_737_150_000_000_000),
            reason: "connection reset by peer".into(),
            records_lost: gap.then_some(0),
        })
    }

    #[test]
    fn feed_status_rows_read_back_to_the_same_json() {
        let events = [
            status(FeedState::Connected, false),
            status(FeedState::Gap, true),
            status(FeedState::Error, false),
        ];
        let mut rows = StatusRows::default();
        for (i, e) in events.iter().enumerate() {
            rows.push(e, i as u64 + 1).unwrap();
        }
        assert_eq!(rows.len(), 3);
        let batch = rows.take();
        assert_eq!(rows.len(), 0);
        let partition = PartitionValues {
            key: "direct_feed".into(),
        };
        let mut out = Vec::new();
        read(&batch, &partition, "x.parquet", &mut out).unwrap();
        let back: Vec<String> = out.iter().map(|s| s.event.to_json()).collect();
        let want: Vec<String> = events.iter().map(|e| e.to_json()).collect();
        assert_eq!(back, want);
        assert_eq!(
            out.iter().map(|s| s.lake_seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn a_market_event_is_refused_and_nothing_is_appended() {
        let mut rows = StatusRows::default();
        let e = Event::StockQuote(crate::event::StockQuote {
            ts_event_ns: 1,
            ts_recv_ns: 1,
            source: "x".into(),
            symbol: "SPY".into(),
            bid_px: 1.0,
            ask_px: 1.0,
            bid_sz: 1,
            ask_sz: 1,
            seq: None,
        });
        assert!(rows.push(&e, 1).is_err());
        assert_eq!(rows.len(), 0);
    }
}
