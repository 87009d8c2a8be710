//! `spm-lake` archive speed on a full synthetic regular session (6.5 h from `spm-synth`): bronze
//! rows/s from stdin in both pipe formats, our own NDJSON parse ceiling on the same file, and
//! DuckDB converting the same NDJSON to Parquet with the same MBP-10 flattening (`COPY … TO …
//! (FORMAT parquet)`), side by side; the peak memory of each `spm-lake` run, and the bytes per
//! MBP-10 row in the lake against the `.dbn.zst` input. Set SPM_BENCH_HOURS for a shorter
//! session, SPM_BENCH_NO_DUCKDB=1 to leave DuckDB out.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use spymaster::event::EventKind;
use spymaster::io::EventSource;
use spymaster::io::pipe::PipeSource;

use support::{mb, measure, rate, session, session_pipe};

/// Reads the piped session in process, as `spm-lake --input stdin` does, and only counts.
fn parse_ceiling(path: &Path) -> (BTreeMap<&'static str, u64>, std::time::Duration) {
    let file = std::fs::File::open(path).expect("session file");
    let mut source = PipeSource::new(std::io::BufReader::with_capacity(1 << 20, file), "bench");
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let start = Instant::now();
    while let Some(event) = source.next_event().expect("the session parses") {
        *counts.entry(event.kind().type_name()).or_default() += 1;
    }
    (counts, start.elapsed())
}

