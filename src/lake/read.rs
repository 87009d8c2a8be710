//! Reading the lake back: `cat` (canonical events, merged in the canonical order) and `ls`.
//!
//! [`LakeSource`] is an [`EventSource`] like a pipe or a NATS subject: it finds the objects a
//! [`Selection`] names, reads only their footers up front, and k-way merges their rows by
//! (event time, trades first, lake position) — the order `spm-replay` emits — opening a file
//! only when the merge reaches its first event time, so memory stays bounded by the files that
//! overlap in time, not by the day.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::statistics::Statistics;
use serde::Serialize;

use super::table::decode_value;
use super::writer::{SILVER_OBJECT, parse_object_name};
use super::{Lake, LakeError, Layer, PartitionValues, Stored, Table};
use crate::event::Event;
use crate::io::{EventSource, SourceError};

/// Rows decoded at a time from one file.
const READ_BATCH_ROWS: usize = 1024;

/// Which part of the lake to read.
#[derive(Debug, Clone)]
pub struct Selection {
    pub layer: Layer,
    pub tables: Vec<Table>,
    /// `YYYY-MM-DD` (UTC).
    pub date: Option<String>,
    /// The partition value: a symbol, or an underlying.
    pub symbol: Option<String>,
    /// Event-time range in nanoseconds, inclusive start, exclusive end.
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
}

impl Selection {
    pub fn all(layer: Layer, tables: Vec<Table>) -> Selection {
        Selection {
            layer,
            tables,
            date: None,
            symbol: None,
            start_ns: None,
            end_ns: None,
        }
    }

    fn in_range(&self, ts: u64) -> bool {
        self.start_ns.is_none_or(|s| ts >= s) && self.end_ns.is_none_or(|e| ts < e)
    }
}

/// One stored object with what its path and footer say.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub layer: Layer,
    pub table: Table,
    pub path: String,
    pub partition: PartitionValues,
    pub date: String,
    pub hour: String,
    pub bytes: u64,
    pub rows: u64,
    /// Event-time range of the rows (from the column statistics).
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    metadata: std::sync::Arc<ParquetMetaData>,
}

impl FileInfo {
    /// A value of the file's key-value metadata.
    pub fn key_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == key)?
            .value
            .as_deref()
    }

    /// The input the object was read from (its name's `{input}`); `None` for silver.
    pub fn input(&self) -> Option<&str> {
        let file = self.path.rsplit_once('/').map_or(&*self.path, |(_, f)| f);
        parse_object_name(file).map(|(input, _, _)| input)
    }
}

/// Splits `{layer}/{table}/{key}={value}/date={d}/hour={h}/{file}` into its parts.
fn parse_path(layer: Layer, table: Table, path: &str) -> Option<(PartitionValues, String, String)> {
    let rest = path
        .strip_prefix(layer.dir())?
        .strip_prefix('/')?
        .strip_prefix(table.name())?
        .strip_prefix('/')?;
    let mut parts = rest.split('/');
    let key = parts
        .next()?
        .strip_prefix(table.partition_key())?
        .strip_prefix('=')?;
    let date = parts.next()?.strip_prefix("date=")?;
    let hour = parts.next()?.strip_prefix("hour=")?;
    let file = parts.next()?;
    let named = match layer {
        Layer::Silver => file == SILVER_OBJECT,
        _ => parse_object_name(file).is_some(),
    };
    if parts.next().is_some() || !named {
        return None;
    }
    Some((
        PartitionValues {
            key: decode_value(key)?,
        },
        date.to_string(),
        hour.to_string(),
    ))
}

fn time_stats(metadata: &ParquetMetaData, table: Table) -> (Option<i64>, Option<i64>) {
    let Some(col) = metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == table.time_column())
    else {
        return (None, None);
    };
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    for rg in metadata.row_groups() {
        match rg.column(col).statistics() {
            Some(Statistics::Int64(s)) => {
                if let (Some(&a), Some(&b)) = (s.min_opt(), s.max_opt()) {
                    lo = Some(lo.map_or(a, |x| x.min(a)));
                    hi = Some(hi.map_or(b, |x| x.max(b)));
                }
            }
            _ => return (None, None),
        }
    }
    (lo, hi)
}

/// Reads an object's Parquet footer only (two ranged reads).
fn read_footer(lake: &Lake, path: &str, size: u64) -> Result<ParquetMetaData, LakeError> {
    let corrupt = |message: &str| LakeError::Corrupt {
        path: format!("{}/{path}", lake.root().trim_end_matches('/')),
        message: message.to_string(),
    };
    if size < 12 {
        return Err(corrupt("too short to be a Parquet file"));
    }
    let tail = lake.get_range(path, size - 8..size)?;
    if &tail[4..8] != b"PAR1" {
        return Err(corrupt("not a Parquet file (no PAR1 footer)"));
    }
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if len + 12 > size {
        return Err(corrupt("footer length beyond the file"));
    }
    let footer = lake.get_range(path, size - 8 - len..size - 8)?;
    ParquetMetaDataReader::decode_metadata(&footer).map_err(|source| LakeError::Parquet {
        path: path.to_string(),
        source,
    })
}

