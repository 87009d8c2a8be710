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
//! **Shared inputs.** Several workers reading one durable consumer each get some of the
//! messages, so a batch holds only *some* positions of its range. Their objects are
//! `part-{input}-{first}-{last}.{worker}.parquet` (`worker` unique per process, so no two
//! workers ever write the same name) and are *sparse*: whether one holds a position is read
//! from its `lake_seq` column, on demand and once per object. A message delivered for the first
//! time can only be held by what was stored before this worker started (a new consumer over an
//! old lake); a redelivered one (its worker died before acknowledging) may be held by any
//! object, so the writer lists its partition again before deciding.
//!
//! Memory stays bounded: rows are gathered in typed column builders, encoded into the batch's
//! Parquet writer every [`CHUNK_ROWS`] rows (sorted by event time), and an open batch is
//! flushed as soon as its partition's next hour begins.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
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

/// The parts of an object name written by [`object_name`] or [`worker_object_name`]:
/// input, first and last position.
pub fn parse_object_name(file: &str) -> Option<(&str, u64, u64)> {
    parse_object_name_full(file).map(|(input, first, last, _)| (input, first, last))
}

/// The parts of an object name, with the worker of a sparse object.
pub fn parse_object_name_full(file: &str) -> Option<(&str, u64, u64, Option<&str>)> {
    let stem = file.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let mut parts = stem.rsplitn(3, '-');
    let tail = parts.next()?;
    let (last, worker) = match tail.split_once('.') {
        Some((last, worker)) if is_worker_id(worker) => (last, Some(worker)),
        Some(_) => return None,
        None => (tail, None),
    };
    let last = last.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let input = parts.next()?;
    Some((input, first, last, worker))
}

/// A worker id: letters and digits only (it ends an object's name).
pub fn is_worker_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn object_name(input: &str, first: u64, last: u64) -> String {
    format!("part-{input}-{first:020}-{last:020}.parquet")
}

/// The name of a sparse object, written by one of several workers sharing an input.
pub fn worker_object_name(input: &str, first: u64, last: u64, worker: &str) -> String {
    format!("part-{input}-{first:020}-{last:020}.{worker}.parquet")
}

/// An object of this input already in the lake.
#[derive(Debug, Clone)]
struct Stored {
    first: u64,
    last: u64,
    /// A sparse object (written by one of several workers): its path, to read which positions
    /// it holds. `None`: it holds every position of its partition in its range.
    sparse: Option<String>,
    /// Written by this writer: a first delivery is never in it.
    own: bool,
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
    /// Set when several workers may share the input: this one's id, in its object names.
    worker: Option<String>,
    /// Objects of this input already stored, by partition directory.
    stored: HashMap<String, Vec<Stored>>,
    /// Highest position stored by others (or before this writer started).
    stored_max: Option<u64>,
    /// Positions held by sparse objects, read from their `lake_seq` when first needed.
    held: HashMap<String, Arc<Vec<u64>>>,
    /// When each partition directory was last listed again (for redeliveries).
    relisted: HashMap<String, Instant>,
    /// Highest position pushed so far.
    last_pushed: Option<u64>,
    stats: WriterStats,
}

impl LakeWriter {
    /// A writer for one input (`input` goes into every object name: letters, digits, `_`, `.`
    /// and `-` only). Reads the names of what is stored to learn what this input already holds.
    pub fn new(lake: Lake, input: &str, opts: WriteOptions) -> Result<LakeWriter, LakeError> {
        Self::with_worker(lake, input, opts, None)
    }

    /// A writer that may share its input with other workers: `worker` (letters and digits,
    /// unique to this process) goes into its object names, which are sparse.
    pub fn with_worker(
        lake: Lake,
        input: &str,
        opts: WriteOptions,
        worker: Option<String>,
    ) -> Result<LakeWriter, LakeError> {
        if let Some(w) = worker.as_deref().filter(|w| !is_worker_id(w)) {
            return Err(LakeError::Root {
                root: lake.root().to_string(),
                message: format!("worker id {w:?}: letters and digits only"),
            });
        }
        let props = properties(&opts, lake.root())?.build();
        let mut writer = LakeWriter {
            lake,
            input: input.to_string(),
            worker,
            opts,
            props,
            open: Vec::new(),
            stored: HashMap::new(),
            stored_max: None,
            held: HashMap::new(),
            relisted: HashMap::new(),
            last_pushed: None,
            stats: WriterStats::default(),
        };
        for table in Table::ALL {
            let prefix = format!("{}/{}", table.layer().dir(), table.name());
            writer.index(&prefix)?;
        }
        Ok(writer)
    }