/// `spm-lake --input stdin --root ROOT < path`.
fn archive(path: &Path, root: &Path) -> support::Measured {
    let m = measure(
        Command::new(env!("CARGO_BIN_EXE_spm-lake"))
            .arg("--root")
            .arg(root)
            .args(["--input", "stdin", "--input-id", "bench"])
            .stdin(std::fs::File::open(path).expect("session file"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(m.status.success(), "spm-lake failed");
    m
}

/// (rows, bytes) of one bronze table, from `spm-lake ls --format json`.
fn stored(root: &Path, table: &str) -> (u64, u64) {
    let out = Command::new(env!("CARGO_BIN_EXE_spm-lake"))
        .arg("--root")
        .arg(root)
        .args(["ls", "--format", "json"])
        .output()
        .expect("spm-lake ls");
    assert!(out.status.success(), "spm-lake ls failed");
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ls json");
    listing
        .as_array()
        .expect("a list")
        .iter()
        .filter(|p| p["layer"] == "bronze" && p["table"] == table)
        .fold((0, 0), |(r, b), p| {
            (
                r + p["rows"].as_u64().unwrap_or(0),
                b + p["bytes"].as_u64().unwrap_or(0),
            )
        })
}

/// DuckDB: the session's NDJSON → one Parquet file of the MBP-10 rows, flattened as the lake
/// flattens them (`bid_px_1 … ask_ct_10` plus the record fields, nanosecond timestamps), ZSTD 3,
/// the lake's row-group size. Returns (rows written, wall, peak RSS) or `None` without DuckDB.
fn duckdb_copy(ndjson: &Path, out: &Path) -> Option<(u64, support::Measured)> {
    let mut level_cols = Vec::new();
    for i in 1..=10 {
        for side in ["bid", "ask"] {
            for f in ["px", "sz", "ct"] {
                level_cols.push(format!("levels[{i}].{side}_{f} AS {side}_{f}_{i}"));
            }
        }
    }
    let sql = format!(
        "COPY (SELECT make_timestamp_ns(ts_event_ns::BIGINT) AS ts_event_ns, \
         make_timestamp_ns(ts_recv_ns::BIGINT) AS ts_recv_ns, symbol, {levels}, \
         action, side, price, size, flags, is_snapshot, seq \
         FROM read_json('{input}', format = 'newline_delimited', columns = {{ \
           type: 'VARCHAR', ts_event_ns: 'UBIGINT', ts_recv_ns: 'UBIGINT', symbol: 'VARCHAR', \
           levels: 'STRUCT(bid_px DOUBLE, bid_sz UINTEGER, bid_ct UINTEGER, ask_px DOUBLE, ask_sz UINTEGER, ask_ct UINTEGER)[]', \
           is_snapshot: 'BOOLEAN', seq: 'UBIGINT', action: 'VARCHAR', side: 'VARCHAR', \
           price: 'DOUBLE', size: 'UINTEGER', flags: 'UTINYINT' }}) \
         WHERE type = 'mbp10') TO '{output}' \
         (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3, ROW_GROUP_SIZE 262144)",
        levels = level_cols.join(", "),
        input = ndjson.display(),
        output = out.display(),
    );
    let count_file = out.with_extension("count");
    let script = format!(
        "import duckdb\ncon = duckdb.connect()\ncon.execute('SET enable_progress_bar = false')\ncon.sql({sql:?})\nopen({count:?}, 'w').write(str(con.sql(\"select count(*) from read_parquet('{}')\").fetchall()[0][0]))",
        out.display(),
        count = count_file.display().to_string(),
    );
    let probe = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if !probe {
        println!("DuckDB (PyPI duckdb) not installed: run scripts/install-test-deps");
        return None;
    }
    let m = measure(
        Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit()),
    );
    assert!(m.status.success(), "DuckDB COPY failed");
    let rows = std::fs::read_to_string(&count_file)
        .expect("count")
        .trim()
        .parse()
        .expect("a count");
    Some((rows, m))
}

fn main() {
    let hours: f64 = std::env::var("SPM_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6.5);
    let files = session(hours);
    let ndjson = session_pipe(&files, hours, "ndjson");
    let bin = session_pipe(&files, hours, "bin");
    let size = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    println!(
        "{hours} h session: NDJSON {:.0} MB, bin {:.0} MB",
        mb(size(&ndjson)),
        mb(size(&bin))
    );

    support::warm_page_cache(&[ndjson.clone(), bin.clone()]);
    let (counts, parse_wall) = parse_ceiling(&ndjson);
    let events: u64 = counts.values().sum();
    let mbp10_rows = counts
        .get(EventKind::Mbp10.type_name())
        .copied()
        .unwrap_or(0);
    println!("events by type: {counts:?}");
    let ceiling = rate(events, parse_wall);
    println!(
        "NDJSON parse ceiling (PipeSource only, in process): {events} events in {:.2} s = {ceiling:>9.0} events/s",
        parse_wall.as_secs_f64()
    );
    let (_, bin_parse_wall) = parse_ceiling(&bin);
    println!(
        "bin parse ceiling (PipeSource only, in process):    {events} events in {:.2} s = {:>9.0} events/s",
        bin_parse_wall.as_secs_f64(),
        rate(events, bin_parse_wall)
    );

    let tmp = tempfile::tempdir_in(support::data_dir()).expect("tempdir");
    let mut results = Vec::new();
    for (format, path) in [("ndjson", &ndjson), ("bin", &bin)] {
        let root = tmp.path().join(format!("lake-{format}"));
        let m = archive(path, &root);
        let (rows, bytes) = stored(&root, "futures/mbp10");
        assert_eq!(rows, mbp10_rows, "every MBP-10 event stored");
        let r = rate(events, m.wall);
        println!(
            "spm-lake --input stdin ({format:>6}): {events} rows in {:.2} s = {r:>9.0} rows/s; peak RSS {:.1} MB (target <= 512); MBP-10 {:.1} bytes/row",
            m.wall.as_secs_f64(),
            mb(m.peak_rss),
            bytes as f64 / rows.max(1) as f64
        );
        results.push((format, r, bytes, rows));
        if format == "ndjson" {
            println!(
                "  NDJSON: {:.0} % of our parse ceiling (target >= 80 %)",
                100.0 * r / ceiling
            );
        }
        std::fs::remove_dir_all(&root).ok();
    }

    let mbp10_input = files
        .iter()
        .find(|f| f.to_string_lossy().contains("mbp-10"))
        .map(size)
        .unwrap_or(0);
    if let Some((_, _, bytes, rows)) = results.first() {
        println!(
            "MBP-10: lake {:.1} bytes/row ({:.0} MB) vs .dbn.zst {:.1} bytes/row ({:.0} MB): ratio {:.2}",
            *bytes as f64 / *rows as f64,
            mb(*bytes),
            mbp10_input as f64 / *rows as f64,
            mb(mbp10_input),
            *bytes as f64 / mbp10_input.max(1) as f64
        );
    }

    if std::env::var_os("SPM_BENCH_NO_DUCKDB").is_none() {
        let out = tmp.path().join("duckdb-mbp10.parquet");
        if let Some((rows, m)) = duckdb_copy(&ndjson, &out) {
            assert_eq!(rows, mbp10_rows, "DuckDB wrote every MBP-10 row");
            let duck_in = rate(events, m.wall);
            println!(
                "DuckDB COPY NDJSON → Parquet (MBP-10 flattened): {events} lines read, {rows} rows written in {:.2} s = {duck_in:>9.0} lines/s ({:.0} rows/s written); peak RSS {:.1} MB; {:.1} bytes/row",
                m.wall.as_secs_f64(),
                rate(rows, m.wall),
                mb(m.peak_rss),
                size(&out) as f64 / rows.max(1) as f64
            );
            for (format, r, _, _) in &results {
                println!(
                    "  spm-lake ({format}) / DuckDB: {:.2}x (target for bin >= 1)",
                    r / duck_in
                );
            }
        }
    }
}
