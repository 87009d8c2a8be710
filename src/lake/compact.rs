//! `spm-lake compact`: bronze → silver, one object per (table, partition, hour), deduplicated
//! on event identity and sorted in the canonical order.
//!
//! Bronze holds each event of one input exactly once already; what it can hold twice is the
//! same data arriving through two inputs (a day piped twice under different input ids, or piped
//! and also read from the bus). An event's **identity** is its content (its canonical NDJSON
//! bytes, which include its event time) together with its ordinal among identical events of
//! its own input: two genuinely identical records of one feed stay two, while the same record
//! seen through a second input is a duplicate. Silver keeps, for each identity, the first copy
//! in the canonical merge order, with its lake position, so a lake fed by one input has the
//! same rows in silver as in bronze and `cat --layer silver` prints the same lines.
//!
//! Silver objects are written whole under a fixed name ([`SILVER_OBJECT`]), replacing the
//! previous one atomically (a local rename, an S3 PUT), and record a fingerprint of the bronze
//! objects and options they were built from: compacting again with nothing new changes
//! nothing. The merge streams (only events of one event time are held for deduplication), so
//! memory is bounded by the open files and the encoded output, not by the hour's rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use serde::Serialize;

use super::read::{FileInfo, LakeSource, Selection, find_files};
use super::table::encode_value;
use super::writer::{CHUNK_ROWS, SILVER_OBJECT, WriteOptions, properties};
use super::{Lake, LakeError, Layer, Table};

/// Key-value metadata of a silver object: the fingerprint of what it was built from.
pub const SOURCES_KEY: &str = "spm.silver.sources";

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Market tables to compact (every one when empty).
    pub tables: Vec<Table>,
    /// Encoding of the silver objects (`zstd_level`, `row_group_rows`).
    pub write: WriteOptions,
}

/// What became of one partition-hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new silver object was written.
    Written,
    /// The silver object already matches bronze: nothing written.
    Unchanged,
}

/// One partition-hour compacted.
#[derive(Debug, Clone, Serialize)]
pub struct Compacted {
    pub table: &'static str,
    pub key: &'static str,
    pub value: String,
    pub date: String,
    pub hour: String,
    pub bronze_files: usize,
    pub bronze_rows: u64,
    /// Rows in silver (equal to the bronze rows less the duplicates).
    pub silver_rows: u64,
    pub duplicates: u64,
    pub bytes: u64,
    pub outcome: Outcome,
}

/// Everything `compact` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    pub partitions: Vec<Compacted>,
}

impl CompactReport {
    /// The closing lines: totals of what was written and what was left as it was.
    pub fn summary(&self) -> String {
        let written = self
            .partitions
            .iter()
            .filter(|p| p.outcome == Outcome::Written);
        let (n, rows, dups) = written.fold((0, 0, 0), |(n, r, d), p| {
            (n + 1, r + p.silver_rows, d + p.duplicates)
        });
        let unchanged = self.partitions.len() - n;
        format!(
            "spm-lake compact: {n} silver objects written ({} rows, {} duplicates dropped), {unchanged} unchanged\n",
            crate::cli::thousands(rows),
            crate::cli::thousands(dups),
        )
    }
}

/// The bronze objects of one partition-hour.
struct Group {
    table: Table,
    value: String,
    date: String,
    hour: String,
    files: Vec<FileInfo>,
}

impl Group {
    fn silver_dir(&self) -> String {
        format!(
            "{}/{}/{}={}/date={}/hour={}",
            Layer::Silver.dir(),
            self.table.name(),
            self.table.partition_key(),
            encode_value(&self.value),
            self.date,
            self.hour
        )
    }

    fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// FNV-1a over the sorted bronze objects (path and size) and the encoding options.
    fn fingerprint(&self, write: &WriteOptions) -> String {
        let mut names: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("{}\0{}", f.path, f.bytes))
            .collect();
        names.sort();
        names.push(format!(
            "silver-v1\0zstd={}\0rg={}",
            write.zstd_level, write.row_group_rows
        ));
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in names.join("\n").bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}-{}", self.files.len())
    }
}

/// The partition-hours of the date and tables, with their bronze objects.
fn plan(lake: &Lake, opts: &CompactOptions) -> Result<Vec<Group>, LakeError> {
    let tables: Vec<Table> = if opts.tables.is_empty() {
        Table::BRONZE.to_vec()
    } else {
        opts.tables.clone()
    };
    if let Some(t) = tables.iter().find(|t| t.layer() != Layer::Bronze) {
        return Err(LakeError::Root {
            root: lake.root().to_string(),
            message: format!(
                "{} is a gold table: compact builds silver from the bronze tables",
                t.name()
            ),
        });
    }
    let sel = Selection {
        date: Some(opts.date.clone()),
        ..Selection::all(Layer::Bronze, tables)
    };
    let mut groups: BTreeMap<(Table, String, String), Group> = BTreeMap::new();
    for f in find_files(lake, &sel)? {
        groups
            .entry((f.table, f.partition.key.clone(), f.hour.clone()))
            .or_insert_with(|| Group {
                table: f.table,
                value: f.partition.key.clone(),
                date: f.date.clone(),
                hour: f.hour.clone(),
                files: Vec::new(),
            })
            .files
            .push(f);
    }
    Ok(groups.into_values().collect())
}

