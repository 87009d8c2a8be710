//! `spm-ingest --source stdin`: DBN bytes piped in give exactly what `spm-replay` gives of the
//! same file, on stdout and through a real `nats-server`; SIGINT publishes every whole record
//! received and exits 0; a truncated stream publishes everything before the cut and leaves an
//! `error` report on `feeds.status`, which the lake archives as bronze `feeds/status`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::lake::run_with_input;
use common::lake_crash::stream_count;
use common::process::{Killed, wait_for};
use common::samples::samples_dir;
use spymaster::bus::testing::NatsServer;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn ingest() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spm-ingest"));
    cmd.args(["--source", "stdin"]);
    cmd
}

fn replay(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--output", "stdout"])
        .args(args)
        .arg(file)
        .output()
        .expect("spm-replay")
}

fn lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn decompressed(path: &Path) -> Vec<u8> {
    zstd::decode_all(std::fs::File::open(path).expect("open")).expect("zstd")
}

#[test]
fn dbn_piped_in_plain_or_zstd_equals_spm_replay_of_the_file() {
    let mut files = vec![
        testdata("es.mbp-10.dbn.zst"),
        testdata("es.trades.dbn.zst"),
        testdata("opra.tcbbo.dbn.zst"),
        testdata("spy.trades.dbn.zst"),
    ];
    // DBN v1 and v2 (upgraded on the way) from Databento's own samples, when present.
    if let Some(dir) = samples_dir() {
        files.push(dir.join("test_data.mbp-10.v1.dbn.zst"));
        files.push(dir.join("test_data.tbbo.v2.dbn.zst"));
        files.push(dir.join("test_data.trades.dbn"));
    }
    for file in &files {
        let want = replay(&[], file);
        assert!(want.status.success(), "{}", file.display());
        assert!(
            lines(&want.stdout) > 0,
            "{} gives no events",
            file.display()
        );
        let compressed = std::fs::read(file).expect("read");
        let plain = if file.extension().is_some_and(|e| e == "zst") {
            decompressed(file)
        } else {
            compressed.clone()
        };
        for (what, bytes) in [("as stored", &compressed), ("decompressed", &plain)] {
            let got = run_with_input(ingest(), bytes);
            assert!(
                got.status.success(),
                "{} {what}: {}",
                file.display(),
                String::from_utf8_lossy(&got.stderr)
            );
            assert!(
                got.stdout == want.stdout,
                "{} {what}: {} lines from spm-ingest, {} from spm-replay",
                file.display(),
                lines(&got.stdout),
                lines(&want.stdout)
            );
        }
    }
}

#[test]
fn dbn_piped_in_and_published_to_nats_reads_back_equal_to_stdout() {
    let server = NatsServer::start();
    let file = testdata("es.trades.dbn.zst");
    let bytes = std::fs::read(&file).expect("read");
    let stdout = run_with_input(ingest(), &bytes);
    assert!(stdout.status.success());
    let n = lines(&stdout.stdout);

    let mut cmd = ingest();
    cmd.args(["--output", "nats", "--nats-url", &server.url()]);
    let published = run_with_input(cmd, &bytes);
    let log = String::from_utf8_lossy(&published.stderr);
    assert!(published.status.success(), "{log}");
    assert!(
        log.contains(&format!("published {} events", thousands(n))),
        "{log}"
    );

    let tapped = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args(["market.>", "--from-start", "--count", &n.to_string()])
        .args(["--nats-url", &server.url()])
        .output()
        .expect("spm-tap");
    assert!(tapped.status.success());
    assert!(
        tapped.stdout == stdout.stdout,
        "NATS holds {} lines, stdout had {n}",
        lines(&tapped.stdout)
    );
}

fn thousands(n: usize) -> String {
    spymaster::cli::thousands(n as u64)
}

