//! Batching events into Parquet objects: one batch per (table, partition), flushed at a row
//! count or an age, named after the data it holds.
//!
//! An object is `part-{input}-{first}-{last}.parquet`: `input` names what the lake read (a
//! JetStream stream, or a piped input's identity) and `first`..`last` is the range of lake
//! positions (stream sequences, or event indexes of the input) the batch spans. A batch holds
//! *every* event of its partition between `first` and `last`, so on start the writer knows,
//! from the names alone, which positions each partition already holds: a redelivered or
//! re-piped event that one of them covers is skipped, and nothing is stored twice or lost,
//! whatever the wall-clock flushes did before a crash.
//!
//! Memory stays bounded: rows are gathered in typed column builders, encoded into the batch's
//! Parquet writer every [`CHUNK_ROWS`] rows (sorted by event time), and an open batch is
//! flushed as soon as its partition's next hour begins.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arrow_array::{Array, RecordBatch, TimestampNanosecondArray, UInt64Array};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::table::{encode_value, partition_value};
use super::{Lake, LakeError, Reject, Table, TableRows};
use crate::event::Event;

/// Rows gathered in column builders before they are encoded.
pub const CHUNK_ROWS: usize = 65_536;

pub(crate) const NS_PER_HOUR: u64 = 3_600_000_000_000;

/// The one object of a silver partition-hour (`spm-lake compact` replaces it whole).
pub const SILVER_OBJECT: &str = "part-compacted.parquet";

/// How batches are cut and encoded.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Flush a batch when it holds this many rows.
    pub flush_rows: usize,
    /// Flush a batch when it has been open this long (wall time).
    pub flush_after: Duration,
    pub zstd_level: i32,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            flush_rows: 500_000,
            flush_after: Duration::from_secs(60),
            zstd_level: 3,
            row_group_rows: 262_144,
        }
    }
}

/// What became of one pushed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Gathered into a batch.
    Buffered,
    /// An object already stored holds it (a redelivery or a re-run): skipped.
    AlreadyStored,
    /// The schema cannot hold it: skipped.
    Rejected(Reject),
}

/// Counters of a writer.
#[derive(Debug, Clone, Default)]
pub struct WriterStats {
    pub rows: BTreeMap<Table, u64>,
    pub already_stored: u64,
    pub rejected: BTreeMap<Reject, u64>,
    pub objects: u64,
    pub bytes: u64,
}

/// A partition: table, partition value and hour (since the epoch, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub table: Table,
    pub value: String,
    pub hour: u64,
}

impl Partition {
    /// The partition's directory under the root.
    pub fn dir(&self) -> String {
        self.dir_in(self.table.layer())
    }

    /// The partition's directory in another layer (silver for a bronze table).
    pub fn dir_in(&self, layer: super::Layer) -> String {
        let secs = (self.hour * 3600) as i64;
        let when = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
        format!(
            "{}/{}/{}={}/date={}/hour={}",
            layer.dir(),
            self.table.name(),
            self.table.partition_key(),
            encode_value(&self.value),
            when.format("%Y-%m-%d"),
            when.format("%H"),
        )
    }
}

/// The parts of an object name written by [`object_name`].
pub fn parse_object_name(file: &str) -> Option<(&str, u64, u64)> {
    let stem = file.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let mut parts = stem.rsplitn(3, '-');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let input = parts.next()?;
    Some((input, first, last))
}

pub fn object_name(input: &str, first: u64, last: u64) -> String {
    format!("part-{input}-{first:020}-{last:020}.parquet")
}

struct Batch {
    part: Partition,
    rows: Box<dyn TableRows>,
    writer: Option<Encoder>,
    first: u64,
    last: u64,
    count: usize,
    opened: Instant,
    /// Event time of the last row encoded, to notice input that is not in time order.
    last_ts: i64,
    /// Some encoded chunk starts before the previous one ended: re-sort the whole batch.
    unsorted: bool,
}

/// Writes events into the lake.
pub struct LakeWriter {
    lake: Lake,
    input: String,
    opts: WriteOptions,
    props: WriterProperties,
    open: Vec<Batch>,
    /// Position ranges of this input already stored, by partition directory.
    stored: HashMap<String, Vec<(u64, u64)>>,
    stored_max: Option<u64>,
    /// Highest position pushed so far.
    last_pushed: Option<u64>,
    stats: WriterStats,
}

