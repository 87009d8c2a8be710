//! Fan-out of `levels.signals` to 1 000 WebSocket clients at 4 payloads/s, loopback only,
//! side by side with nats-server's own WebSocket listener delivering the same payloads to the
//! same number of clients subscribed to `levels.signals`. Each run also holds one client that
//! never reads. Latency is measured from publish (the write to the gateway's stdin, or the
//! NATS publish) to receipt of the frame by each client.
//!
//! Phases: `gateway/stdin` (the pipe case), `gateway/nats` (publish → nats-server → gateway →
//! clients: one more hop than nats-server's own listener) and `nats-server/ws`.
//! Targets: gateway p99 ≤ 20 ms and no worse than nats-server's; the stalled client evicted and
//! the others' p99 unmoved by it (p99 before and after the eviction side by side).
//!
//! `SPM_BENCH_CLIENTS` (default 1000) and `SPM_BENCH_SECS` (default 20) override the size.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spymaster::bus::testing::NatsServer;

/// Nanoseconds since the bench started, per payload: when it was published (0: not yet).
struct Clock {
    t0: Instant,
    sent: Vec<AtomicU64>,
}

impl Clock {
    fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
}

/// The payload number a frame carries: our payloads are numbered in their `ts` (ms) field.
fn payload_index(frame: &[u8], base_ts: i64) -> Option<usize> {
    let at = memchr_find(frame, b"\"ts\":")? + 5;
    let digits: Vec<u8> = frame[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    let ts: i64 = std::str::from_utf8(&digits).ok()?.parse().ok()?;
    usize::try_from(ts - base_ts).ok()
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e6
}

struct Outcome {
    /// (payload index, latency ns) of every frame every reading client received.
    samples: Vec<(usize, u64)>,
    missing: u64,
}

/// A process's CPU seconds and peak RSS (MB), from /proc.
fn proc_usage(pid: u32) -> (f64, f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; after the ')' they are at 11 and 12.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (ticks(11) + ticks(12)) / hz;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (cpu, kb("VmRSS:"), kb("VmHWM:"))
}

enum Protocol {
    /// Text frames, one payload each.
    Gateway,
    /// NATS over WebSocket: CONNECT + SUB, then MSG ops in binary frames.
    Nats,
}

/// A lean WebSocket client for the measurement (RFC 6455 framing over a plain socket), so
/// that what is timed is the servers, not a client library: the receiving side of 1 000
/// clients shares the same two cores.
struct RawWs {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl RawWs {
    async fn connect(url: &str) -> std::io::Result<RawWs> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.trim_start_matches("ws://");
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut buf = vec![0u8; 0];
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("closed during the handshake"));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = memchr_find(&buf, b"\r\n\r\n") {
                if !buf.starts_with(b"HTTP/1.1 101") {
                    return Err(std::io::Error::other(
                        String::from_utf8_lossy(&buf[..end]).into_owned(),
                    ));
                }
                buf.drain(..end + 4);
                return Ok(RawWs {
                    stream,
                    buf,
                    start: 0,
                });
            }
        }
    }

    /// Sends one masked frame (a zero mask key: valid, and the bytes stay as they are).
    async fn send(&mut self, opcode: u8, data: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut f = vec![0x80 | opcode];
        if data.len() < 126 {
            f.push(0x80 | data.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(data.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(data);
        self.stream.write_all(&f).await
    }

    /// The next data frame: (opcode, payload). Pings are answered; `None` at close.
    async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            let avail = &self.buf[self.start..];
            if avail.len() >= 2 {
                let opcode = avail[0] & 0x0f;
                let (len, hdr) = match avail[1] & 0x7f {
                    126 if avail.len() >= 4 => {
                        (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4)
                    }
                    127 if avail.len() >= 10 => (
                        u64::from_be_bytes(avail[2..10].try_into().ok()?) as usize,
                        10,
                    ),
                    n @ 0..=125 => (n as usize, 2),
                    _ => (usize::MAX, 0),
                };
                if len != usize::MAX && avail.len() >= hdr + len {
                    let data = avail[hdr..hdr + len].to_vec();
                    self.start += hdr + len;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    }
                    match opcode {
                        0x8 => return None,
                        0x9 => {
                            let _ = self.send(0xA, &data).await;
                            continue;
                        }
                        0xA => continue,
                        _ => return Some((opcode, data)),
                    }
                }
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let len = self.buf.len();
            self.buf.resize(len + 65536, 0);
            match self.stream.read(&mut self.buf[len..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.truncate(len + n),
            }
        }
    }
}

async fn client(
    url: String,
    protocol: Protocol,
    clock: Arc<Clock>,
    base_ts: i64,
    n: usize,
    ready: Arc<AtomicU64>,
    stop: Arc<tokio::sync::Notify>,
) -> Vec<(usize, u64)> {
    let mut ws = match RawWs::connect(&url).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("client cannot connect to {url}: {e}");
            ready.fetch_add(1, Ordering::SeqCst);
            return Vec::new();
        }
    };
    let mut got = Vec::with_capacity(n);
    let mut buf: Vec<u8> = Vec::new();
    if let Protocol::Nats = protocol {
        let hello = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"echo\":false}\r\nSUB levels.signals 1\r\nPING\r\n";
        let _ = ws.send(0x2, hello).await;
    } else {
        ready.fetch_add(1, Ordering::SeqCst);
    }
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let msg = tokio::select! {
            _ = &mut stopped => break,
            m = ws.next() => m,
        };
        let at = clock.now();
        let data = match msg {
            Some((0x1, t)) => {
                if let Some(i) = payload_index(&t, base_ts) {
                    got.push((i, at));
                }
                continue;
            }
            Some((_, b)) => b,
            None => break,
        };
        buf.extend_from_slice(&data);
        // NATS protocol: INFO, PONG, PING, MSG <subject> <sid> <len>\r\n<payload>\r\n
        while let Some(eol) = memchr_find(&buf, b"\r\n") {
            let line = &buf[..eol];
            if line.starts_with(b"MSG ") {
                let len: usize = std::str::from_utf8(line)
                    .ok()
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if buf.len() < eol + 2 + len + 2 {
                    break;
                }
                if let Some(i) = payload_index(&buf[eol + 2..eol + 2 + len], base_ts) {
                    got.push((i, at));
                }
                buf.drain(..eol + 2 + len + 2);
            } else {
                if line == b"PING" {
                    let _ = ws.send(0x2, b"PONG\r\n").await;
                } else if line == b"PONG" {
                    ready.fetch_add(1, Ordering::SeqCst);
                }
                buf.drain(..eol + 2);
            }
        }
    }
    let _ = ws.send(0x8, &[]).await;
    got.into_iter()
        .filter_map(|(i, at)| {
            let sent = clock.sent.get(i)?.load(Ordering::SeqCst);
            (sent > 0 && at >= sent).then(|| (i, at - sent))
        })
        .collect()
}