/// Compacts every partition-hour of the date; `progress` hears the bronze rows read so far
/// and the total.
pub fn compact(
    lake: &Lake,
    opts: &CompactOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<CompactReport, LakeError> {
    let groups = plan(lake, opts)?;
    let total: u64 = groups.iter().map(Group::rows).sum();
    let mut done = 0;
    let mut report = CompactReport::default();
    for group in groups {
        let rows = group.rows();
        let c = compact_group(lake, &group, &opts.write, |n| progress(done + n, total))?;
        done += rows;
        progress(done, total);
        report.partitions.push(c);
    }
    Ok(report)
}

fn compact_group(
    lake: &Lake,
    group: &Group,
    write: &WriteOptions,
    mut progress: impl FnMut(u64),
) -> Result<Compacted, LakeError> {
    let dir = group.silver_dir();
    let path = format!("{dir}/{SILVER_OBJECT}");
    let fingerprint = group.fingerprint(write);
    let mut result = Compacted {
        table: group.table.name(),
        key: group.table.partition_key(),
        value: group.value.clone(),
        date: group.date.clone(),
        hour: group.hour.clone(),
        bronze_files: group.files.len(),
        bronze_rows: group.rows(),
        silver_rows: 0,
        duplicates: 0,
        bytes: 0,
        outcome: Outcome::Unchanged,
    };
    let existing = lake.list(&dir)?;
    if existing.len() == 1 && existing[0].path == path {
        let sel = Selection {
            date: Some(group.date.clone()),
            symbol: Some(group.value.clone()),
            ..Selection::all(Layer::Silver, vec![group.table])
        };
        let current = find_files(lake, &sel)?
            .into_iter()
            .find(|f| f.path == path && f.key_value(SOURCES_KEY) == Some(&fingerprint));
        if let Some(f) = current {
            result.silver_rows = f.rows;
            result.duplicates = result.bronze_rows.saturating_sub(f.rows);
            result.bytes = f.bytes;
            return Ok(result);
        }
    }

    let full = |source| LakeError::Parquet {
        path: format!("{}/{path}", lake.root().trim_end_matches('/')),
        source,
    };
    let props = properties(write, lake.root())?
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SOURCES_KEY.to_string(),
            fingerprint,
        )]))
        .build();
    let schema = group.table.schema();
    let mut out = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(full)?;
    let mut rows = group.table.rows();
    let sel = Selection {
        date: Some(group.date.clone()),
        ..Selection::all(Layer::Bronze, vec![group.table])
    };
    let mut source = LakeSource::from_files(lake.reopen()?, sel, group.files.clone());
    let mut dedup = Dedup::default();
    let mut read: u64 = 0;
    let mut json = Vec::with_capacity(1024);
    loop {
        let next = source.next_stored().map_err(|e| LakeError::Corrupt {
            path: format!("{}/{dir}", lake.root().trim_end_matches('/')),
            message: e.to_string(),
        })?;
        let Some((stored, cursor)) = next else { break };
        read += 1;
        if read.is_multiple_of(65_536) {
            progress(read);
        }
        let input: Arc<str> = source.file(cursor).input().unwrap_or_default().into();
        json.clear();
        stored.event.write_json(&mut json);
        if !dedup.keep(stored.event.ts_event_ns(), input, &json) {
            result.duplicates += 1;
            continue;
        }
        rows.push(&stored.event, stored.lake_seq)
            .map_err(|reject| LakeError::Corrupt {
                path: source.file(cursor).path.clone(),
                message: format!("a stored event cannot be stored again: {reject}"),
            })?;
        result.silver_rows += 1;
        if rows.len() >= CHUNK_ROWS {
            out.write(&rows.take()).map_err(full)?;
        }
    }
    if !rows.is_empty() {
        out.write(&rows.take()).map_err(full)?;
    }
    let bytes = Bytes::from(out.into_inner().map_err(full)?);
    result.bytes = bytes.len() as u64;
    lake.put(&path, bytes)?;
    // Whatever else the directory held (an object from another tool, say) is not silver.
    for other in existing.iter().filter(|o| o.path != path) {
        tracing::warn!(object = %other.path, "removing a stray object from silver");
        lake.delete(&other.path)?;
    }
    result.outcome = Outcome::Written;
    Ok(result)
}

/// Identities seen at the current event time.
#[derive(Default)]
struct Dedup {
    ts: Option<u64>,
    /// Occurrences of each content per input so far at this event time.
    ordinal: HashMap<(Arc<str>, Vec<u8>), u32>,
    /// (content, ordinal) kept so far at this event time.
    kept: HashSet<(Vec<u8>, u32)>,
}

impl Dedup {
    /// True when this event (at `ts`, from `input`, with canonical bytes `content`) is the
    /// first copy of its identity.
    fn keep(&mut self, ts: u64, input: Arc<str>, content: &[u8]) -> bool {
        if self.ts != Some(ts) {
            self.ts = Some(ts);
            self.ordinal.clear();
            self.kept.clear();
        }
        let n = self.ordinal.entry((input, content.to_vec())).or_insert(0);
        let identity = (content.to_vec(), *n);
        *n += 1;
        self.kept.insert(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_events_of_one_input_are_kept_and_a_second_input_adds_only_what_is_new() {
        let mut d = Dedup::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        // Input a carries the same record twice at ts 1: both are real.
        assert!(d.keep(1, a.clone(), b"x"));
        assert!(d.keep(1, a.clone(), b"x"));
        // Input b carries it three times: two are duplicates, the third is new.
        assert!(!d.keep(1, b.clone(), b"x"));
        assert!(!d.keep(1, b.clone(), b"x"));
        assert!(d.keep(1, b.clone(), b"x"));
        assert!(!d.keep(1, a.clone(), b"x"), "a's third copy was b's third");
        // Same content at another time is another event.
        assert!(d.keep(2, b, b"x"));
        assert!(d.keep(2, a, b"y"));
    }
}