/// Every object of the selection, with its footer read.
pub fn find_files(lake: &Lake, sel: &Selection) -> Result<Vec<FileInfo>, LakeError> {
    let mut files = Vec::new();
    for &table in &sel.tables {
        let layer = if table == Table::LevelSignals && sel.layer == Layer::Bronze {
            Layer::Gold
        } else {
            sel.layer
        };
        let prefix = format!("{}/{}", layer.dir(), table.name());
        for object in lake.list(&prefix)? {
            let Some((partition, date, hour)) = parse_path(layer, table, &object.path) else {
                tracing::warn!(object = %object.path, "not a lake object; ignored");
                continue;
            };
            if sel.date.as_ref().is_some_and(|d| *d != date)
                || sel.symbol.as_ref().is_some_and(|s| *s != partition.key)
            {
                continue;
            }
            let metadata = std::sync::Arc::new(read_footer(lake, &object.path, object.size)?);
            let (min_ts, max_ts) = time_stats(&metadata, table);
            files.push(FileInfo {
                layer,
                table,
                rows: metadata.file_metadata().num_rows().max(0) as u64,
                path: object.path,
                partition,
                date,
                hour,
                bytes: object.size,
                min_ts,
                max_ts,
                metadata,
            });
        }
    }
    Ok(files)
}

/// A file being read by the merge.
struct Cursor {
    info: FileInfo,
    reader: ParquetRecordBatchReader,
    buf: VecDeque<Stored>,
    /// Gold only: the last snap of the latest batch, which the next batch may continue.
    carry: Option<Stored>,
    done: bool,
}

/// Merge key: event time, trades first, lake position, then file.
type Key = (u64, u8, u64, usize);

fn key(s: &Stored, cursor: usize) -> Key {
    let kind = s.event.kind();
    (
        s.event.ts_event_ns(),
        u8::from(!kind.is_trade()),
        s.lake_seq,
        cursor,
    )
}

/// The lake as a source of canonical events, in the canonical merge order.
pub struct LakeSource {
    lake: Lake,
    sel: Selection,
    /// Files not opened yet, latest first event time first (popped from the end).
    pending: Vec<FileInfo>,
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<Key>>,
    total_rows: u64,
}

impl LakeSource {
    pub fn new(lake: Lake, sel: Selection) -> Result<LakeSource, LakeError> {
        let files = find_files(&lake, &sel)?;
        Ok(LakeSource::from_files(lake, sel, files))
    }

    /// Reads the given files (found by [`find_files`]), restricted to the selection's time
    /// range.
    pub fn from_files(lake: Lake, sel: Selection, files: Vec<FileInfo>) -> LakeSource {
        let mut pending: Vec<FileInfo> = files
            .into_iter()
            .filter(|f| {
                // Files wholly outside the time range are not opened at all.
                let before = sel
                    .start_ns
                    .zip(f.max_ts)
                    .is_some_and(|(s, hi)| hi < s as i64);
                let after = sel
                    .end_ns
                    .zip(f.min_ts)
                    .is_some_and(|(e, lo)| lo >= e as i64);
                !before && !after
            })
            .collect();
        pending.sort_by_key(|f| Reverse((f.min_ts.unwrap_or(i64::MIN), f.path.clone())));
        let total_rows = pending.iter().map(|f| f.rows).sum();
        LakeSource {
            lake,
            sel,
            pending,
            cursors: Vec::new(),
            heap: BinaryHeap::new(),
            total_rows,
        }
    }

    /// The file an event returned by [`LakeSource::next_stored`] came from.
    pub fn file(&self, cursor: usize) -> &FileInfo {
        &self.cursors[cursor].info
    }