/// Opens `clients` reading clients and one that never reads, publishes `payloads` at 4 Hz
/// through `publish`, and gathers what every reading client received.
/// What every phase sends: the payloads, numbered from `base_ts`, to `clients` clients.
struct Load {
    clients: usize,
    payloads: Vec<Vec<u8>>,
    base_ts: i64,
}

async fn run_phase(
    name: &str,
    url: &str,
    protocol: fn() -> Protocol,
    load: &Load,
    mut publish: impl FnMut(&[u8]),
    on_stalled_gone: impl Fn() -> bool,
    server_pid: u32,
) -> (Outcome, Option<usize>, (f64, f64, f64, f64)) {
    let Load {
        clients,
        ref payloads,
        base_ts,
    } = *load;
    let clock = Arc::new(Clock {
        t0: Instant::now(),
        sent: (0..payloads.len()).map(|_| AtomicU64::new(0)).collect(),
    });
    let ready = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    // The client that never reads: shakes hands (and subscribes), then is left alone.
    let mut stalled = RawWs::connect(url).await.ok();
    if let (Some(ws), Protocol::Nats) = (stalled.as_mut(), protocol()) {
        let _ = ws
            .send(
                0x2,
                b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nSUB levels.signals 1\r\n",
            )
            .await;
    }
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        tasks.push(tokio::spawn(client(
            url.to_string(),
            protocol(),
            clock.clone(),
            base_ts,
            payloads.len(),
            ready.clone(),
            stop.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (ready.load(Ordering::SeqCst) as usize) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!(
        "{name}: {} clients ready (+1 that never reads); publishing {} payloads at 4/s",
        ready.load(Ordering::SeqCst),
        payloads.len()
    );
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut evicted_at = None;
    let (cpu0, _, _) = proc_usage(server_pid);
    let t = Instant::now();
    for (i, p) in payloads.iter().enumerate() {
        tick.tick().await;
        clock.sent[i].store(clock.now(), Ordering::SeqCst);
        publish(p);
        if evicted_at.is_none() && on_stalled_gone() {
            evicted_at = Some(i);
        }
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (cpu1, rss, hwm) = proc_usage(server_pid);
    let usage = (cpu1 - cpu0, t.elapsed().as_secs_f64(), rss, hwm);
    tokio::time::sleep(Duration::from_millis(250)).await;
    stop.notify_waiters();
    let mut samples = Vec::new();
    let mut missing = 0u64;
    for t in tasks {
        let got = t.await.unwrap_or_default();
        missing += payloads.len().saturating_sub(got.len()) as u64;
        samples.extend(got);
    }
    drop(stalled);
    (Outcome { samples, missing }, evicted_at, usage)
}

fn report(
    name: &str,
    o: &Outcome,
    evicted_at: Option<usize>,
    usage: Option<(f64, f64, f64, f64)>,
) -> f64 {
    let mut all: Vec<u64> = o.samples.iter().map(|s| s.1).collect();
    all.sort_unstable();
    let p99 = percentile(&all, 0.99);
    println!(
        "{name:<16} frames {:>7}  missing {:>5}  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        all.len(),
        o.missing,
        percentile(&all, 0.5),
        p99,
        all.last().map_or(f64::NAN, |v| *v as f64 / 1e6)
    );
    if let Some(at) = evicted_at {
        let split = |before: bool| {
            let mut v: Vec<u64> = o
                .samples
                .iter()
                .filter(|s| (s.0 < at) == before)
                .map(|s| s.1)
                .collect();
            v.sort_unstable();
            percentile(&v, 0.99)
        };
        println!(
            "{:<16} stalled client gone at payload {at}: p99 before {:.2} ms, after {:.2} ms",
            "",
            split(true),
            split(false)
        );
    } else {
        println!("{:<16} stalled client still connected at the end", "");
    }
    if let Some((cpu, secs, rss, hwm)) = usage {
        println!(
            "{:<16} server CPU {:.0} % of one core while publishing, RSS {:.1} MB (peak {:.1} MB)",
            "",
            100.0 * cpu / secs,
            rss,
            hwm
        );
    }
    p99
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn start_gateway(args: &[&str]) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spm-gateway"))
        .args(args)
        .args([
            "--port",
            "0",
            "--max-clients",
            "5000",
            "--stall-timeout",
            "5",
            "--ping-interval",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spm-gateway");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let _ = tx.send(
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>(),
                );
            } else if line.contains("evicted") {
                eprintln!("  gateway: {line}");
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("gateway started")
        .parse()
        .expect("port");
    (child, port)
}

fn main() {
    let clients: usize = std::env::var("SPM_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let secs: usize = std::env::var("SPM_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    spymaster::cli::raise_fd_limit();
    // Real payloads of the bundled sample (replay → core), renumbered: payload i has ts = base + i.
    let replay = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args([
            "testdata/es.mbp-10.dbn.zst",
            "testdata/es.trades.dbn.zst",
            "testdata/opra.tcbbo.dbn.zst",
            "testdata/spy.trades.dbn.zst",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("spm-replay");
    let mut core = Command::new(env!("CARGO_BIN_EXE_spm-core"))
        .arg("--stdout")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-core");
    let mut core_in = core.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let _ = core_in.write_all(&replay.stdout);
    });
    let signals = core.wait_with_output().expect("spm-core").stdout;
    let _ = feeder.join();
    let base_ts: i64 = 1_763_737_200_000;
    let n = secs * 4;
    let payloads: Vec<Vec<u8>> = signals
        .split(|&b| b == b'\n')
        .filter(|l| l.len() > 20)
        .take(n)
        .enumerate()
        .map(|(i, l)| {
            let mut v: serde_json::Value = serde_json::from_slice(l).expect("payload");
            v["ts"] = serde_json::json!(base_ts + i as i64);
            serde_json::to_vec(&v).expect("json")
        })
        .collect();
    let avg = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len().max(1);
    println!(
        "gateway fan-out: {clients} clients + 1 that never reads, {} payloads at 4/s ({avg} B each), loopback",
        payloads.len()
    );

    let load = Load {
        clients,
        payloads,
        base_ts,
    };
    let nats = NatsServer::start_with_websocket();
    let ws_port = nats.websocket_port().expect("websocket port");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut p99 = Vec::new();
    // 1. gateway, payloads on its stdin.
    {
        let (mut gw, port) = start_gateway(&["--input", "stdin"]);
        let pid = gw.id();
        let mut stdin = gw.stdin.take().expect("stdin");
        let evicted = || http_get(port, "/health").contains("\"clients_evicted\":1");
        let url = format!("ws://127.0.0.1:{port}/ws/stream");
        let (o, at, usage) = rt.block_on(run_phase(
            "gateway/stdin",
            &url,
            || Protocol::Gateway,
            &load,
            |p| {
                let _ = stdin.write_all(p);
                let _ = stdin.write_all(b"\n");
                let _ = stdin.flush();
            },
            evicted,
            pid,
        ));
        p99.push((
            "gateway/stdin",
            report("gateway/stdin", &o, at, Some(usage)),
        ));
        let _ = gw.kill();
        let _ = gw.wait();
    }
    let nats_client = rt
        .block_on(async_nats::connect(nats.url()))
        .expect("publisher");
    let publish = |p: &[u8]| {
        let c = nats_client.clone();
        let p = bytes::Bytes::copy_from_slice(p);
        rt.spawn(async move {
            let _ = c.publish("levels.signals", p).await;
            let _ = c.flush().await;
        });
    };
    // 2. gateway on NATS.
    {
        let url_nats = nats.url();
        let (mut gw, port) = start_gateway(&["--input", "nats", "--nats-url", &url_nats]);
        let pid = gw.id();
        std::thread::sleep(Duration::from_millis(500));
        let evicted = || http_get(port, "/health").contains("\"clients_evicted\":1");
        let url = format!("ws://127.0.0.1:{port}/ws/stream");
        let (o, at, usage) = rt.block_on(run_phase(
            "gateway/nats",
            &url,
            || Protocol::Gateway,
            &load,
            publish,
            evicted,
            pid,
        ));
        p99.push(("gateway/nats", report("gateway/nats", &o, at, Some(usage))));
        let _ = gw.kill();
        let _ = gw.wait();
    }
    // 3. nats-server's own WebSocket listener.
    {
        let pid = nats.pid().expect("nats pid");
        let url = format!("ws://127.0.0.1:{ws_port}");
        let (o, at, usage) = rt.block_on(run_phase(
            "nats-server/ws",
            &url,
            || Protocol::Nats,
            &load,
            publish,
            || false,
            pid,
        ));
        let _ = at;
        p99.push((
            "nats-server/ws",
            report("nats-server/ws", &o, None, Some(usage)),
        ));
    }
    let ours = p99[0].1;
    let theirs = p99[2].1;
    println!(
        "target: gateway p99 ≤ 20 ms and ≤ nats-server's: gateway/stdin {ours:.2} ms, gateway/nats {:.2} ms, nats-server/ws {theirs:.2} ms → {}",
        p99[1].1,
        if ours <= 20.0 && ours <= theirs {
            "met"
        } else {
            "NOT met"
        }
    );
}
