//! DBN records → canonical events (symbology, definitions, aggressor).
//!
//! [`DbnEventReader`] streams one Databento DBN file or byte stream (DBN v1, v2 or v3, plain or
//! zstd-compressed, detected from the first bytes) and yields canonical [`Event`]s with bounded
//! memory. Records of DBN v1 and v2 are upgraded to v3 while decoding, so every version of the
//! same data gives the same events. The dataset's market is decided by its prefix
//! ([`Market::of_dataset`]): `GLBX.*` (and the other futures venues `IFEU.`, `IFUS.`, `IFLL.`,
//! `NDEX.`, `XEUR.`) are futures, `OPRA.*` options, everything else equities.
//!
//! | record (schema)                          | futures (GLBX…)        | options (OPRA)                    | equities                 |
//! |------------------------------------------|------------------------|-----------------------------------|--------------------------|
//! | `Mbp10Msg` (`mbp-10`)                    | `mbp10`                | skipped                           | skipped                  |
//! | `TradeMsg` (`trades`)                    | `futures_trade`        | `option_trade` (no quote)         | `stock_trade`            |
//! | `Mbp1Msg` action `T` (`tbbo`, `mbp-1`)   | `futures_trade`        | `option_trade` + quote            | `stock_trade`            |
//! | `Mbp1Msg` other actions (`mbp-1`)        | skipped                | skipped                           | `stock_quote`            |
//! | `Cmbp1Msg` action `T` (`tcbbo`, `cmbp-1`)| `futures_trade`        | `option_trade` + quote            | `stock_trade`            |
//! | `Cmbp1Msg` other actions (`cmbp-1`)      | skipped                | skipped                           | `stock_quote`            |
//! | `CbboMsg`/`BboMsg` (`cbbo-*`, `bbo-*`)   | skipped                | `option_trade` per new last sale  | `stock_quote`            |
//! | `InstrumentDefMsg` (`definition`)        | symbol                 | symbol + contract terms           | symbol                   |
//! | `SymbolMappingMsg`                       | symbol                 | symbol                            | symbol                   |
//! | `ErrorMsg` / `SystemMsg`                 | logged                 | logged                            | logged                   |
//! | anything else (mbo, ohlcv, statistics…)  | skipped                | skipped                           | skipped                  |
//!
//! Field by field:
//! - `ts_event_ns` is the record's `ts_event`, `ts_recv_ns` its `ts_recv`. Interval records
//!   (bbo/cbbo) stamp a quote with the interval end (`ts_recv`) for both, because their
//!   `ts_event` is the time of the last sale, not of the quote.
//! - Prices are the fixed-point integer / 1e9. The undefined-price sentinel never leaves this
//!   module: an empty book row or a missing quote side has a `null` price and size 0 (and no
//!   order count), a trade with an undefined price is skipped.
//! - `aggressor` comes from the DBN side: `B` → 1 (buy), `A` → -1 (sell), `N` → 0 (unknown; the
//!   engine classifies option trades against their quote).
//! - `mbp10` carries the record's `action`, `side`, `price`, `size`, `flags`, `sequence` as
//!   `seq`, the per-row order counts and `is_snapshot` from the snapshot flag. MBP-10 records
//!   with action `T` stay book events (the `trades` schema is the source of futures trades), so
//!   replaying `mbp-10` together with `trades` counts every print once.
//! - Futures `mbp-1`/`bbo`/`cbbo` quotes are skipped: they are not 10-level book images.
//! - Options: contract terms come from `definition` records seen earlier in the same stream
//!   (strike = `strike_price`, right = `instrument_class` `C`/`P`, `exp_date` from `expiration`,
//!   underlying = `underlying` or else `asset`, option symbol = `raw_symbol`). A midnight-UTC
//!   expiration (OPRA's date-only stamp) is that UTC date; any other expiration is converted to
//!   its US/Eastern date. A trade before its instrument's definition is skipped and counted
//!   (and logged once per instrument), never guessed. Trade files (`tcbbo`, `trades`) usually
//!   carry no definitions: load the day's `definition` file with
//!   [`DbnEventReader::load_definitions`] and hand it to the trade file's reader with
//!   [`DbnEventReader::add_definitions`]. `opt_bid`/`opt_ask` come from the record's
//!   top level where it has one (tbbo, tcbbo, cmbp-1, mbp-1, cbbo, bbo; for interval records it
//!   is the quote at the interval end). Interval records repeat the last sale until a new one
//!   happens, so a sale is emitted only when its `ts_event` differs from the last one emitted for
//!   the instrument.
//! - Symbols: `SymbolMappingMsg` records and definitions (latest wins), then the metadata's
//!   dated mappings (raw, continuous or other contract-naming symbology). Parent symbology
//!   (`ES.FUT`) names a product, not a contract, so it is not used. A record whose instrument
//!   has no symbol is skipped with the reason "no symbol mapping".
//! - `source` is the caller's string (`spm-replay` passes `replay`).
//!
//! Every skipped record is counted by reason in [`DbnEventReader::skipped`]. Truncated or
//! corrupt input is an error naming the file and the byte offset of the record where it
//! stopped (an offset in the decompressed stream for zstd input); every event before that
//! point has been returned first.

