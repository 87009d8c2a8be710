//! A fake Databento Live gateway on 127.0.0.1, serving DBN files as a live session: for the
//! end-to-end tests and the ingest benchmark (a plain module; nothing in it is test-only).
//!
//! It speaks the raw protocol as the real gateway does:
//! 1. a greeting (`lsg_version=…`) and a random CRAM challenge (`cram=…`);
//! 2. it recomputes the expected response (`SHA256_HEX(challenge|key)-BUCKET`) from the key it
//!    was configured with and answers `success=1|session_id=N`, or
//!    `success=0|error=Authentication failed.` and closes;
//! 3. it reads subscription lines until `start_session`, then streams DBN (zstd when the
//!    authentication asked for it): live-style metadata (the dataset, no schema when several,
//!    `stype_out` instrument id, no mappings), a `SubscriptionAck` system message per
//!    subscription, one `SymbolMappingMsg` per instrument subscribed to (the subscribed symbol →
//!    the raw symbol, from the files' metadata mappings and definitions), then the files'
//!    records of the subscribed schemas and instruments merged by index time (`ts_recv`),
//!    from `start` when the subscription has one (a `ReplayCompleted` system message after),
//!    written in pieces of random length so records are split across writes, and heartbeats
//!    (`SystemMsg`) whenever it has had nothing to send for the heartbeat interval.
//!
//! Every connection, authentication and subscription line is recorded ([`DbnGateway::sessions`])
//! and can be awaited ([`DbnGateway::wait_for`]). Faults, each fired once per gateway
//! ([`Faults`]): close the connection in the middle of a record, stall (send nothing, not even
//! heartbeats), skip records and say so with `SKIPPED_RECORDS_AFTER_SLOW_READING`. A pace
//! ([`Pace`]) sends records at a fixed rate instead of as fast as possible, optionally stamping
//! `ts_recv` with the time of sending (to measure latency); a speed ([`GatewayConfig::speed`])
//! keeps every session on one event-time clock, as live feeds are.
#![allow(dead_code)]

