//! The lake's tables: where each kind of event is stored, how it is partitioned, its schema.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};

use super::{LakeError, PartitionValues, Stored, TableRows, bronze, feeds, gold};
use crate::event::{Event, EventKind};

/// A layer of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// What the bus carried, as it came (one object per flushed batch).
    Bronze,
    /// Bronze deduplicated and sorted, one object per (table, partition, hour).
    Silver,
    /// Derived data: the engine's level signals.
    Gold,
}

impl Layer {
    pub fn dir(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        }
    }
}

/// A table of the lake; each event kind has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Table {
    #[value(name = "futures/trades")]
    FuturesTrades,
    #[value(name = "futures/mbp10")]
    FuturesMbp10,
    #[value(name = "options/trades")]
    OptionsTrades,
    #[value(name = "stocks/trades")]
    StocksTrades,
    #[value(name = "stocks/quotes")]
    StocksQuotes,
    #[value(name = "levels/signals")]
    LevelSignals,
    #[value(name = "feeds/status")]
    FeedsStatus,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::FuturesTrades,
        Table::FuturesMbp10,
        Table::OptionsTrades,
        Table::StocksTrades,
        Table::StocksQuotes,
        Table::LevelSignals,
        Table::FeedsStatus,
    ];

    /// The market tables (what `cat` reads by default).
    pub const BRONZE: [Table; 5] = [
        Table::FuturesTrades,
        Table::FuturesMbp10,
        Table::OptionsTrades,
        Table::StocksTrades,
        Table::StocksQuotes,
    ];

    pub fn of(kind: EventKind) -> Table {
        match kind {
            EventKind::FuturesTrade => Table::FuturesTrades,
            EventKind::Mbp10 => Table::FuturesMbp10,
            EventKind::OptionTrade => Table::OptionsTrades,
            EventKind::StockTrade => Table::StocksTrades,
            EventKind::StockQuote => Table::StocksQuotes,
            EventKind::LevelSignals => Table::LevelSignals,
            EventKind::FeedStatus => Table::FeedsStatus,
        }
    }

    pub fn kind(self) -> EventKind {
        match self {
            Table::FuturesTrades => EventKind::FuturesTrade,
            Table::FuturesMbp10 => EventKind::Mbp10,
            Table::OptionsTrades => EventKind::OptionTrade,
            Table::StocksTrades => EventKind::StockTrade,
            Table::StocksQuotes => EventKind::StockQuote,
            Table::LevelSignals => EventKind::LevelSignals,
            Table::FeedsStatus => EventKind::FeedStatus,
        }
    }

    /// The table's path under its layer, e.g. `futures/mbp10`.
    pub fn name(self) -> &'static str {
        match self {
            Table::FuturesTrades => "futures/trades",
            Table::FuturesMbp10 => "futures/mbp10",
            Table::OptionsTrades => "options/trades",
            Table::StocksTrades => "stocks/trades",
            Table::StocksQuotes => "stocks/quotes",
            Table::LevelSignals => "levels/signals",
            Table::FeedsStatus => "feeds/status",
        }
    }

    /// Where new rows of this table go.
    pub fn layer(self) -> Layer {
        match self {
            Table::LevelSignals => Layer::Gold,
            _ => Layer::Bronze,
        }
    }

    /// The hive key of the table's first partition level.
    pub fn partition_key(self) -> &'static str {
        match self {
            Table::OptionsTrades | Table::LevelSignals => "underlying",
            Table::FeedsStatus => "source",
            _ => "symbol",
        }
    }

    /// The name of the event-time column (the sort key inside each file).
    pub fn time_column(self) -> &'static str {
        match self {
            Table::LevelSignals => "snap_ts",
            Table::FeedsStatus => "ts_ns",
            _ => "ts_event_ns",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            Table::LevelSignals => gold::schema(),
            Table::FeedsStatus => feeds::schema(),
            _ => bronze::schema(self),
        }
    }

    /// An empty set of rows for this table.
    pub fn rows(self) -> Box<dyn TableRows> {
        match self {
            Table::LevelSignals => Box::new(gold::SignalRows::default()),
            Table::FeedsStatus => Box::new(feeds::StatusRows::default()),
            _ => bronze::rows(self),
        }
    }

    /// Reads one batch of this table back into events, appending to `out`.
    pub fn read(
        self,
        batch: &RecordBatch,
        partition: &PartitionValues,
        path: &str,
        out: &mut Vec<Stored>,
    ) -> Result<(), LakeError> {
        match self {
            Table::LevelSignals => gold::read(batch, path, out),
            Table::FeedsStatus => feeds::read(batch, partition, path, out),
            _ => bronze::read(self, batch, partition, path, out),
        }
    }
}

/// The partition value of an event: its symbol, or its underlying.
pub fn partition_value(event: &Event) -> &str {
    match event {
        Event::FuturesTrade(e) => &e.symbol,
        Event::Mbp10(e) => &e.symbol,
        Event::OptionTrade(e) => &e.underlying,
        Event::StockTrade(e) => &e.symbol,
        Event::StockQuote(e) => &e.symbol,
        // The engine's snaps are of one underlying, SPY (the payload's `spy` quote).
        Event::LevelSignals(_) => "SPY",
        Event::FeedStatus(e) => &e.source,
    }
}

/// A UTC timestamp in nanoseconds, as the lake stores every time.
pub fn timestamp_ns() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(Arc::from("UTC")))
}

/// The column every table carries last: the event's position in what the lake read.
pub fn lake_seq_field() -> Field {
    Field::new("lake_seq", DataType::UInt64, false)
}

/// Hive path values are percent-encoded where a character could break a path or a reader.
pub fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_value`]; `None` when the text is not a valid encoding.
pub fn decode_value(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_survive_encoding_whatever_their_characters() {
        for v in ["ESZ6", "BRK/B", "a b=c%", "ÉS", ""] {
            assert_eq!(decode_value(&encode_value(v)).as_deref(), Some(v));
        }
        assert_eq!(encode_value("ES.c.0"), "ES.c.0");
        assert_eq!(encode_value("BRK/B"), "BRK%2FB");
        assert_eq!(decode_value("%G1"), None);
    }

    #[test]
    fn every_kind_has_one_table_and_back() {
        for kind in EventKind::ALL {
            assert_eq!(Table::of(kind).kind(), kind);
        }
    }
}