#[test]
fn sigint_while_waiting_for_bytes_publishes_every_whole_record_and_exits_0() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let plain = decompressed(&testdata("es.trades.dbn.zst"));
    // Cut in the middle of a record, two thirds of the way in.
    let cut = plain.len() * 2 / 3 + 17;
    let head = tmp.path().join("head.dbn");
    std::fs::write(&head, &plain[..cut]).expect("write");
    // spm-replay of the same bytes: every whole record, then an error for the cut one.
    let want = replay(&[], &head);
    assert!(
        !want.status.success(),
        "a cut record is an error for spm-replay"
    );
    let whole = lines(&want.stdout) as u64;
    assert!(whole > 1000);

    let mut child = Killed(
        ingest()
            .args(["--output", "nats", "--nats-url", &server.url()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let mut stdin = child.0.stdin.take().expect("stdin");
    stdin.write_all(&plain[..cut]).expect("write");
    stdin.flush().expect("flush");
    // Everything but the events of the last timestamp (held until the next one shows it is
    // complete) arrives while the pipe stays open.
    assert!(
        wait_for(Duration::from_secs(30), || stream_count(
            &server.url(),
            "MARKET_DATA"
        ) + 10
            >= whole),
        "published {} of {whole}",
        stream_count(&server.url(), "MARKET_DATA")
    );
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let status = child.wait_within(Duration::from_secs(20));
    let mut log = String::new();
    if let Some(mut err) = child.0.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut log);
    }
    assert!(status.success(), "exit {status:?}: {log}");
    assert_eq!(
        stream_count(&server.url(), "MARKET_DATA"),
        whole,
        "every whole record is published: {log}"
    );
    assert!(log.contains("stopped inside a record"), "{log}");
    drop(stdin);
}

#[test]
fn a_truncated_stream_publishes_everything_before_the_cut_and_an_error_the_lake_keeps() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let plain = decompressed(&testdata("spy.trades.dbn.zst"));
    let cut = plain.len() / 2 + 5;
    let head = tmp.path().join("head.dbn");
    std::fs::write(&head, &plain[..cut]).expect("write");
    let want = replay(&[], &head);
    let want_err = String::from_utf8_lossy(&want.stderr).into_owned();
    let offset = want_err
        .split("byte offset ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("spm-replay names the offset")
        .to_string();

    let mut cmd = ingest();
    cmd.args(["--output", "nats", "--nats-url", &server.url()]);
    let out = run_with_input(cmd, &plain[..cut]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("truncated record at byte offset {offset}")),
        "{log}"
    );
    assert_eq!(
        stream_count(&server.url(), "MARKET_DATA"),
        lines(&want.stdout) as u64,
        "every event before the cut is published"
    );
    assert_eq!(stream_count(&server.url(), "FEEDS"), 1);

    // spm-tap shows the report; its table format is one readable line.
    let tapped = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args([
            "feeds.status",
            "--from-start",
            "--count",
            "1",
            "--format",
            "table",
        ])
        .args(["--nats-url", &server.url()])
        .output()
        .expect("spm-tap");
    let line = String::from_utf8_lossy(&tapped.stdout);
    assert!(tapped.status.success());
    assert!(line.contains("ERROR") && line.contains("stdin"), "{line}");
    assert!(line.contains(&format!("byte offset {offset}")), "{line}");

    // The lake archives it as bronze feeds/status, read back by DuckDB.
    let lake = tmp.path().join("lake");
    let archived = Command::new(env!("CARGO_BIN_EXE_spm-lake"))
        .args(["--input", "nats", "--idle-exit", "2", "--flush-secs", "1"])
        .args(["--nats-url", &server.url(), "--root"])
        .arg(&lake)
        .output()
        .expect("spm-lake");
    assert!(
        archived.status.success(),
        "{}",
        String::from_utf8_lossy(&archived.stderr)
    );
    let glob = lake.join("bronze/feeds/status/**/*.parquet");
    let query = format!(
        "import duckdb\nr = duckdb.sql(\"select source, feed, state, reason from read_parquet('{}', hive_partitioning=true)\").fetchall()\nprint(len(r)); print(r[0][0], r[0][1], r[0][2]); print(r[0][3])",
        glob.display()
    );
    let py = Command::new("python3")
        .args(["-c", &query])
        .output()
        .expect("python3");
    let report = String::from_utf8_lossy(&py.stdout);
    assert!(
        py.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let mut rows = report.lines();
    assert_eq!(rows.next(), Some("1"), "{report}");
    assert_eq!(rows.next(), Some("replay stdin error"), "{report}");
    assert!(
        rows.next().is_some_and(|r| r.contains("truncated record")),
        "{report}"
    );
}