use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::hash::BuildHasher;
use std::io::{self, Write as _};
use std::mem::offset_of;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dbn::decode::{DbnMetadata, DecodeRecordRef, DynDecoder};
use dbn::encode::DbnMetadataEncoder;
use dbn::{
    BboMsg, CbboMsg, Cmbp1Msg, ErrorCode, ErrorMsg, InstrumentDefMsg, Mbp1Msg, Mbp10Msg,
    MetadataBuilder, RType, Record, SType, Schema, SymbolMappingMsg, SystemCode, SystemMsg,
    TradeMsg, UNDEF_TIMESTAMP, VersionUpgradePolicy, rtype,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The greeting line, as the real gateway sends it.
pub const GREETING: &str = "lsg_version=0.7.2";
/// The answer to a wrong CRAM response.
pub const AUTH_FAILED: &str = "Authentication failed.";

/// The records of one dataset, merged by index time, and its instruments.
#[derive(Debug)]
pub struct Recorded {
    pub dataset: String,
    /// Every record's bytes (DBN v3), back to back in merged order.
    bytes: Vec<u8>,
    records: Vec<Rec>,
    /// Raw symbol of each instrument, from the files' mappings and definitions.
    pub instruments: BTreeMap<u32, String>,
}

/// Where one record is, and what the gateway needs to know of it.
#[derive(Debug, Clone, Copy)]
struct Rec {
    index_ts: u64,
    start: usize,
    len: usize,
    rtype: u8,
    instrument_id: u32,
}

impl Recorded {
    /// Loads DBN files (plain or zstd, any version; upgraded to v3) of one dataset.
    pub fn load(paths: &[impl AsRef<Path>]) -> io::Result<Recorded> {
        let err = |p: &Path, e: dbn::Error| io::Error::other(format!("{}: {e}", p.display()));
        let mut dataset: Option<String> = None;
        let mut instruments = BTreeMap::new();
        let mut bytes = Vec::new();
        let mut files: Vec<Vec<Rec>> = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let mut decoder = DynDecoder::from_file(path, VersionUpgradePolicy::UpgradeToV3)
                .map_err(|e| err(path, e))?;
            let metadata = decoder.metadata().clone();
            match &dataset {
                None => dataset = Some(metadata.dataset.clone()),
                Some(d) if *d != metadata.dataset => {
                    return Err(io::Error::other(format!(
                        "{}: dataset {} differs from {d}",
                        path.display(),
                        metadata.dataset
                    )));
                }
                Some(_) => {}
            }
            for mapping in &metadata.mappings {
                for interval in &mapping.intervals {
                    let (id, raw) = if metadata.stype_out == SType::InstrumentId {
                        (&interval.symbol, &mapping.raw_symbol)
                    } else {
                        (&mapping.raw_symbol, &interval.symbol)
                    };
                    if let Ok(id) = id.parse::<u32>() {
                        instruments.insert(id, raw.clone());
                    }
                }
            }
            let mut recs = Vec::new();
            while let Some(rec) = decoder.decode_record_ref().map_err(|e| err(path, e))? {
                let hd = rec.header();
                if let Some(def) = rec.get::<InstrumentDefMsg>()
                    && let Ok(raw) = def.raw_symbol()
                    && !raw.is_empty()
                {
                    instruments.insert(hd.instrument_id, raw.to_string());
                }
                let data = rec.as_ref();
                recs.push(Rec {
                    index_ts: rec.raw_index_ts(),
                    start: bytes.len(),
                    len: data.len(),
                    rtype: hd.rtype,
                    instrument_id: hd.instrument_id,
                });
                bytes.extend_from_slice(data);
            }
            files.push(recs);
        }
        Ok(Recorded {
            dataset: dataset.ok_or_else(|| io::Error::other("no DBN file given"))?,
            bytes,
            records: merge_by_index_ts(files),
            instruments,
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn bytes_of(&self, r: &Rec) -> &[u8] {
        &self.bytes[r.start..r.start + r.len]
    }

    /// The instruments a subscribed symbol names, as the gateway resolves it.
    fn resolve(&self, stype: SType, symbol: &str) -> Vec<u32> {
        let pick = |f: &dyn Fn(&str) -> bool| -> Vec<u32> {
            self.instruments
                .iter()
                .filter(|(_, raw)| f(raw))
                .map(|(id, _)| *id)
                .collect()
        };
        if symbol == "ALL_SYMBOLS" {
            return self.instruments.keys().copied().collect();
        }
        match stype {
            SType::RawSymbol => pick(&|raw| raw == symbol),
            SType::InstrumentId => symbol
                .parse::<u32>()
                .ok()
                .filter(|id| self.instruments.contains_key(id))
                .into_iter()
                .collect(),
            SType::Parent => match symbol.rsplit_once('.') {
                Some((root, "FUT")) => pick(&|raw| is_future_of(root, raw)),
                Some((root, "OPT")) => pick(&|raw| is_option_of(root, raw)),
                _ => Vec::new(),
            },
            SType::Continuous => {
                let root = symbol.split('.').next().unwrap_or_default();
                pick(&|raw| is_future_of(root, raw))
                    .into_iter()
                    .take(1)
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Merges files (each in its own order) by index time; ties keep file order.
fn merge_by_index_ts(files: Vec<Vec<Rec>>) -> Vec<Rec> {
    use std::cmp::Reverse;
    let total = files.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut next = vec![0usize; files.len()];
    let mut heads: BinaryHeap<Reverse<(u64, usize)>> = files
        .iter()
        .enumerate()
        .filter_map(|(f, recs)| recs.first().map(|r| Reverse((r.index_ts, f))))
        .collect();
    while let Some(Reverse((_, f))) = heads.pop() {
        out.push(files[f][next[f]]);
        next[f] += 1;
        if let Some(r) = files[f].get(next[f]) {
            heads.push(Reverse((r.index_ts, f)));
        }
    }
    out
}

/// `ESZ5`, `ESH26` for root `ES` (no spreads).
fn is_future_of(root: &str, raw: &str) -> bool {
    raw.strip_prefix(root).is_some_and(|rest| {
        let mut chars = rest.chars();
        chars.next().is_some_and(|m| "FGHJKMNQUVXZ".contains(m))
            && !chars.as_str().is_empty()
            && chars.as_str().len() <= 2
            && chars.all(|c| c.is_ascii_digit())
    })
}

/// An OSI option symbol (`SPY   251121C00673000`) of root `SPY`.
fn is_option_of(root: &str, raw: &str) -> bool {
    raw.len() == 21 && raw.get(..6).is_some_and(|r| r.trim_end() == root)
}

/// The bundled sample (testdata/) as the gateway serves it: GLBX.MDP3 (ES MBP-10 and trades),
/// OPRA.PILLAR (SPY option definitions and tcbbo) and XNAS.ITCH (SPY trades).
pub fn bundled_sample() -> io::Result<Vec<Arc<Recorded>>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    [
        &["es.mbp-10.dbn.zst", "es.trades.dbn.zst"][..],
        &["opra.tcbbo.dbn.zst"],
        &["spy.trades.dbn.zst"],
    ]
    .iter()
    .map(|names| {
        let paths: Vec<_> = names.iter().map(|n| dir.join(n)).collect();
        Recorded::load(&paths).map(Arc::new)
    })
    .collect()
}

/// How records are paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub records_per_s: f64,
    /// Stamp each record's `ts_recv` with the wall-clock time it is written (latency
    /// measurement); the overlap after a reconnect is then not recognisable.
    pub restamp_ts_recv: bool,
}

/// Faults, each fired once per gateway (on the first connection that gets there).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// After this many records, write half of the next one and close the connection.
    pub drop_after: Option<u64>,
    /// After this many records, send nothing at all (no heartbeats either) for this long.
    pub stall: Option<(u64, Duration)>,
    /// After this many records, skip this many and send a `SKIPPED_RECORDS_AFTER_SLOW_READING`
    /// error saying how many.
    pub skip: Option<(u64, u64)>,
}

/// What a [`DbnGateway`] serves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The API key it accepts.
    pub key: String,
    pub datasets: Vec<Arc<Recorded>>,
    /// Seeds challenges and write splits (a fixed seed replays the same splits).
    pub seed: u64,
    /// Writes are cut at random points into pieces of 1 to this many bytes.
    pub max_write: usize,
    pub faults: Faults,
    pub pace: Option<Pace>,
    /// Live-like timing: every session sends a record once `speed` × the wall time since the
    /// first session began has passed its `ts_recv` (from the earliest of all datasets), so the
    /// datasets' sessions stay aligned on one clock as real live feeds are. `None`: as fast as
    /// possible, each session on its own.
    pub speed: Option<f64>,
}

impl GatewayConfig {
    pub fn new(key: &str, datasets: Vec<Arc<Recorded>>) -> GatewayConfig {
        GatewayConfig {
            key: key.to_string(),
            datasets,
            seed: std::collections::hash_map::RandomState::new()
                .hash_one(std::time::Instant::now()),
            max_write: 8 * 1024,
            faults: Faults::default(),
            pace: None,
            speed: None,
        }
    }
}

/// What one connection did, as the gateway saw it.
#[derive(Debug, Clone, Default)]
pub struct SessionLog {
    /// The authentication line received (it carries the CRAM response, never the key).
    pub auth: Option<String>,
    pub authenticated: bool,
    pub dataset: Option<String>,
    pub compression: Option<String>,
    /// Subscription lines received, in order, without their newline.
    pub subscriptions: Vec<String>,
    pub started: bool,
    /// Data records written in full.
    pub records_sent: u64,
    /// Index time of the last data record written in full.
    pub last_index_ts: Option<u64>,
    /// Index time of the first data record written.
    pub first_index_ts: Option<u64>,
    /// Records skipped by the skip fault.
    pub records_skipped: u64,
    pub ended: bool,
}

struct Shared {
    config: GatewayConfig,
    sessions: Mutex<Vec<SessionLog>>,
    changed: watch::Sender<u64>,
    connections: AtomicU64,
    dropped: AtomicBool,
    stalled: AtomicBool,
    skipped: AtomicBool,
    /// When the first session began sending records: the origin of `speed`'s clock.
    started: std::sync::OnceLock<tokio::time::Instant>,
    /// The earliest `ts_recv` of all datasets.
    first_index_ts: u64,
}

impl Shared {
    fn update(&self, conn: usize, f: impl FnOnce(&mut SessionLog)) {
        if let Ok(mut s) = self.sessions.lock()
            && let Some(log) = s.get_mut(conn)
        {
            f(log);
        }
        self.changed.send_modify(|v| *v += 1);
    }
}

/// A running fake gateway; stopped when dropped.
pub struct DbnGateway {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl DbnGateway {
    /// Starts on a free port of 127.0.0.1, on the current tokio runtime.
    pub async fn start(config: GatewayConfig) -> io::Result<DbnGateway> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (changed, _) = watch::channel(0);
        let first_index_ts = config
            .datasets
            .iter()
            .filter_map(|d| d.records.first().map(|r| r.index_ts))
            .min()
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            config,
            sessions: Mutex::new(Vec::new()),
            changed,
            connections: AtomicU64::new(0),
            dropped: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            skipped: AtomicBool::new(false),
            started: std::sync::OnceLock::new(),
            first_index_ts,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(DbnGateway {
            addr,
            shared,
            accept,
            runtime: None,
        })
    }

    /// Starts on a runtime of its own (for callers without one, e.g. a test driving a
    /// child process).
    pub fn start_in_background(config: GatewayConfig) -> io::Result<DbnGateway> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dbn-gateway")
            .enable_all()
            .build()?;
        let mut gateway = runtime.block_on(DbnGateway::start(config))?;
        gateway.runtime = Some(runtime);
        Ok(gateway)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// What every connection did so far, in the order they came.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.shared
            .sessions
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Waits until `done` holds of the sessions; false after `within`.
    pub async fn wait_for(&self, within: Duration, done: impl Fn(&[SessionLog]) -> bool) -> bool {
        let mut changed = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if done(&self.sessions()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return done(&self.sessions()),
            }
        }
    }
}

impl Drop for DbnGateway {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropped with this task when the gateway stops: that ends every connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let n = shared.connections.fetch_add(1, Ordering::SeqCst);
        let conn = {
            let Ok(mut s) = shared.sessions.lock() else {
                return;
            };
            s.push(SessionLog::default());
            s.len() - 1
        };
        shared.changed.send_modify(|v| *v += 1);
        let shared = shared.clone();
        connections.spawn(async move {
            let _ = serve(stream, &shared, conn, n).await;
            shared.update(conn, |l| l.ended = true);
        });
        while connections.try_join_next().is_some() {}
    }
}

/// SplitMix64: small, seeded, good enough for challenges and write splits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `1..=max`.
    fn upto(&mut self, max: usize) -> usize {
        1 + (self.next() % max.max(1) as u64) as usize
    }

    fn challenge(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..32)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

/// The CRAM response the real gateway expects for `key`.
pub fn expected_cram_response(challenge: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{challenge}|{key}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let bucket: String = {
        let chars: Vec<char> = key.chars().collect();
        chars[chars.len().saturating_sub(5)..].iter().collect()
    };
    format!("{hex}-{bucket}")
}

/// The gateway's side of the socket: lines, then DBN (compressed when asked), cut into
/// random pieces.
struct Out {
    write: OwnedWriteHalf,
    zstd: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    rng: Rng,
    max_write: usize,
}

impl Out {
    async fn line(&mut self, line: &str) -> io::Result<()> {
        self.write.write_all(line.as_bytes()).await?;
        self.write.write_all(b"\n").await
    }

    /// Sends DBN bytes now (compressed and flushed when the session is compressed).
    async fn send(&mut self, plain: &[u8]) -> io::Result<()> {
        if plain.is_empty() {
            return Ok(());
        }
        let compressed;
        let bytes: &[u8] = match &mut self.zstd {
            None => plain,
            Some(z) => {
                z.write_all(plain)?;
                z.flush()?;
                compressed = std::mem::take(z.get_mut());
                &compressed
            }
        };
        let mut pos = 0;
        while pos < bytes.len() {
            let n = self.rng.upto(self.max_write).min(bytes.len() - pos);
            self.write.write_all(&bytes[pos..pos + n]).await?;
            pos += n;
        }
        Ok(())
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads one line without its newline; `None` at the end of the connection.
async fn read_line(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Option<String>> {
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split('|')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// One parsed subscription line.
struct Sub {
    schema: Schema,
    stype_in: SType,
    symbols: Vec<String>,
    start: Option<u64>,
}

fn parse_sub(line: &str) -> Result<Sub, String> {
    let f = fields(line);
    let get = |k: &str| f.get(k).copied().ok_or(format!("missing {k}"));
    Ok(Sub {
        schema: get("schema")?
            .parse()
            .map_err(|_| "bad schema".to_string())?,
        stype_in: get("stype_in")?
            .parse()
            .map_err(|_| "bad stype_in".to_string())?,
        symbols: get("symbols")?.split(',').map(str::to_string).collect(),
        start: match f.get("start") {
            Some(s) => Some(s.parse().map_err(|_| "bad start".to_string())?),
            None => None,
        },
    })
}

/// Offset of `ts_recv` in records that have one (for [`Pace::restamp_ts_recv`]).
fn ts_recv_offset(rtype: u8) -> Option<usize> {
    Some(match rtype {
        rtype::MBP_0 => offset_of!(TradeMsg, ts_recv),
        rtype::MBP_1 => offset_of!(Mbp1Msg, ts_recv),
        rtype::MBP_10 => offset_of!(Mbp10Msg, ts_recv),
        rtype::CMBP_1 | rtype::TCBBO => offset_of!(Cmbp1Msg, ts_recv),
        rtype::CBBO_1S | rtype::CBBO_1M => offset_of!(CbboMsg, ts_recv),
        rtype::BBO_1S | rtype::BBO_1M => offset_of!(BboMsg, ts_recv),
        rtype::INSTRUMENT_DEF => offset_of!(InstrumentDefMsg, ts_recv),
        _ => return None,
    })
}

/// Serves one connection.
async fn serve(stream: TcpStream, shared: &Shared, conn: usize, n: u64) -> io::Result<()> {
    let config = &shared.config;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut out = Out {
        write,
        zstd: None,
        rng: Rng(config.seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407)),
        max_write: config.max_write,
    };

    // Authentication.
    out.line(GREETING).await?;
    let challenge = out.rng.challenge();
    out.line(&format!("cram={challenge}")).await?;
    let Some(auth) = read_line(&mut read).await? else {
        return Ok(());
    };
    shared.update(conn, |l| l.auth = Some(auth.clone()));
    let f = fields(&auth);
    if f.get("auth").copied() != Some(expected_cram_response(&challenge, &config.key).as_str()) {
        out.line(&format!("success=0|error={AUTH_FAILED}")).await?;
        return Ok(());
    }
    let dataset = f.get("dataset").copied().unwrap_or_default().to_string();
    let Some(recorded) = config
        .datasets
        .iter()
        .find(|d| d.dataset == dataset)
        .cloned()
    else {
        out.line(&format!("success=0|error=Unknown dataset: {dataset}"))
            .await?;
        return Ok(());
    };
    if f.get("encoding").copied() != Some("dbn") || f.get("ts_out").copied() != Some("0") {
        out.line("success=0|error=This gateway serves encoding=dbn with ts_out=0 only.")
            .await?;
        return Ok(());
    }
    let compression = f.get("compression").copied().unwrap_or("none").to_string();
    let heartbeat = f
        .get("heartbeat_interval_s")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(30)
        .max(1);
    out.line(&format!("success=1|session_id={}", 1000 + n))
        .await?;
    shared.update(conn, |l| {
        l.authenticated = true;
        l.dataset = Some(dataset.clone());
        l.compression = Some(compression.clone());
    });

    // Subscriptions, until the session starts.
    let mut subs = Vec::new();
    loop {
        let Some(line) = read_line(&mut read).await? else {
            return Ok(());
        };
        if line == "start_session" {
            break;
        }
        shared.update(conn, |l| l.subscriptions.push(line.clone()));
        match parse_sub(&line) {
            Ok(sub) => subs.push(sub),
            Err(e) => {
                // The real gateway answers a bad request with an error record and closes.
                out.send(
                    ErrorMsg::new(
                        now_ns(),
                        Some(ErrorCode::InvalidSubscription),
                        &format!("Invalid subscription request: {e}"),
                        true,
                    )
                    .as_ref(),
                )
                .await?;
                return Ok(());
            }
        }
    }
    shared.update(conn, |l| l.started = true);
    if compression == "zstd" {
        out.zstd = Some(zstd::stream::write::Encoder::new(Vec::new(), 0)?);
    }

    // Metadata, acknowledgements, symbol mappings.
    let session_start = subs
        .iter()
        .filter_map(|s| s.start)
        .min()
        .unwrap_or_else(now_ns);
    let schemas: HashSet<Schema> = subs.iter().map(|s| s.schema).collect();
    let stype_ins: HashSet<SType> = subs.iter().map(|s| s.stype_in).collect();
    let metadata = MetadataBuilder::new()
        .dataset(dataset.clone())
        .schema((schemas.len() == 1).then(|| subs[0].schema))
        .start(session_start)
        .stype_in((stype_ins.len() == 1).then(|| subs[0].stype_in))
        .stype_out(SType::InstrumentId)
        .build();
    let mut prelude = Vec::new();
    DbnMetadataEncoder::new(&mut prelude)
        .encode(&metadata)
        .map_err(io::Error::other)?;
    // Which instruments each rtype is subscribed for, and from when.
    let mut wanted: Vec<(u8, HashSet<u32>, Option<u64>)> = Vec::new();
    let mut mapped = HashSet::new();
    for (i, sub) in subs.iter().enumerate() {
        let ack = SystemMsg::new(
            now_ns(),
            Some(SystemCode::SubscriptionAck),
            &format!("Subscription request {i} for {} data succeeded", sub.schema),
        )
        .map_err(io::Error::other)?;
        prelude.extend_from_slice(ack.as_ref());
        let mut ids = HashSet::new();
        for symbol in &sub.symbols {
            let resolved = recorded.resolve(sub.stype_in, symbol);
            if resolved.is_empty() {
                let e = ErrorMsg::new(
                    now_ns(),
                    Some(ErrorCode::SymbolResolutionFailed),
                    &format!("Failed to resolve symbol: {symbol}"),
                    true,
                );
                prelude.extend_from_slice(e.as_ref());
            }
            for id in resolved {
                ids.insert(id);
                if mapped.insert(id) {
                    let raw = &recorded.instruments[&id];
                    let m = SymbolMappingMsg::new(
                        id,
                        session_start,
                        sub.stype_in,
                        symbol,
                        SType::RawSymbol,
                        raw,
                        session_start,
                        UNDEF_TIMESTAMP,
                    )
                    .map_err(io::Error::other)?;
                    prelude.extend_from_slice(m.as_ref());
                }
            }
        }
        wanted.push((RType::from(sub.schema) as u8, ids, sub.start));
    }
    out.send(&prelude).await?;

    // Records.
    let faults = &config.faults;
    let mut batch: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut sent = 0u64;
    let mut last_index_ts = None;
    let mut skip_left = 0u64;
    let mut skip_notice: Option<u64> = None;
    let paced_start = tokio::time::Instant::now();
    let selected = recorded.records.iter().filter(|r| {
        wanted.iter().any(|(rt, ids, start)| {
            *rt == r.rtype
                && ids.contains(&r.instrument_id)
                && start.is_none_or(|s| r.index_ts >= s)
        })
    });
    for r in selected {
        if faults.drop_after == Some(sent) && !shared.dropped.swap(true, Ordering::SeqCst) {
            let bytes = recorded.bytes_of(r);
            batch.extend_from_slice(&bytes[..bytes.len() / 2]);
            out.send(&batch).await?;
            let _ = out.write.flush().await;
            shared.update(conn, |l| {
                l.records_sent = sent;
                l.last_index_ts = last_index_ts;
            });
            return Ok(()); // closes the connection mid-record
        }
        if let Some((after, pause)) = faults.stall
            && after == sent
            && !shared.stalled.swap(true, Ordering::SeqCst)
        {
            out.send(&batch).await?;
            batch.clear();
            shared.update(conn, |l| {
                l.records_sent = sent;
                l.last_index_ts = last_index_ts;
            });
            tokio::time::sleep(pause).await;
        }
        if let Some((after, count)) = faults.skip
            && after == sent
            && !shared.skipped.swap(true, Ordering::SeqCst)
        {
            skip_left = count;
            skip_notice = Some(count);
        }
        if skip_left > 0 {
            skip_left -= 1;
            shared.update(conn, |l| l.records_skipped += 1);
            continue;
        }
        if let Some(count) = skip_notice.take() {
            let e = ErrorMsg::new(
                r.index_ts,
                Some(ErrorCode::SkippedRecordsAfterSlowReading),
                &format!("Skipped {count} records after slow reading"),
                true,
            );
            batch.extend_from_slice(e.as_ref());
        }
        if let Some(speed) = config.speed {
            let due = *shared.started.get_or_init(tokio::time::Instant::now)
                + Duration::from_secs_f64(
                    r.index_ts.saturating_sub(shared.first_index_ts) as f64 / 1e9 / speed,
                );
            if due > tokio::time::Instant::now() {
                out.send(&batch).await?;
                batch.clear();
                shared.update(conn, |l| {
                    l.records_sent = sent;
                    l.last_index_ts = last_index_ts;
                });
                tokio::time::sleep_until(due).await;
            }
        }
        let at = batch.len();
        batch.extend_from_slice(recorded.bytes_of(r));
        sent += 1;
        last_index_ts = Some(r.index_ts);
        if sent == 1 {
            shared.update(conn, |l| l.first_index_ts = Some(r.index_ts));
        }
        if let Some(pace) = config.pace {
            let due = paced_start + Duration::from_secs_f64(sent as f64 / pace.records_per_s);
            tokio::time::sleep_until(due).await;
            if pace.restamp_ts_recv
                && let Some(off) = ts_recv_offset(r.rtype)
            {
                batch[at + off..at + off + 8].copy_from_slice(&now_ns().to_le_bytes());
            }
            out.send(&batch).await?;
            batch.clear();
        } else if batch.len() >= 64 * 1024 {
            out.send(&batch).await?;
            batch.clear();
            shared.update(conn, |l| {
                l.records_sent = sent;
                l.last_index_ts = last_index_ts;
            });
        }
        if sent.is_multiple_of(1024) && config.pace.is_some() {
            shared.update(conn, |l| {
                l.records_sent = sent;
                l.last_index_ts = last_index_ts;
            });
        }
    }
    for sub in subs.iter().filter(|s| s.start.is_some()) {
        let done = SystemMsg::new(
            now_ns(),
            Some(SystemCode::ReplayCompleted),
            &format!("Finished {} replay", sub.schema),
        )
        .map_err(io::Error::other)?;
        batch.extend_from_slice(done.as_ref());
    }
    out.send(&batch).await?;
    shared.update(conn, |l| {
        l.records_sent = sent;
        l.last_index_ts = last_index_ts;
    });

    // Idle: a heartbeat every interval, until the client goes away.
    let interval = Duration::from_secs(heartbeat);
    let mut scratch = [0u8; 1024];
    loop {
        tokio::select! {
            r = read.read(&mut scratch) => match r {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(interval) => {
                out.send(SystemMsg::heartbeat(now_ns()).as_ref()).await?;
            }
        }
    }
}