    /// Lists the objects of this input under `prefix` into the index (those not in it yet).
    fn index(&mut self, prefix: &str) -> Result<(), LakeError> {
        for object in self.lake.list(prefix)? {
            let Some((dir, file)) = object.path.rsplit_once('/') else {
                continue;
            };
            let Some((name, first, last, worker)) = parse_object_name_full(file) else {
                continue;
            };
            if name != self.input {
                continue;
            }
            let sparse = worker.map(|_| object.path.clone());
            let known = self.stored.entry(dir.to_string()).or_default();
            if known
                .iter()
                .any(|s| s.first == first && s.last == last && s.sparse == sparse)
            {
                continue;
            }
            known.push(Stored {
                first,
                last,
                sparse,
                own: false,
            });
            self.stored_max = self.stored_max.max(Some(last));
        }
        Ok(())
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

    /// Takes one event at lake position `pos` (positions increase with each call, but for
    /// redeliveries). `redelivered`: the input delivered it before (to a worker that died
    /// before acknowledging it), so any object, however recent, may hold it.
    pub fn push(
        &mut self,
        event: &Event,
        pos: u64,
        redelivered: bool,
    ) -> Result<Pushed, LakeError> {
        self.last_pushed = self.last_pushed.max(Some(pos));
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
                if self.is_stored(&part, pos, redelivered)? {
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
        if redelivered || self.stored_max.is_some_and(|m| pos <= m) {
            let part = self.open[i].part.clone();
            if self.is_stored(&part, pos, redelivered)? {
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
        batch.first = batch.first.min(pos);
        batch.last = batch.last.max(pos);
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

    fn is_stored(
        &mut self,
        part: &Partition,
        pos: u64,
        redelivered: bool,
    ) -> Result<bool, LakeError> {
        let dir = part.dir();
        if redelivered {
            // Another worker may have stored it since this one listed: look again (at most
            // once a second per partition; a dead worker's objects are older than that).
            let due = self
                .relisted
                .get(&dir)
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if due {
                self.relisted.insert(dir.clone(), Instant::now());
                self.index(&format!("{dir}/"))?;
            }
        } else if self.stored_max.is_none_or(|m| pos > m) {
            return Ok(false);
        }
        let Some(known) = self.stored.get(&dir) else {
            return Ok(false);
        };
        let mut sparse = Vec::new();
        for s in known {
            if s.first <= pos && pos <= s.last && (redelivered || !s.own) {
                match &s.sparse {
                    None => return Ok(true),
                    Some(path) => sparse.push(path.clone()),
                }
            }
        }
        for path in sparse {
            if self.held_by(&path)?.binary_search(&pos).is_ok() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The positions a sparse object holds (its `lake_seq` column, sorted), read once.
    fn held_by(&mut self, path: &str) -> Result<Arc<Vec<u64>>, LakeError> {
        if let Some(held) = self.held.get(path) {
            return Ok(held.clone());
        }
        let perr = |source| LakeError::Parquet {
            path: path.to_string(),
            source,
        };
        let bytes = self.lake.get(path)?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(perr)?;
        let Some(column) = builder
            .parquet_schema()
            .columns()
            .iter()
            .position(|c| c.name() == "lake_seq")
        else {
            return Err(LakeError::Corrupt {
                path: path.to_string(),
                message: "no lake_seq column".into(),
            });
        };
        let mask = parquet::arrow::ProjectionMask::leaves(builder.parquet_schema(), [column]);
        let reader = builder.with_projection(mask).build().map_err(perr)?;
        let mut held = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| perr(e.into()))?;
            let Some(seqs) = batch.column(0).as_any().downcast_ref::<UInt64Array>() else {
                return Err(LakeError::Corrupt {
                    path: path.to_string(),
                    message: "lake_seq is not UInt64".into(),
                });
            };
            held.extend(seqs.values().iter().copied());
        }
        held.sort_unstable();
        let held = Arc::new(held);
        self.held.insert(path.to_string(), held.clone());
        Ok(held)
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
        let name = match &self.worker {
            Some(w) => worker_object_name(&self.input, batch.first, batch.last, w),
            None => object_name(&self.input, batch.first, batch.last),
        };
        let path = format!("{dir}/{name}");
        // An error here is fatal to the writer: nothing of this batch was acknowledged.
        let Some(bytes) = encode_batch(&mut batch, &self.props, &path)? else {
            return Ok(()); // every event of the batch was rejected
        };
        let size = bytes.len() as u64;
        self.lake.put(&path, bytes)?;
        tracing::debug!(object = %path, rows = batch.count, bytes = size, "stored");
        self.stats.objects += 1;
        self.stats.bytes += size;
        let sparse = self.worker.is_some().then_some(path);
        self.stored.entry(dir).or_default().push(Stored {
            first: batch.first,
            last: batch.last,
            sparse,
            own: true,
        });
        if self.worker.is_none() {
            self.stored_max = self.stored_max.max(Some(batch.last));
        }
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
    fn sparse_object_names_carry_the_worker_and_plain_names_none() {
        let name = worker_object_name("MARKET_DATA.17", 7, 1234, "w9Xk");
        assert_eq!(
            name,
            "part-MARKET_DATA.17-00000000000000000007-00000000000000001234.w9Xk.parquet"
        );
        assert_eq!(
            parse_object_name_full(&name),
            Some(("MARKET_DATA.17", 7, 1234, Some("w9Xk")))
        );
        assert_eq!(parse_object_name(&name), Some(("MARKET_DATA.17", 7, 1234)));
        let plain = object_name("stdin-00ff", 1, 2);
        assert_eq!(
            parse_object_name_full(&plain),
            Some(("stdin-00ff", 1, 2, None))
        );
        assert_eq!(parse_object_name("part-a-1-2.w-x.parquet"), None);
    }

    fn mbp(i: u64) -> Event {
        crate::bus::testing::synthetic_mbp10(i)
    }

    fn open_lake(dir: &std::path::Path) -> Lake {
        Lake::open_for_write(&super::super::StoreConfig::local(
            dir.join("lake").to_string_lossy(),
        ))
        .unwrap()
    }

    #[test]
    fn workers_sharing_an_input_skip_redeliveries_any_of_them_stored_and_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let lake = open_lake(dir.path());
        let opts = WriteOptions::default();
        let worker = |w: &str| {
            LakeWriter::with_worker(lake.reopen().unwrap(), "S.1", opts.clone(), Some(w.into()))
                .unwrap()
        };
        // Two workers take alternate messages of one partition, and store them.
        let (mut a, mut b) = (worker("a"), worker("b"));
        // c starts before they store anything: only a fresh listing tells it what they hold.
        let mut c = worker("c");
        for pos in 1..=100u64 {
            let w = if pos % 2 == 0 { &mut a } else { &mut b };
            assert_eq!(w.push(&mbp(pos), pos, false).unwrap(), Pushed::Buffered);
        }
        a.finish().unwrap();
        b.finish().unwrap();
        // A first delivery inside the other's range is not taken for stored.
        assert_eq!(a.durable_through(), Some(100));
        // Worker a died before acknowledging: its messages come again to c, along with
        // messages nobody stored.
        let mut outcomes = Vec::new();
        for pos in [2u64, 4, 50, 100, 101, 102] {
            outcomes.push(c.push(&mbp(pos), pos, true).unwrap());
        }
        assert_eq!(
            outcomes,
            [
                Pushed::AlreadyStored,
                Pushed::AlreadyStored,
                Pushed::AlreadyStored,
                Pushed::AlreadyStored,
                Pushed::Buffered,
                Pushed::Buffered
            ]
        );
        c.finish().unwrap();
        // Each worker wrote objects of its own name; together they hold 1..=102 once.
        let names: Vec<String> = lake
            .list("bronze")
            .unwrap()
            .into_iter()
            .map(|o| o.path)
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().any(|n| n.ends_with(".c.parquet")));
        let mut all = Vec::new();
        let mut reader = worker("e");
        for n in &names {
            all.extend(reader.held_by(n).unwrap().iter().copied());
        }
        all.sort_unstable();
        assert_eq!(all, (1..=102).collect::<Vec<u64>>());
    }

    #[test]
    fn a_new_reader_of_the_same_input_skips_what_sparse_objects_hold_and_stores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let lake = open_lake(dir.path());
        let opts = WriteOptions::default();
        let mut a = LakeWriter::with_worker(
            lake.reopen().unwrap(),
            "S.1",
            opts.clone(),
            Some("a".into()),
        )
        .unwrap();
        for pos in (1..=99u64).step_by(2) {
            a.push(&mbp(pos), pos, false).unwrap();
        }
        a.finish().unwrap();
        // A new consumer over the same stream: every message is a first delivery.
        let mut b = LakeWriter::with_worker(lake, "S.1", opts, Some("b".into())).unwrap();
        let stored = (1..=100u64)
            .filter(|&pos| b.push(&mbp(pos), pos, false).unwrap() == Pushed::AlreadyStored)
            .count();
        assert_eq!(stored, 50);
        assert_eq!(b.stats().already_stored, 50);
        assert_eq!(b.pending_rows(), 50);
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
