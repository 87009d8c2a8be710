//! End-to-end tests of `spm-lake compact`: bronze → silver deduplicated on event identity,
//! sorted, one object per (table, partition, hour), idempotent, read by DuckDB.

mod common;

use std::path::Path;
use std::process::Command;

use common::lake::{archive, cat, core, lines, replay};
use common::lake_crash::LakeRoot;

fn compact_all(root: &Path) -> Vec<serde_json::Value> {
    LakeRoot::Local(root.to_path_buf()).compact_all()
}

fn bronze_dates(root: &Path) -> Vec<String> {
    LakeRoot::Local(root.to_path_buf()).bronze_dates()
}

/// Every object under `dir`, with its size and modification time.
fn objects(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            out.extend(objects(&p));
        } else {
            let m = e.metadata().unwrap();
            out.push((
                p.to_string_lossy().into_owned(),
                m.len(),
                m.modified().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

fn duckdb_count(glob: &Path) -> u64 {
    let script = format!(
        "import duckdb; print(duckdb.sql(\"select count(*) from read_parquet('{}', hive_partitioning=true)\").fetchall()[0][0])",
        glob.display()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "DuckDB is needed: run scripts/install-test-deps\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

#[test]
fn silver_is_one_sorted_object_per_partition_hour_equal_to_bronze_and_compacting_again_changes_nothing()
 {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = replay("ndjson");
    let root = dir.path().join("lake");
    // Small flushes: bronze has many objects per partition-hour.
    archive(&root, &ndjson, &["--flush-rows", "20000"]);
    let first = compact_all(&root);
    assert!(!first.is_empty());
    for p in &first {
        assert_eq!(p["outcome"], "written", "{p}");
        assert_eq!(p["duplicates"], 0, "{p}");
        assert_eq!(p["bronze_rows"], p["silver_rows"], "{p}");
    }
    assert!(
        first
            .iter()
            .any(|p| p["bronze_files"].as_u64().unwrap() > 1),
        "the test needs partition-hours of several bronze objects"
    );
    // One object per partition-hour.
    let silver = objects(&root.join("silver"));
    assert_eq!(silver.len(), first.len());
    assert!(
        silver
            .iter()
            .all(|(p, _, _)| p.ends_with("/part-compacted.parquet"))
    );
    // The same events, in the same order, and the same signals from them.
    let back = cat(&root, &["--layer", "silver"]);
    assert_eq!(lines(&back), lines(&ndjson));
    assert!(back == ndjson, "silver read back differs from the replay");
    assert!(core(&back) == core(&ndjson));
    let tables = [
        "futures/trades",
        "futures/mbp10",
        "options/trades",
        "stocks/trades",
        "stocks/quotes",
    ];
    let counted: u64 = tables
        .iter()
        .filter(|t| root.join("silver").join(t).exists())
        .map(|t| duckdb_count(&root.join("silver").join(t).join("**/*.parquet")))
        .sum();
    assert_eq!(counted, lines(&ndjson) as u64, "DuckDB counts silver");

    // Again: nothing written, nothing touched.
    let second = compact_all(&root);
    assert!(
        second.iter().all(|p| p["outcome"] == "unchanged"),
        "{second:?}"
    );
    assert_eq!(objects(&root.join("silver")), silver, "silver changed");
}

#[test]
fn the_same_day_stored_through_two_inputs_is_deduplicated_in_silver_and_identical_records_survive()
{
    let dir = tempfile::tempdir().unwrap();
    let ndjson = replay("ndjson");
    let root = dir.path().join("lake");
    archive(&root, &ndjson, &["--input-id", "first"]);
    // The sample has byte-identical records (same time, same content): they are distinct
    // events and must all stay.
    let mut seen = std::collections::HashSet::new();
    let repeated = ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !seen.insert(*l))
        .count();
    eprintln!("byte-identical repeated lines in the sample: {repeated}");
    // A second input carrying the same day, with a different batching.
    archive(
        &root,
        &ndjson,
        &["--input-id", "second", "--flush-rows", "30000"],
    );
    assert_eq!(
        lines(&cat(&root, &[])),
        2 * lines(&ndjson),
        "bronze holds both inputs"
    );
    let report = compact_all(&root);
    let dups: u64 = report
        .iter()
        .map(|p| p["duplicates"].as_u64().unwrap())
        .sum();
    assert_eq!(
        dups,
        lines(&ndjson) as u64,
        "the second copy of every event is dropped"
    );
    let silver = cat(&root, &["--layer", "silver"]);
    assert!(silver == ndjson, "silver differs from the day");

    // A third input that holds only part of the day adds nothing; a date filter compacts
    // only that date.
    let half: Vec<u8> = ndjson
        .split_inclusive(|&b| b == b'\n')
        .take(lines(&ndjson) / 2)
        .flatten()
        .copied()
        .collect();
    archive(&root, &half, &["--input-id", "third"]);
    let dates = bronze_dates(&root);
    let again = compact_all(&root);
    assert!(again.iter().any(|p| p["outcome"] == "written"));
    let dups: u64 = again
        .iter()
        .map(|p| p["duplicates"].as_u64().unwrap())
        .sum();
    assert_eq!(dups, (lines(&ndjson) + lines(&half)) as u64);
    assert!(cat(&root, &["--layer", "silver"]) == ndjson);
    assert!(!dates.is_empty());
}

#[test]
fn compact_refuses_gold_and_a_bad_date_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_spm-lake"))
            .arg("--root")
            .arg(dir.path().join("lake"))
            .arg("compact")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--date", "2025-13-40"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"));
    let out = run(&["--date", "2025-11-21", "--table", "levels/signals"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gold table"), "{err}");
}
