//! The lake: every event and every snap archived as Parquet, on disk or S3.
//!
//! Layout (DESIGN.md "Lake"): `{root}/{layer}/{table}/{key}={value}/date=YYYY-MM-DD/hour=HH/
//! part-{id}.parquet`, dates and hours in UTC from event time. The partition values are in the
//! path only (hive style), not in the files, so every reader that understands hive partitioning
//! sees them once.
//!
//! - [`table`]: the tables, their partitions and their Arrow schemas.
//! - [`bronze`] and [`gold`]: events ↔ typed columns, both ways, for the market tables and for
//!   the level signals (one row per level per snap).
//! - [`store`]: the root (a local directory or `s3://bucket/prefix`) behind one `object_store`
//!   code path, with durable writes.
//! - [`writer`]: batching per (table, partition), flushing, object names derived from the data.
//! - [`read`]: `cat` and `ls`, reading the lake back into canonical events.
//! - [`compact`]: bronze → silver, deduplicated and sorted, one object per partition-hour.
//! - [`archive`]: the archiving loop shared by the pipe and the bus.

pub mod archive;
pub mod bronze;
pub mod compact;
pub mod feeds;
pub mod gold;
pub mod read;
pub mod store;
pub mod table;
pub mod writer;

pub use store::{Lake, StoreConfig};
pub use table::{Layer, Table};
pub use writer::{LakeWriter, WriteOptions};

use arrow_array::RecordBatch;

use crate::event::Event;

/// Errors of the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake root {root}: {message}")]
    Root { root: String, message: String },
    #[error("{path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("cannot start the lake's I/O runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Why an event cannot be stored (it is reported with its position, counted and skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reject(pub &'static str);

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Rows of one table gathered for a Parquet object, column by column.
pub trait TableRows: Send {
    /// Appends one event of this table's kind, stored with its lake position (`lake_seq`: the
    /// JetStream stream sequence, or the 0-based index of the event in a piped input). Nothing
    /// is appended when the schema cannot hold the event.
    fn push(&mut self, event: &Event, lake_seq: u64) -> Result<(), Reject>;
    /// Rows pushed since the last [`TableRows::take`].
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows pushed so far as one batch of the table's schema; starts afresh.
    fn take(&mut self) -> RecordBatch;
}

/// One event read back from the lake, with what orders it in the canonical merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub event: Event,
    pub lake_seq: u64,
}

/// The values a file's path gives it (hive partition columns are not inside the files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionValues {
    /// `symbol` or `underlying`, decoded.
    pub key: String,
}
