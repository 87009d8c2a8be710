//! Live ingest speed and latency: the bundled sample served by the fake Databento gateway
//! (tests/common/dbn_gateway.rs: the real protocol over loopback TCP) through `spm-ingest`, to
//! stdout and to NATS, beside `spm-replay` of the same files; then the latency `spm-ingest`
//! adds per record at a steady 10 000 records/s (the gateway stamps `ts_recv` as it writes each
//! record; the reader compares it with the time it reads the event: socket, decode, queue,
//! publish and pipe included).

#[path = "../tests/common/dbn_gateway.rs"]
mod dbn_gateway;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dbn_gateway::{DbnGateway, GatewayConfig, Pace, Recorded};
use spymaster::bus::testing::NatsServer;
use spymaster::bus::{Bus, BusConfig};

const KEY: &str = "db-BENCHxxxxxxxxxxxxxxxxxxxxABCDE";

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn datasets() -> Vec<Arc<Recorded>> {
    dbn_gateway::bundled_sample().expect("load the sample")
}

fn files() -> Vec<PathBuf> {
    [
        "es.mbp-10.dbn.zst",
        "es.trades.dbn.zst",
        "opra.tcbbo.dbn.zst",
        "spy.trades.dbn.zst",
    ]
    .map(testdata)
    .to_vec()
}

fn ingest(gateway: &DbnGateway, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spm-ingest"));
    cmd.args([
        "--source",
        "databento",
        "--gateway",
        &gateway.addr().to_string(),
    ])
    .args(["--stats-secs", "0"])
    .args(args)
    .env("DATABENTO_API_KEY", KEY)
    .env("RUST_LOG", "warn")
    .stderr(Stdio::null());
    cmd
}

fn stop(mut child: Child) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
}

fn is_market(line: &[u8]) -> bool {
    !line.starts_with(b"{\"type\":\"feed_status\"")
}

/// Seconds until `spm-ingest` has written `n` market events on stdout.
fn to_stdout(n: u64) -> f64 {
    let gateway =
        DbnGateway::start_in_background(GatewayConfig::new(KEY, datasets())).expect("gateway");
    let t0 = Instant::now();
    let mut child = ingest(&gateway, &["--output", "stdout"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spm-ingest");
    let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().expect("stdout"));
    let mut line = Vec::with_capacity(1024);
    let mut seen = 0;
    while seen < n {
        line.clear();
        if out.read_until(b'\n', &mut line).expect("read") == 0 {
            panic!("spm-ingest ended after {seen} of {n} events");
        }
        if is_market(&line) {
            seen += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    stop(child);
    secs
}

/// Seconds until MARKET_DATA holds `n` events published by `spm-ingest`.
fn to_nats(n: u64) -> f64 {
    let server = NatsServer::start();
    let gateway =
        DbnGateway::start_in_background(GatewayConfig::new(KEY, datasets())).expect("gateway");
    let bus = Bus::connect(&BusConfig::new(server.url())).expect("connect");
    bus.ensure_streams().expect("streams");
    let t0 = Instant::now();
    let child = ingest(&gateway, &["--output", "nats", "--nats-url", &server.url()])
        .stdout(Stdio::null())
        .spawn()
        .expect("spm-ingest");
    let deadline = Instant::now() + Duration::from_secs(600);
    while bus.stream_message_count("MARKET_DATA").unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "not all published in 10 min");
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = t0.elapsed().as_secs_f64();
    stop(child);
    secs
}

/// `spm-replay` of the same files: (events, seconds) to stdout, seconds to NATS.
fn replay() -> (u64, f64, f64) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--output", "stdout"])
        .args(files())
        .stderr(Stdio::null())
        .output()
        .expect("spm-replay");
    let stdout_secs = t0.elapsed().as_secs_f64();
    assert!(out.status.success());
    let n = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    let server = NatsServer::start();
    let t0 = Instant::now();
    let ok = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--output", "nats", "--nats-url", &server.url()])
        .args(files())
        .stderr(Stdio::null())
        .status()
        .expect("spm-replay");
    assert!(ok.success());
    (n, stdout_secs, t0.elapsed().as_secs_f64())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `"ts_recv_ns":N` of a JSON line.
fn ts_recv(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"ts_recv_ns\":";
    let at = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Latency (µs) of every event over `secs` seconds at `rate` records/s of the futures session.
fn latency(rate: f64, secs: f64) -> Vec<u64> {
    let mut config = GatewayConfig::new(KEY, vec![datasets().remove(0)]);
    config.pace = Some(Pace {
        records_per_s: rate,
        restamp_ts_recv: true,
    });
    let gateway = DbnGateway::start_in_background(config).expect("gateway");
    let mut child = ingest(
        &gateway,
        &[
            "--dataset",
            "GLBX.MDP3",
            "--schema",
            "mbp-10,trades",
            "--symbols",
            "ES.FUT",
            "--output",
            "stdout",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("spm-ingest");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = Vec::with_capacity(1024);
    let mut samples = Vec::new();
    let t0 = Instant::now();
    // The first second warms the connection up and is not counted.
    while t0.elapsed().as_secs_f64() < secs + 1.0 {
        line.clear();
        if out.read_until(b'\n', &mut line).expect("read") == 0 {
            break;
        }
        let now = now_ns();
        if t0.elapsed().as_secs_f64() < 1.0 || !is_market(&line) {
            continue;
        }
        if let Some(ts) = ts_recv(&line) {
            samples.push(now.saturating_sub(ts) / 1000);
        }
    }
    stop(child);
    samples.sort_unstable();
    samples
}

fn q(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn main() {
    let (n, replay_stdout, replay_nats) = replay();
    println!("ingest bench: the bundled sample, {n} events (4 files, 3 datasets)");
    let ingest_stdout = to_stdout(n);
    let ingest_nats = to_nats(n);
    let per_s = |secs: f64| n as f64 / secs;
    println!("{:<44} {:>12} {:>10}", "", "events/s", "seconds");
    for (what, secs) in [
        ("spm-replay → stdout", replay_stdout),
        ("spm-ingest (Databento fake, TCP) → stdout", ingest_stdout),
        ("spm-replay → NATS (fast-ingest batches)", replay_nats),
        ("spm-ingest (Databento fake, TCP) → NATS", ingest_nats),
    ] {
        println!("{what:<44} {:>12.0} {secs:>10.2}", per_s(secs));
    }
    println!(
        "spm-ingest / spm-replay: stdout {:.0} %, NATS {:.0} %",
        100.0 * replay_stdout / ingest_stdout,
        100.0 * replay_nats / ingest_nats
    );
    let rate = 10_000.0;
    let secs: f64 = std::env::var("SPM_BENCH_LATENCY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let lat = latency(rate, secs);
    println!(
        "added latency at {rate:.0} records/s over {secs:.0} s ({} events, gateway write → event read on spm-ingest's stdout): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        lat.len(),
        q(&lat, 0.5),
        q(&lat, 0.99),
        q(&lat, 1.0)
    );
    assert!(
        lat.len() as f64 > rate * secs * 0.9,
        "the paced gateway fell short: {} events in {secs} s",
        lat.len()
    );
}