    /// The next event in the canonical merge order, with its lake position and the index of
    /// its file (for [`LakeSource::file`]).
    pub fn next_stored(&mut self) -> Result<Option<(Stored, usize)>, SourceError> {
        loop {
            let top = self.heap.peek().map(|Reverse(k)| k.0);
            match self.pending.last() {
                Some(f) if top.is_none_or(|t| f.min_ts.is_none_or(|lo| lo <= t as i64)) => {
                    let Some(info) = self.pending.pop() else {
                        unreachable!("just peeked")
                    };
                    self.open(info)?;
                }
                _ => break,
            }
        }
        let Some(Reverse((_, _, _, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let Some(stored) = self.cursors[i].buf.pop_front() else {
            unreachable!("a cursor in the heap has a front event")
        };
        self.refill(i)?;
        Ok(Some((stored, i)))
    }

    /// Rows in the files selected (gold rows are levels, not snaps).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    fn err(&self, path: &str, message: impl std::fmt::Display) -> SourceError {
        SourceError::Fatal {
            input: format!("{}/{path}", self.lake.root().trim_end_matches('/')),
            message: message.to_string(),
        }
    }

    fn open(&mut self, info: FileInfo) -> Result<(), SourceError> {
        let bytes = self
            .lake
            .get(&info.path)
            .map_err(|e| self.err(&info.path, e))?;
        let metadata =
            ArrowReaderMetadata::try_new(info.metadata.clone(), ArrowReaderOptions::new())
                .map_err(|e| self.err(&info.path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata)
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(|e| self.err(&info.path, e))?;
        self.cursors.push(Cursor {
            info,
            reader,
            buf: VecDeque::new(),
            carry: None,
            done: false,
        });
        let i = self.cursors.len() - 1;
        self.refill(i)?;
        Ok(())
    }

    /// Makes sure cursor `i` has its next event at the front and its key in the heap.
    fn refill(&mut self, i: usize) -> Result<(), SourceError> {
        loop {
            let c = &mut self.cursors[i];
            if let Some(front) = c.buf.front() {
                self.heap.push(Reverse(key(front, i)));
                return Ok(());
            }
            if c.done {
                return Ok(());
            }
            let next = c.reader.next();
            let sel = &self.sel;
            match next {
                None => {
                    c.done = true;
                    c.buf.extend(
                        c.carry
                            .take()
                            .filter(|s| sel.in_range(s.event.ts_event_ns())),
                    );
                }
                Some(Err(e)) => {
                    let path = c.info.path.clone();
                    c.done = true;
                    return Err(self.err(&path, e));
                }
                Some(Ok(batch)) => {
                    let mut rows = Vec::with_capacity(batch.num_rows() + 1);
                    rows.extend(c.carry.take());
                    let (table, part, path) = (c.info.table, &c.info.partition, &c.info.path);
                    if let Err(e) = table.read(&batch, part, path, &mut rows) {
                        c.done = true;
                        return Err(SourceError::Fatal {
                            input: self.lake.root().to_string(),
                            message: e.to_string(),
                        });
                    }
                    if table == Table::LevelSignals {
                        c.carry = rows.pop();
                    }
                    c.buf.extend(
                        rows.into_iter()
                            .filter(|s| sel.in_range(s.event.ts_event_ns())),
                    );
                }
            }
        }
    }
}

impl EventSource for LakeSource {
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        Ok(self.next_stored()?.map(|(stored, _)| stored.event))
    }
}

/// One line of `ls`: a partition of a table.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionListing {
    pub layer: &'static str,
    pub table: &'static str,
    pub key: &'static str,
    pub value: String,
    pub date: String,
    pub hour: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts_ns: Option<i64>,
    pub max_ts_ns: Option<i64>,
}

/// What is stored, partition by partition, in every layer.
pub fn list(lake: &Lake, sel: &Selection) -> Result<Vec<PartitionListing>, LakeError> {
    let mut out: BTreeMap<(Layer, Table, String, String, String), PartitionListing> =
        BTreeMap::new();
    for layer in [Layer::Bronze, Layer::Silver, Layer::Gold] {
        let tables: Vec<Table> = sel
            .tables
            .iter()
            .copied()
            .filter(|t| (layer == Layer::Gold) == (t.layer() == Layer::Gold))
            .collect();
        let s = Selection {
            layer,
            tables,
            ..sel.clone()
        };
        for f in find_files(lake, &s)? {
            let e = out
                .entry((
                    f.layer,
                    f.table,
                    f.partition.key.clone(),
                    f.date.clone(),
                    f.hour.clone(),
                ))
                .or_insert_with(|| PartitionListing {
                    layer: f.layer.dir(),
                    table: f.table.name(),
                    key: f.table.partition_key(),
                    value: f.partition.key.clone(),
                    date: f.date.clone(),
                    hour: f.hour.clone(),
                    files: 0,
                    rows: 0,
                    bytes: 0,
                    min_ts_ns: None,
                    max_ts_ns: None,
                });
            e.files += 1;
            e.rows += f.rows;
            e.bytes += f.bytes;
            e.min_ts_ns = match (e.min_ts_ns, f.min_ts) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            e.max_ts_ns = match (e.max_ts_ns, f.max_ts) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    Ok(out.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_paths_parse_into_partition_date_and_hour() {
        let p = "bronze/futures/mbp10/symbol=BRK%2FB/date=2026-12-03/hour=14/part-x-00000000000000000001-00000000000000000002.parquet";
        let (part, date, hour) = parse_path(Layer::Bronze, Table::FuturesMbp10, p).unwrap();
        assert_eq!(
            (part.key.as_str(), date.as_str(), hour.as_str()),
            ("BRK/B", "2026-12-03", "14")
        );
        assert!(parse_path(Layer::Bronze, Table::FuturesTrades, p).is_none());
        assert!(
            parse_path(
                Layer::Bronze,
                Table::FuturesMbp10,
                "bronze/futures/mbp10/symbol=X/date=d/hour=h/notes.txt"
            )
            .is_none()
        );
    }
}