impl LakeWriter {
    /// A writer for one input (`input` goes into every object name: letters, digits, `_`, `.`
    /// and `-` only). Reads the names of what is stored to learn what this input already holds.
    pub fn new(lake: Lake, input: &str, opts: WriteOptions) -> Result<LakeWriter, LakeError> {
        let props = properties(&opts, lake.root())?.build();
        let mut stored: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        let mut stored_max = None;
        for table in Table::ALL {
            let prefix = format!("{}/{}", table.layer().dir(), table.name());
            for object in lake.list(&prefix)? {
                let Some((dir, file)) = object.path.rsplit_once('/') else {
                    continue;
                };
                if let Some((name, first, last)) = parse_object_name(file)
                    && name == input
                {
                    stored
                        .entry(dir.to_string())
                        .or_default()
                        .push((first, last));
                    stored_max = stored_max.max(Some(last));
                }
            }
        }
        Ok(LakeWriter {
            lake,
            input: input.to_string(),
            opts,
            props,
            open: Vec::new(),
            stored,
            stored_max,
            last_pushed: None,
            stats: WriterStats::default(),
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Rows gathered and not yet stored.
    pub fn pending_rows(&self) -> usize {
        self.open.iter().map(|b| b.count).sum()
    }

    /// Batches open (gathered, not yet stored).
    pub fn pending_batches(&self) -> usize {
        self.open.len()
    }

    /// When the oldest open batch was opened.
    pub fn oldest_pending(&self) -> Option<Instant> {
        self.open.iter().map(|b| b.opened).min()
    }

    /// The highest position such that every event pushed at or below it is stored (or was
    /// skipped): what a bus consumer may acknowledge.
    pub fn durable_through(&self) -> Option<u64> {
        match self.open.iter().map(|b| b.first).min() {
            Some(first) => first.checked_sub(1),
            None => self.last_pushed,
        }
    }

    /// Records a position that holds nothing to store (an item that was not an event).
    pub fn note_position(&mut self, pos: u64) {
        self.last_pushed = self.last_pushed.max(Some(pos));
    }

    /// Takes one event at lake position `pos` (positions increase with each call).
    pub fn push(&mut self, event: &Event, pos: u64) -> Result<Pushed, LakeError> {
        self.last_pushed = Some(pos);
        let table = Table::of(event.kind());
        let hour = event.ts_event_ns() / NS_PER_HOUR;
        let value = partition_value(event);
        let i = match self
            .open
            .iter()
            .position(|b| b.part.table == table && b.part.hour == hour && b.part.value == value)
        {
            Some(i) => i,
            None => {
                let part = Partition {
                    table,
                    value: value.to_string(),
                    hour,
                };
                if self.is_stored(&part, pos) {
                    self.stats.already_stored += 1;
                    return Ok(Pushed::AlreadyStored);
                }
                // The partition's next hour has begun: its earlier hours are done.
                let done: Vec<usize> = (0..self.open.len())
                    .filter(|&j| {
                        let p = &self.open[j].part;
                        p.table == table && p.value == value && p.hour < hour
                    })
                    .collect();
                for j in done.into_iter().rev() {
                    self.flush_at(j)?;
                }
                self.open.push(Batch {
                    part,
                    rows: table.rows(),
                    writer: None,
                    first: pos,
                    last: pos,
                    count: 0,
                    opened: Instant::now(),
                    last_ts: i64::MIN,
                    unsorted: false,
                });
                self.open.len() - 1
            }
        };
        if self.stored_max.is_some_and(|m| pos <= m) {
            let part = self.open[i].part.clone();
            if self.is_stored(&part, pos) {
                self.stats.already_stored += 1;
                return Ok(Pushed::AlreadyStored);
            }
        }
        let batch = &mut self.open[i];
        let before = batch.rows.len();
        if let Err(reject) = batch.rows.push(event, pos) {
            *self.stats.rejected.entry(reject).or_default() += 1;
            return Ok(Pushed::Rejected(reject));
        }
        let added = batch.rows.len() - before;
        batch.last = pos;
        batch.count += added;
        *self.stats.rows.entry(table).or_default() += added as u64;
        if batch.rows.len() >= CHUNK_ROWS {
            encode_chunk(batch, &self.props, self.lake.root())?;
        }
        if batch.count >= self.opts.flush_rows {
            self.flush_at(i)?;
        }
        Ok(Pushed::Buffered)
    }

    fn is_stored(&self, part: &Partition, pos: u64) -> bool {
        if self.stored_max.is_none_or(|m| pos > m) {
            return false;
        }
        self.stored
            .get(&part.dir())
            .is_some_and(|ranges| ranges.iter().any(|&(a, b)| a <= pos && pos <= b))
    }

    /// Flushes the batches open longer than the flush age.
    pub fn flush_due(&mut self, now: Instant) -> Result<usize, LakeError> {
        let mut flushed = 0;
        let mut i = 0;
        while i < self.open.len() {
            if now.duration_since(self.open[i].opened) >= self.opts.flush_after {
                self.flush_at(i)?;
                flushed += 1;
            } else {
                i += 1;
            }
        }
        Ok(flushed)
    }

    /// Flushes every open batch (end of input, or a signal).
    pub fn finish(&mut self) -> Result<(), LakeError> {
        while !self.open.is_empty() {
            self.flush_at(self.open.len() - 1)?;
        }
        Ok(())
    }

    fn flush_at(&mut self, i: usize) -> Result<(), LakeError> {
        let mut batch = self.open.swap_remove(i);
        let dir = batch.part.dir();
        let path = format!(
            "{dir}/{}",
            object_name(&self.input, batch.first, batch.last)
        );
        // An error here is fatal to the writer: nothing of this batch was acknowledged.
        let Some(bytes) = encode_batch(&mut batch, &self.props, &path)? else {
            return Ok(()); // every event of the batch was rejected
        };
        let size = bytes.len() as u64;
        self.lake.put(&path, bytes)?;
        tracing::debug!(object = %path, rows = batch.count, bytes = size, "stored");
        self.stats.objects += 1;
        self.stats.bytes += size;
        self.stored
            .entry(dir)
            .or_default()
            .push((batch.first, batch.last));
        self.stored_max = self.stored_max.max(Some(batch.last));
        Ok(())
    }
}

/// How every lake object is encoded: ZSTD, page statistics, sorted by event time (column 0).
pub(crate) fn properties(
    opts: &WriteOptions,
    root: &str,
) -> Result<parquet::file::properties::WriterPropertiesBuilder, LakeError> {
    let level = ZstdLevel::try_new(opts.zstd_level).map_err(|e| LakeError::Parquet {
        path: root.to_string(),
        source: e,
    })?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows.max(1)))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("spymaster {}", env!("CARGO_PKG_VERSION"))))
}

