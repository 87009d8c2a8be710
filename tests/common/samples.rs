//! The Databento sample files beside the repository, and large files made from their records.
#![allow(dead_code)]

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use dbn::decode::{DbnDecoder, DbnMetadata, DecodeRecord};
use dbn::encode::{DbnEncoder, EncodeRecord};
use dbn::{Mbp10Msg, VersionUpgradePolicy};

/// `../shared/dbn-samples`, or None after printing why the calling test is skipped.
pub fn samples_dir() -> Option<PathBuf> {
    let found = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/dbn-samples"),
        PathBuf::from("/work/shared/dbn-samples"),
    ]
    .into_iter()
    .find(|p| p.is_dir());
    if found.is_none() {
        println!("skipping: ../shared/dbn-samples not found");
    }
    found
}

/// Writes `records` MBP-10 records to `path`: the sample's real records again and again, each
/// copy shifted 1 ms later, with sequence numbers counting up.
pub fn write_repeated_mbp10(sample: &Path, path: &Path, records: u64) {
    let mut decoder = DbnDecoder::from_file(sample).expect("open sample");
    decoder
        .set_upgrade_policy(VersionUpgradePolicy::UpgradeToV3)
        .expect("upgrade policy");
    let mut base = Vec::new();
    while let Some(r) = decoder.decode_record::<Mbp10Msg>().expect("decode sample") {
        base.push(r.clone());
    }
    assert!(!base.is_empty(), "sample has no MBP-10 records");
    let mut metadata = decoder.metadata().clone();
    metadata.limit = None;
    metadata.end = None;
    let tmp = path.with_extension("tmp");
    let mut encoder = DbnEncoder::new(
        BufWriter::new(File::create(&tmp).expect("create")),
        &metadata,
    )
    .expect("encoder");
    let n = base.len() as u64;
    let first_seq = base[0].sequence;
    for k in 0..records {
        let mut r = base[(k % n) as usize].clone();
        let shift = (k / n) * 1_000_000;
        r.hd.ts_event += shift;
        r.ts_recv += shift;
        r.sequence = first_seq.wrapping_add(k as u32);
        encoder.encode_record(&r).expect("encode");
    }
    drop(encoder);
    std::fs::rename(&tmp, path).expect("rename");
}