mod map;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Chain, Cursor, Read};
use std::path::Path;

use ::dbn::decode::DynReader;
use ::dbn::decode::dbn::fsm::{DbnFsm, ProcessResult};
use ::dbn::{Metadata, VersionUpgradePolicy};

use map::count;
pub use map::{
    Definitions, Mapper, Market, OptionTerms, Outcome, aggressor, exp_date, price, reason,
    unsupported_reason,
};

use crate::event::Event;
use crate::io::{EventSource, SourceError};

/// Size of the decoder's read buffer.
const BUFFER_SIZE: usize = 256 * 1024;

/// An error reading a DBN input, naming the input.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {kind}")]
pub struct DbnError {
    /// The file name (or stream name) given when opening.
    pub file: String,
    pub kind: DbnErrorKind,
}

/// Which stream offsets are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Offsets are in the file itself.
    Plain,
    /// Offsets are in the decompressed zstd stream.
    Decompressed,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Plain => Ok(()),
            Stream::Decompressed => f.write_str(" (decompressed stream)"),
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum DbnErrorKind {
    #[error("cannot open: {0}")]
    Open(#[source] io::Error),
    #[error("not readable as DBN: {0}")]
    Metadata(String),
    #[error("truncated record at byte offset {offset}{stream}")]
    Truncated { offset: u64, stream: Stream },
    #[error("corrupt record at byte offset {offset}{stream}: {message}")]
    Corrupt {
        offset: u64,
        stream: Stream,
        message: String,
    },
    #[error("read failed at byte offset {offset}{stream}: {source}")]
    Io {
        offset: u64,
        stream: Stream,
        #[source]
        source: io::Error,
    },
}

impl DbnErrorKind {
    /// The byte offset of the record where reading stopped, if the error has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            DbnErrorKind::Truncated { offset, .. }
            | DbnErrorKind::Corrupt { offset, .. }
            | DbnErrorKind::Io { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

type Input = DynReader<'static, BufReader<Chain<Cursor<Vec<u8>>, Box<dyn Read + Send>>>>;

/// Streams one DBN input as canonical events.
pub struct DbnEventReader {
    name: String,
    input: Input,
    stream: Stream,
    fsm: DbnFsm,
    metadata: Metadata,
    mapper: Mapper,
    /// Bytes of the (decompressed) stream handed to the decoder so far.
    fed: u64,
    /// Offset of the end of the last record decoded: where the next one starts.
    next_record: u64,
    records_read: u64,
    skipped: BTreeMap<String, u64>,
    /// Set after the end of input or an error: further calls return `Ok(None)`.
    finished: bool,
}

impl fmt::Debug for DbnEventReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbnEventReader")
            .field("name", &self.name)
            .field("stream", &self.stream)
            .field("dataset", &self.metadata.dataset)
            .field("records_read", &self.records_read)
            .field("next_record", &self.next_record)
            .finish_non_exhaustive()
    }
}

impl DbnEventReader {
    /// Opens a DBN file (`.dbn` or `.dbn.zst`, compression detected from its first bytes) and
    /// reads its metadata. Events are stamped with `source`.
    pub fn open(path: &Path, source: &str) -> Result<Self, DbnError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| DbnError {
            file: name.clone(),
            kind: DbnErrorKind::Open(e),
        })?;
        Self::from_reader(file, &name, source)
    }

    /// Reads DBN from any byte stream (e.g. stdin), zstd detected from the first bytes. `name`
    /// names the stream in errors.
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        name: &str,
        source: &str,
    ) -> Result<Self, DbnError> {
        let err = |kind| DbnError {
            file: name.to_owned(),
            kind,
        };
        let mut reader: Box<dyn Read + Send> = Box::new(reader);
        // Read the first bytes ourselves so that compression detection sees a whole magic
        // number even from a pipe that delivers them in pieces.
        let mut prefix = Vec::with_capacity(4);
        (&mut reader)
            .take(4)
            .read_to_end(&mut prefix)
            .map_err(|e| err(DbnErrorKind::Open(e)))?;
        if prefix.is_empty() {
            return Err(err(DbnErrorKind::Metadata("empty input".into())));
        }
        let buffered = BufReader::with_capacity(BUFFER_SIZE, Cursor::new(prefix).chain(reader));
        let mut input = DynReader::inferred_with_buffer(buffered)
            .map_err(|e| err(DbnErrorKind::Metadata(e.to_string())))?;
        let stream = if input.is_compressed() {
            Stream::Decompressed
        } else {
            Stream::Plain
        };
        let mut fsm = DbnFsm::builder()
            .upgrade_policy(VersionUpgradePolicy::UpgradeToV3)
            .buffer_size(BUFFER_SIZE)
            .build()
            .map_err(|e| err(DbnErrorKind::Metadata(e.to_string())))?;
        let mut fed = 0;
        let metadata = read_metadata(&mut input, &mut fsm, &mut fed).map_err(err)?;
        let next_record = fed - fsm.data().len() as u64;
        Ok(DbnEventReader {
            name: name.to_owned(),
            input,
            stream,
            fsm,
            mapper: Mapper::new(&metadata, source),
            metadata,
            fed,
            next_record,
            records_read: 0,
            skipped: BTreeMap::new(),
            finished: false,
        })
    }

    fn error(&self, kind: DbnErrorKind) -> DbnError {
        DbnError {
            file: self.name.clone(),
            kind,
        }
    }

    /// Offset of the first byte the decoder has not consumed.
    fn consumed(&self) -> u64 {
        self.fed - self.fsm.data().len() as u64
    }

    /// Reads more input into the decoder; `Ok(false)` at the end of input.
    fn fill(&mut self) -> Result<bool, DbnError> {
        match fill(&mut self.input, &mut self.fsm, &mut self.fed) {
            Ok(more) => Ok(more),
            Err(e) => {
                let offset = self.consumed();
                let stream = self.stream;
                Err(self.error(if e.kind() == io::ErrorKind::UnexpectedEof {
                    // A compressed stream cut short.
                    DbnErrorKind::Truncated { offset, stream }
                } else {
                    DbnErrorKind::Io {
                        offset,
                        stream,
                        source: e,
                    }
                }))
            }
        }
    }

    /// The file's metadata (dataset, schema, symbology), upgraded to DBN v3.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The market the dataset belongs to.
    pub fn market(&self) -> Market {
        self.mapper.market()
    }

    /// The contract terms known so far for an option instrument (from its definition).
    pub fn option_terms(&self, instrument_id: u32) -> Option<&OptionTerms> {
        self.mapper.option_terms(instrument_id)
    }

    /// Everything this reader has learnt so far from definition and symbol mapping records.
    pub fn definitions(&self) -> Definitions {
        self.mapper.definitions()
    }

    /// Teaches this reader definitions read elsewhere (e.g. the day's OPRA `definition` file
    /// for a `tcbbo` file), as if they had come first in this stream. Definitions met later in
    /// the stream replace them.
    pub fn add_definitions(&mut self, defs: &Definitions) {
        self.mapper.add_definitions(defs);
    }

    /// Reads a whole DBN file (typically a `definition` file) and returns its definitions.
    pub fn load_definitions(path: &Path) -> Result<Definitions, DbnError> {
        let mut reader = Self::open(path, "definitions")?;
        while reader.next_event()?.is_some() {}
        Ok(reader.definitions())
    }

    /// Opens several files for one replay. Definitions of `definition` files (e.g. the day's
    /// OPRA definitions) are read first and taught to every reader of the same market, since
    /// Databento's trade files carry none; those files still take part in the replay.
    pub fn open_all(paths: &[&Path], source: &str) -> Result<Vec<Self>, DbnError> {
        let mut readers = paths
            .iter()
            .map(|p| Self::open(p, source))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, path) in paths.iter().enumerate() {
            if readers[i].metadata().schema != Some(::dbn::Schema::Definition) {
                continue;
            }
            let defs = Self::load_definitions(path)?;
            let market = readers[i].market();
            for (j, reader) in readers.iter_mut().enumerate() {
                if j != i && reader.market() == market {
                    reader.add_definitions(&defs);
                }
            }
        }
        Ok(readers)
    }

    /// The name given when opening.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records skipped so far, by reason.
    pub fn skipped(&self) -> &BTreeMap<String, u64> {
        &self.skipped
    }

    /// Records decoded so far (events, skipped and control records).
    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// Byte offset where the next record starts (in the decompressed stream for zstd input).
    pub fn offset(&self) -> u64 {
        self.next_record
    }

    /// The next event, `Ok(None)` at the end. Unsupported records are skipped and counted.
    pub fn next_event(&mut self) -> Result<Option<Event>, DbnError> {
        if self.finished {
            return Ok(None);
        }
        let res = self.advance();
        if !matches!(res, Ok(Some(_))) {
            self.finished = true;
        }
        res
    }

    fn advance(&mut self) -> Result<Option<Event>, DbnError> {
        loop {
            match self.fsm.process() {
                ProcessResult::Record(()) => {
                    self.records_read += 1;
                    self.next_record = self.consumed();
                    let Some(rec) = self.fsm.last_record() else {
                        continue;
                    };
                    match self.mapper.map(rec) {
                        Outcome::Event(ev) => return Ok(Some(ev)),
                        Outcome::Skip(why) => count(&mut self.skipped, why),
                        Outcome::Applied => {}
                    }
                }
                ProcessResult::ReadMore(_) => {
                    if !self.fill()? {
                        let left = self.fsm.data().len();
                        if left == 0 {
                            return Ok(None);
                        }
                        let offset = self.consumed();
                        return Err(self.error(DbnErrorKind::Truncated {
                            offset,
                            stream: self.stream,
                        }));
                    }
                }
                ProcessResult::Err(e) => {
                    let offset = self.consumed();
                    return Err(self.error(DbnErrorKind::Corrupt {
                        offset,
                        stream: self.stream,
                        message: e.to_string(),
                    }));
                }
                ProcessResult::Metadata(_) => {
                    let offset = self.consumed();
                    return Err(self.error(DbnErrorKind::Corrupt {
                        offset,
                        stream: self.stream,
                        message: "second metadata header".into(),
                    }));
                }
            }
        }
    }
}