/// Sorts rows by (event time, lake position), keeping equal keys in arrival order.
fn sort_batch(batch: RecordBatch, table: Table) -> RecordBatch {
    let (Some(ts), Some(seq)) = (
        batch
            .column_by_name(table.time_column())
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>()),
        batch
            .column_by_name("lake_seq")
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>()),
    ) else {
        unreachable!("every table has its time column and lake_seq");
    };
    let key = |i: usize| (ts.value(i), seq.value(i));
    if (1..batch.num_rows()).all(|i| key(i - 1) <= key(i)) {
        return batch;
    }
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by_key(|&i| key(i as usize));
    let indices = arrow_array::UInt32Array::from(order);
    arrow_select::take::take_record_batch(&batch, &indices).expect("indices are within the batch")
}

fn time_range(batch: &RecordBatch, table: Table) -> Option<(i64, i64)> {
    let ts = batch
        .column_by_name(table.time_column())?
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()?;
    (!ts.is_empty()).then(|| (ts.value(0), ts.value(ts.len() - 1)))
}

/// Encodes the rows gathered so far into the batch's Parquet writer.
fn encode_chunk(batch: &mut Batch, props: &WriterProperties, root: &str) -> Result<(), LakeError> {
    if batch.rows.is_empty() {
        return Ok(());
    }
    let table = batch.part.table;
    let chunk = sort_batch(batch.rows.take(), table);
    if let Some((lo, hi)) = time_range(&chunk, table) {
        if lo < batch.last_ts {
            batch.unsorted = true;
        }
        batch.last_ts = batch.last_ts.max(hi);
    }
    let perr = |source| LakeError::Parquet {
        path: format!("{root}/{}", batch.part.dir()),
        source,
    };
    if batch.writer.is_none() {
        batch.writer = Some(Encoder::start(table.schema(), props.clone()).map_err(perr)?);
    }
    if let Some(w) = batch.writer.as_mut() {
        w.write(chunk).map_err(perr)?;
    }
    Ok(())
}

