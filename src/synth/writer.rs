//! DBN output files: metadata with symbology mappings, and a buffered (optionally zstd)
//! record writer built on the `dbn` crate's encoder.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use dbn::encode::{DbnEncodable, DbnEncoder, DynWriter, EncodeRecord};
use dbn::{Compression, MappingInterval, Metadata, SType, Schema, SymbolMapping};

use super::SynthError;

/// Builds DBN metadata for `symbols` (raw symbol, instrument id) valid on the session's UTC date.
pub fn metadata(
    dataset: &str,
    schema: Option<Schema>,
    start_ns: u64,
    end_ns: u64,
    symbols: &[(String, u32)],
) -> Metadata {
    let mut meta = Metadata::builder()
        .dataset(dataset)
        .schema(schema)
        .start(start_ns)
        .end(std::num::NonZeroU64::new(end_ns))
        .stype_in(Some(SType::RawSymbol))
        .stype_out(SType::InstrumentId)
        .symbols(symbols.iter().map(|(s, _)| s.clone()).collect())
        .build();
    // The interval dates are `time::Date`s; take them from the metadata's own start so that this
    // crate needs no direct dependency on `time`.
    let start_date = meta.start().date();
    let end_date = meta
        .end()
        .map(|e| e.date())
        .unwrap_or(start_date)
        .next_day()
        .unwrap_or(start_date);
    meta.mappings = symbols
        .iter()
        .map(|(raw, id)| SymbolMapping {
            raw_symbol: raw.clone(),
            intervals: vec![MappingInterval {
                start_date,
                end_date,
                symbol: id.to_string(),
            }],
        })
        .collect();
    meta
}

type Inner = BufWriter<DynWriter<'static, BufWriter<File>>>;

/// One DBN file being written.
pub struct DbnOut {
    path: PathBuf,
    enc: DbnEncoder<Inner>,
    records: u64,
}

impl DbnOut {
    /// Creates `path` and writes the metadata. `zstd_level`: `None` writes plain DBN.
    pub fn create(
        path: &Path,
        meta: &Metadata,
        zstd_level: Option<i32>,
    ) -> Result<DbnOut, SynthError> {
        let io_err = |e: std::io::Error| SynthError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let dbn_err = |e: dbn::Error| SynthError::Dbn {
            path: path.to_path_buf(),
            source: e,
        };
        let file = BufWriter::with_capacity(1 << 16, File::create(path).map_err(io_err)?);
        let dynw = match zstd_level {
            Some(level) => DynWriter::with_compression_level(file, level),
            None => DynWriter::new(file, Compression::None),
        }
        .map_err(dbn_err)?;
        let enc =
            DbnEncoder::new(BufWriter::with_capacity(1 << 17, dynw), meta).map_err(dbn_err)?;
        Ok(DbnOut {
            path: path.to_path_buf(),
            enc,
            records: 0,
        })
    }

    /// Appends one record.
    #[inline]
    pub fn write<R: DbnEncodable>(&mut self, rec: &R) -> Result<(), SynthError> {
        self.records += 1;
        self.enc.encode_record(rec).map_err(|e| SynthError::Dbn {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes, ends the zstd frame and closes the file. Returns the record count.
    pub fn finish(mut self) -> Result<(PathBuf, u64), SynthError> {
        let path = self.path.clone();
        let io_err = |e: std::io::Error| SynthError::Io {
            path: path.clone(),
            source: e,
        };
        let buf = self.enc.get_mut();
        buf.flush().map_err(io_err)?;
        let dynw = buf.get_mut();
        dynw.finish().map_err(|e| SynthError::Dbn {
            path: path.clone(),
            source: e,
        })?;
        dynw.get_mut().flush().map_err(io_err)?;
        Ok((path, self.records))
    }
}