/// Reads more input into the decoder, counting the bytes; `Ok(false)` at the end of input.
fn fill(input: &mut Input, fsm: &mut DbnFsm, fed: &mut u64) -> io::Result<bool> {
    loop {
        match input.read(fsm.space()) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                fsm.fill(n);
                *fed += n as u64;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Feeds the decoder until it has decoded the metadata header.
fn read_metadata(
    input: &mut Input,
    fsm: &mut DbnFsm,
    fed: &mut u64,
) -> Result<Metadata, DbnErrorKind> {
    loop {
        match fsm.process() {
            ProcessResult::Metadata(metadata) => return Ok(metadata),
            ProcessResult::ReadMore(_) => match fill(input, fsm, fed) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(DbnErrorKind::Metadata(
                        "truncated metadata (input ends inside the header)".into(),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(DbnErrorKind::Metadata(
                        "truncated metadata (compressed stream cut short)".into(),
                    ));
                }
                Err(e) => return Err(DbnErrorKind::Open(e)),
            },
            ProcessResult::Record(()) => {
                return Err(DbnErrorKind::Metadata("record before metadata".into()));
            }
            ProcessResult::Err(e) => return Err(DbnErrorKind::Metadata(e.to_string())),
        }
    }
}

impl Iterator for DbnEventReader {
    type Item = Result<Event, DbnError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

impl EventSource for DbnEventReader {
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        DbnEventReader::next_event(self).map_err(|e| SourceError::Fatal {
            input: e.file,
            message: e.kind.to_string(),
        })
    }

    fn recycle(&mut self, event: Event) {
        self.mapper.recycle(event);
    }
}

#[cfg(test)]
mod tests;