/// A Parquet object encoded on a thread of its own, so that column encoding and compression
/// overlap with parsing the input and gathering rows. Chunks queue up to two deep: memory
/// stays bounded and a slow encoder slows the input down instead of piling rows up.
struct Encoder {
    chunks: Option<std::sync::mpsc::SyncSender<RecordBatch>>,
    done: Option<std::thread::JoinHandle<Result<Vec<u8>, parquet::errors::ParquetError>>>,
}

impl Encoder {
    fn start(
        schema: arrow_schema::SchemaRef,
        props: WriterProperties,
    ) -> Result<Encoder, parquet::errors::ParquetError> {
        let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let done = std::thread::Builder::new()
            .name("lake-encode".into())
            .spawn(move || {
                for chunk in rx {
                    w.write(&chunk)?;
                }
                w.into_inner()
            })
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        Ok(Encoder {
            chunks: Some(tx),
            done: Some(done),
        })
    }

    fn write(&mut self, chunk: RecordBatch) -> Result<(), parquet::errors::ParquetError> {
        let sent = self
            .chunks
            .as_ref()
            .is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            return Ok(());
        }
        // The encoder stopped: it met an error, which finishing reports.
        self.chunks = None;
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(parquet::errors::ParquetError::General(
                "the encoder stopped early".into(),
            )),
        }
    }

    fn join(&mut self) -> Result<Vec<u8>, parquet::errors::ParquetError> {
        self.chunks = None;
        match self.done.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(parquet::errors::ParquetError::General(
                "the encoder thread panicked".into(),
            )),
            None => Err(parquet::errors::ParquetError::General(
                "the encoder was already finished".into(),
            )),
        }
    }

    /// Every chunk encoded: the object's bytes.
    fn finish(mut self) -> Result<Vec<u8>, parquet::errors::ParquetError> {
        self.join()
    }
}

/// The batch as one Parquet object, sorted; `None` when it holds no rows.
fn encode_batch(
    batch: &mut Batch,
    props: &WriterProperties,
    path: &str,
) -> Result<Option<Bytes>, LakeError> {
    encode_chunk(batch, props, path)?;
    let perr = |source| LakeError::Parquet {
        path: path.to_string(),
        source,
    };
    let Some(writer) = batch.writer.take() else {
        return Ok(None);
    };
    let bytes = Bytes::from(writer.finish().map_err(perr)?);
    if !batch.unsorted {
        return Ok(Some(bytes));
    }
    // Input out of time order across chunks: decode, sort the whole batch, encode again.
    let table = batch.part.table;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(perr)?
        .with_batch_size(CHUNK_ROWS)
        .build()
        .map_err(perr)?;
    let chunks = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| perr(e.into()))?;
    let all = arrow_select::concat::concat_batches(&table.schema(), &chunks)
        .map_err(|e| perr(e.into()))?;
    let sorted = sort_batch(all, table);
    let mut w =
        ArrowWriter::try_new(Vec::new(), table.schema(), Some(props.clone())).map_err(perr)?;
    w.write(&sorted).map_err(perr)?;
    Ok(Some(Bytes::from(w.into_inner().map_err(perr)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_carry_the_input_and_the_position_range() {
        let name = object_name("stdin-00ff", 7, 1234);
        assert_eq!(
            name,
            "part-stdin-00ff-00000000000000000007-00000000000000001234.parquet"
        );
        assert_eq!(parse_object_name(&name), Some(("stdin-00ff", 7, 1234)));
        assert_eq!(parse_object_name("part-x.parquet"), None);
    }

    #[test]
    fn partitions_are_hive_directories_in_utc() {
        let p = Partition {
            table: Table::FuturesMbp10,
            value: "ESZ6".into(),
            hour: 1_764_772_200_000_000_000 / NS_PER_HOUR,
        };
        assert_eq!(
            p.dir(),
            "bronze/futures/mbp10/symbol=ESZ6/date=2025-12-03/hour=14"
        );
    }
}
