//! End-to-end: the Databento Live client against a faithful fake gateway on 127.0.0.1
//! (`common::dbn_gateway`) serving the bundled sample. What it publishes must equal
//! `spm-replay` on the same files, through split writes, zstd, a connection dropped mid-record,
//! a stall past the heartbeat timeout and records skipped by the gateway; a wrong key must end
//! the feed after one attempt.

mod common;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::dbn_gateway::{AUTH_FAILED, DbnGateway, Faults, GatewayConfig, Recorded};
use common::process::{Killed, wait_for};
use dbn::Schema;
use spymaster::event::{Event, FeedState, FeedStatus};
use spymaster::ingest::databento::{self, Compression, Session};
use spymaster::ingest::{Ingest, IngestError, Item, SOURCE_DATABENTO, Secret};

/// A key of Databento's shape (32 characters); its bucket is the last five.
const KEY: &str = "db-e2eFakeGatewayKey0123456789ab";

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// DBN files of one dataset loaded for the fake, once per test binary.
fn recorded(files: &[&str]) -> Arc<Recorded> {
    static LOADED: Mutex<BTreeMap<Vec<String>, Arc<Recorded>>> = Mutex::new(BTreeMap::new());
    let key: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    loaded
        .entry(key)
        .or_insert_with(|| {
            let paths: Vec<PathBuf> = files.iter().map(|f| testdata(f)).collect();
            Arc::new(Recorded::load(&paths).expect("load DBN files"))
        })
        .clone()
}

/// The bundled sample by dataset (each file's metadata names it): GLBX.MDP3 (ES MBP-10 and
/// trades), OPRA.PILLAR (SPY option definitions and tcbbo), XNAS.ITCH (SPY trades).
fn sample() -> Vec<Arc<Recorded>> {
    let sample = vec![
        recorded(&["es.mbp-10.dbn.zst", "es.trades.dbn.zst"]),
        opra(),
        xnas(),
    ];
    let datasets: Vec<&str> = sample.iter().map(|r| r.dataset.as_str()).collect();
    assert_eq!(datasets, ["GLBX.MDP3", "OPRA.PILLAR", "XNAS.ITCH"]);
    sample
}

/// ES trades alone (GLBX.MDP3): small enough for the fault tests.
fn es_trades() -> Arc<Recorded> {
    recorded(&["es.trades.dbn.zst"])
}

fn opra() -> Arc<Recorded> {
    recorded(&["opra.tcbbo.dbn.zst"])
}

fn xnas() -> Arc<Recorded> {
    recorded(&["spy.trades.dbn.zst"])
}

/// One published event: a hash of its JSON line and its event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    hash: u64,
    ts: u64,
}

impl Line {
    fn of(json: &str) -> Line {
        let mut h = DefaultHasher::new();
        json.hash(&mut h);
        let ts = json
            .split_once("\"ts_event_ns\":")
            .and_then(|(_, rest)| rest.split([',', '}']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Line {
            hash: h.finish(),
            ts,
        }
    }
}

/// Events by subject, in the order they came.
type BySubject = BTreeMap<String, Vec<Line>>;

/// `spm-replay` on `files`, with the live feed's `source`, by subject.
fn replay(files: &[&str]) -> BySubject {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "stdout", "--format", "ndjson"])
        .args(files.iter().map(|f| testdata(f)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn spm-replay");
    let stdout = child.stdout.take().expect("stdout");
    let mut out = BySubject::new();
    for line in BufReader::with_capacity(1 << 20, stdout).lines() {
        let line = line.expect("read spm-replay");
        assert_eq!(line.matches(r#""source":"replay""#).count(), 1, "{line}");
        let line = line.replace(
            r#""source":"replay""#,
            &format!(r#""source":"{SOURCE_DATABENTO}""#),
        );
        let event = Event::from_json(line.as_bytes(), None).expect("spm-replay event");
        out.entry(event.subject().to_string())
            .or_default()
            .push(Line::of(&line));
    }
    assert!(child.wait().expect("wait spm-replay").success());
    out
}

/// The whole sample through `spm-replay`, computed once.
fn replay_sample() -> &'static BySubject {
    static REPLAY: OnceLock<BySubject> = OnceLock::new();
    REPLAY.get_or_init(|| {
        replay(&[
            "es.mbp-10.dbn.zst",
            "es.trades.dbn.zst",
            "opra.tcbbo.dbn.zst",
            "spy.trades.dbn.zst",
        ])
    })
}

fn total(events: &BySubject) -> usize {
    events.values().map(Vec::len).sum()
}

/// Same events per subject in the same order, and the same multiset overall; on a
/// difference, says where.
fn assert_same_events(live: &BySubject, replayed: &BySubject) {
    let counts = |e: &BySubject| -> BTreeMap<String, usize> {
        e.iter().map(|(s, v)| (s.clone(), v.len())).collect()
    };
    assert_eq!(
        counts(live),
        counts(replayed),
        "events per subject (live vs spm-replay)"
    );
    for (subject, want) in replayed {
        let got = &live[subject];
        if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{subject}: event {i} differs: live ts {} vs spm-replay ts {} (a hole, a duplicate \
                 or a different mapping)",
                got[i].ts, want[i].ts
            );
        }
    }
    let sorted = |e: &BySubject| {
        let mut all: Vec<Line> = e.values().flatten().copied().collect();
        all.sort_unstable();
        all
    };
    assert!(sorted(live) == sorted(replayed), "multisets differ");
}

/// What the feeds handed to the publisher.
#[derive(Debug, Default)]
struct Published {
    events: BySubject,
    statuses: Vec<FeedStatus>,
    results: Vec<Result<(), IngestError>>,
    duplicates_dropped: u64,
}

impl Published {
    fn states(&self) -> Vec<FeedState> {
        self.statuses.iter().map(|s| s.state).collect()
    }

    fn count(&self) -> usize {
        total(&self.events)
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Event(e) => {
                let json = e.to_json();
                self.events
                    .entry(e.subject().to_string())
                    .or_default()
                    .push(Line::of(&json));
            }
            Item::Status(s) => self.statuses.push(s),
        }
    }
}

/// A session of `dataset` on the fake, with fast reconnects.
fn session(gateway: &DbnGateway, dataset: &str, schemas: &[Schema], symbols: &[&str]) -> Session {
    let symbols: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    let mut s = Session::new(dataset, schemas, &symbols, None);
    s.gateway = gateway.addr().to_string();
    s.heartbeat_s = 5;
    s.backoff_initial = Duration::from_millis(100);
    s.backoff_max = Duration::from_secs(1);
    s
}

/// Runs the sessions until `events` events have come and `done` holds of the statuses (or
/// `within` passes), then stops them and collects everything.
async fn run_feeds(
    sessions: Vec<Session>,
    key: &str,
    events: usize,
    done: impl Fn(&[FeedStatus]) -> bool,
    within: Duration,
) -> Published {
    let mut ingest = Ingest::new(1 << 20);
    let mut tasks = Vec::new();
    for s in sessions {
        let tx = ingest.feed(SOURCE_DATABENTO, &s.dataset);
        tasks.push(tokio::spawn(databento::run(s, Secret::new(key), tx)));
    }
    let (mut rx, stop, feeds) = ingest.into_parts();
    let mut out = Published::default();
    let deadline = tokio::time::Instant::now() + within;
    while out.count() < events || !done(&out.statuses) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => out.take(item),
            Ok(None) | Err(_) => break,
        }
    }
    stop.stop();
    // The queue ends once every feed has returned.
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(item) = rx.recv().await {
            out.take(item);
        }
    })
    .await;
    assert!(drained.is_ok(), "the feeds did not stop");
    for t in tasks {
        out.results.push(t.await.expect("feed task"));
    }
    out.duplicates_dropped = feeds
        .iter()
        .map(|(_, c)| {
            c.duplicates_dropped
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    out
}

fn has_gap(statuses: &[FeedStatus]) -> bool {
    statuses.iter().any(|s| s.state == FeedState::Gap)
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split('|')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

async fn sample_equals_replay(compression: Compression) {
    let mut config = GatewayConfig::new(KEY, sample());
    config.max_write = 3000;
    let gateway = DbnGateway::start(config).await.expect("fake gateway");
    let sessions: Vec<Session> = ["GLBX.MDP3", "OPRA.PILLAR", "XNAS.ITCH"]
        .into_iter()
        .map(|d| {
            let mut s = session(&gateway, d, &[], &[]);
            s.compression = compression;
            s
        })
        .collect();
    let want = replay_sample();
    let published = run_feeds(
        sessions,
        KEY,
        total(want),
        |_| true,
        Duration::from_secs(300),
    )
    .await;

    assert_same_events(&published.events, want);
    for r in &published.results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(
        published.states(),
        [FeedState::Connected; 3],
        "one connection per dataset, nothing lost: {:?}",
        published.statuses
    );

    // What the gateway was told.
    let mut logs = gateway.sessions();
    logs.sort_by(|a, b| a.dataset.cmp(&b.dataset));
    assert_eq!(logs.len(), 3, "{logs:?}");
    let expected_subscriptions = [
        (
            "GLBX.MDP3",
            vec![
                "schema=mbp-10|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1",
                "schema=trades|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1",
            ],
        ),
        (
            "OPRA.PILLAR",
            vec![
                "schema=definition|stype_in=parent|symbols=SPY.OPT|snapshot=0|is_last=1",
                "schema=tcbbo|stype_in=parent|symbols=SPY.OPT|snapshot=0|is_last=1",
            ],
        ),
        (
            "XNAS.ITCH",
            vec!["schema=trades|stype_in=raw_symbol|symbols=SPY|snapshot=0|is_last=1"],
        ),
    ];
    for (log, (dataset, subscriptions)) in logs.iter().zip(expected_subscriptions) {
        assert!(log.authenticated && log.started, "{log:?}");
        let auth = log.auth.as_deref().expect("auth line");
        let f = fields(auth);
        let keys: Vec<&str> = auth
            .split('|')
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            .collect();
        assert_eq!(
            keys,
            [
                "auth",
                "dataset",
                "encoding",
                "compression",
                "ts_out",
                "client",
                "heartbeat_interval_s",
                "slow_reader_behavior"
            ]
        );
        let (response, bucket) = f["auth"].split_once('-').expect("response-bucket");
        assert!(
            response.len() == 64 && response.bytes().all(|b| b.is_ascii_hexdigit()),
            "{response}"
        );
        assert_eq!(bucket, &KEY[KEY.len() - 5..]);
        assert_eq!(f["dataset"], dataset);
        assert_eq!(f["encoding"], "dbn");
        assert_eq!(f["compression"], compression.as_str());
        assert_eq!(f["ts_out"], "0");
        assert_eq!(
            f["client"],
            concat!("spymaster ", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(f["heartbeat_interval_s"], "5");
        assert_eq!(f["slow_reader_behavior"], "warn");
        assert!(!auth.contains(KEY), "the key itself is never sent");
        assert_eq!(log.subscriptions, subscriptions);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sample_split_across_writes_equals_spm_replay_with_auth_and_subscriptions_asserted() {
    sample_equals_replay(Compression::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sample_compressed_with_zstd_equals_spm_replay() {
    sample_equals_replay(Compression::Zstd).await;
}

/// Runs ES trades through a gateway with `faults` and checks the published stream against
/// `spm-replay` of es.trades, less what the gateway skipped.
async fn es_trades_with(
    faults: Faults,
    heartbeat_s: u32,
    done: impl Fn(&[FeedStatus]) -> bool,
) -> (Published, DbnGateway, BySubject) {
    let mut config = GatewayConfig::new(KEY, vec![es_trades()]);
    config.faults = faults;
    let gateway = DbnGateway::start(config).await.expect("fake gateway");
    let mut s = session(&gateway, "GLBX.MDP3", &[Schema::Trades], &["ES.FUT"]);
    s.heartbeat_s = heartbeat_s;
    let want = replay(&["es.trades.dbn.zst"]);
    let published = run_feeds(vec![s], KEY, total(&want), done, Duration::from_secs(120)).await;
    for r in &published.results {
        assert!(r.is_ok(), "{r:?}");
    }
    (published, gateway, want)
}

/// The reconnect was resumed from the last record handed on, and its one gap was filled.
fn assert_resumed_without_loss(published: &Published, gateway: &DbnGateway) {
    let logs = gateway.sessions();
    assert_eq!(logs.len(), 2, "one reconnect: {logs:?}");
    assert_eq!(
        logs[0].subscriptions,
        ["schema=trades|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1"]
    );
    let resume = logs[0].last_index_ts.expect("records before the fault");
    assert_eq!(
        logs[1].subscriptions,
        [format!(
            "schema=trades|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1|start={resume}"
        )],
        "resubscribed from the index time of the last record received"
    );
    assert_eq!(
        logs[1].first_index_ts,
        Some(resume),
        "the replay starts at `start`"
    );
    assert!(
        published.duplicates_dropped >= 1,
        "the replayed record at `start` was dropped as already published"
    );
    let gaps: Vec<&FeedStatus> = published
        .statuses
        .iter()
        .filter(|s| s.state == FeedState::Gap)
        .collect();
    assert_eq!(gaps.len(), 1, "{:?}", published.statuses);
    let gap = gaps[0];
    assert_eq!(gap.records_lost, Some(0), "{gap:?}");
    let (start, end) = (
        gap.gap_start_ns.expect("gap start"),
        gap.gap_end_ns.expect("gap end"),
    );
    assert!(start <= end, "{gap:?}");
    assert_eq!(
        published.states(),
        [
            FeedState::Connected,
            FeedState::Disconnected,
            FeedState::Reconnecting,
            FeedState::Connected,
            FeedState::Gap
        ],
        "{:?}",
        published.statuses
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_mid_record_resubscribes_from_start_with_no_hole_and_no_duplicate() {
    let faults = Faults {
        drop_after: Some(10_000),
        ..Faults::default()
    };
    let (published, gateway, want) = es_trades_with(faults, 5, has_gap).await;
    assert_same_events(&published.events, &want);
    assert_resumed_without_loss(&published, &gateway);
    assert_eq!(gateway.sessions()[0].records_sent, 10_000);
    let disconnected = &published.statuses[1];
    assert!(
        disconnected.reason.contains("closed the connection"),
        "{disconnected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_past_the_heartbeat_timeout_reconnects_with_no_hole_and_no_duplicate() {
    // Heartbeat 1 s: silent for 1 s + 1 s grace is dead; the gateway stalls 4 s.
    let faults = Faults {
        stall: Some((7_000, Duration::from_secs(4))),
        ..Faults::default()
    };
    let (published, gateway, want) = es_trades_with(faults, 1, has_gap).await;
    assert_same_events(&published.events, &want);
    assert_resumed_without_loss(&published, &gateway);
    let disconnected = &published.statuses[1];
    assert!(
        disconnected.reason.contains("heartbeat timeout"),
        "{disconnected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_records_after_slow_reading_are_reported_as_a_gap_with_the_count() {
    let (after, count) = (5_000u64, 100u64);
    let faults = Faults {
        skip: Some((after, count)),
        ..Faults::default()
    };
    let want = replay(&["es.trades.dbn.zst"]);
    let expected = total(&want) - count as usize;
    let mut config = GatewayConfig::new(KEY, vec![es_trades()]);
    config.faults = faults;
    let gateway = DbnGateway::start(config).await.expect("fake gateway");
    let s = session(&gateway, "GLBX.MDP3", &[Schema::Trades], &["ES.FUT"]);
    let published = run_feeds(vec![s], KEY, expected, has_gap, Duration::from_secs(120)).await;

    assert_eq!(gateway.sessions()[0].records_skipped, count);
    let gaps: Vec<&FeedStatus> = published
        .statuses
        .iter()
        .filter(|s| s.state == FeedState::Gap)
        .collect();
    assert_eq!(gaps.len(), 1, "{:?}", published.statuses);
    assert_eq!(gaps[0].records_lost, Some(count), "{:?}", gaps[0]);
    assert!(
        gaps[0].reason.contains("Skipped 100 records"),
        "{:?}",
        gaps[0]
    );
    assert!(gaps[0].gap_start_ns <= gaps[0].gap_end_ns, "{:?}", gaps[0]);
    // Everything but the skipped records, in order.
    let mut expected_events = want.clone();
    let trades = expected_events
        .get_mut("market.futures.trades")
        .expect("trades");
    trades.drain(after as usize..(after + count) as usize);
    assert_same_events(&published.events, &expected_events);
    assert_eq!(published.states(), [FeedState::Connected, FeedState::Gap]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_an_auth_error_after_exactly_one_attempt() {
    let wrong = "db-WrongKeyWrongKeyWrongKey99999";
    let gateway = DbnGateway::start(GatewayConfig::new(KEY, vec![es_trades()]))
        .await
        .expect("fake gateway");
    let s = session(&gateway, "GLBX.MDP3", &[Schema::Trades], &["ES.FUT"]);
    let ended = |s: &[FeedStatus]| s.iter().any(|s| s.state == FeedState::Error);
    let published = run_feeds(vec![s], wrong, 0, ended, Duration::from_secs(30)).await;

    let [Err(err)] = published.results.as_slice() else {
        panic!("expected one auth error: {:?}", published.results);
    };
    assert!(
        matches!(err, IngestError::Auth { message, .. } if message == AUTH_FAILED),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(AUTH_FAILED) && !text.contains(wrong),
        "{text}"
    );
    assert_eq!(gateway.connections(), 1, "no retry");
    assert_eq!(published.states(), [FeedState::Error]);
    assert!(!published.statuses[0].reason.contains(wrong));
    assert_eq!(published.count(), 0);
}

// The `spm-ingest` binary.

fn spm_ingest(gateway: &DbnGateway, key: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spm-ingest"));
    cmd.args(["--source", "databento", "--output", "stdout", "--gateway"])
        .arg(gateway.addr().to_string())
        .args(["--heartbeat-s", "5"])
        .env("DATABENTO_API_KEY", key)
        .env_remove("DATABENTO_GATEWAY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A child's stdout read on a thread: market events by subject (counted as they come) and
/// feed statuses.
struct Stdout {
    events: Arc<AtomicUsize>,
    reader: std::thread::JoinHandle<(BySubject, Vec<FeedStatus>)>,
}

fn read_stdout(child: &mut std::process::Child) -> Stdout {
    let stdout = child.stdout.take().expect("piped stdout");
    let events = Arc::new(AtomicUsize::new(0));
    let counter = events.clone();
    let reader = std::thread::spawn(move || {
        let mut by_subject = BySubject::new();
        let mut statuses = Vec::new();
        for line in BufReader::with_capacity(1 << 20, stdout).lines() {
            let Ok(line) = line else { break };
            match Event::from_json(line.as_bytes(), None).expect("an event per line") {
                Event::FeedStatus(s) => statuses.push(s),
                e => {
                    by_subject
                        .entry(e.subject().to_string())
                        .or_default()
                        .push(Line::of(&line));
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        (by_subject, statuses)
    });
    Stdout { events, reader }
}

fn read_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    })
}

#[test]
fn spm_ingest_publishes_on_stdout_what_spm_replay_gives_and_exits_0_on_sigint() {
    let config = GatewayConfig::new(KEY, vec![es_trades(), opra(), xnas()]);
    let gateway = DbnGateway::start_in_background(config).expect("fake gateway");
    let want = replay(&[
        "es.trades.dbn.zst",
        "opra.tcbbo.dbn.zst",
        "spy.trades.dbn.zst",
    ]);
    let mut child = Killed(
        spm_ingest(&gateway, KEY)
            .args(["--dataset", "GLBX.MDP3", "--schema", "trades", "--symbols"])
            .args([
                "ES.FUT",
                "--dataset",
                "OPRA.PILLAR",
                "--dataset",
                "XNAS.ITCH",
            ])
            .spawn()
            .expect("spawn spm-ingest"),
    );
    let stdout = read_stdout(&mut child.0);
    let stderr = read_stderr(&mut child.0);
    let arrived = wait_for(Duration::from_secs(60), || {
        stdout.events.load(Ordering::Relaxed) >= total(&want)
            || child.0.try_wait().is_ok_and(|s| s.is_some())
    }) && stdout.events.load(Ordering::Relaxed) >= total(&want);
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let status = child.wait_within(Duration::from_secs(20));
    let (events, statuses) = stdout.reader.join().expect("stdout reader");
    let log = stderr.join().expect("stderr reader");
    assert!(
        arrived,
        "{} of {} events: {log}",
        total(&events),
        total(&want)
    );
    assert!(status.success(), "{status:?}: {log}");
    assert_same_events(&events, &want);
    let mut connected: Vec<&str> = statuses
        .iter()
        .filter(|s| s.state == FeedState::Connected)
        .filter_map(|s| s.feed.as_deref())
        .collect();
    connected.sort_unstable();
    assert_eq!(
        connected,
        ["GLBX.MDP3", "OPRA.PILLAR", "XNAS.ITCH"],
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| s.state == FeedState::Connected),
        "{statuses:?}"
    );
    let mut subscriptions: Vec<String> = gateway
        .sessions()
        .into_iter()
        .flat_map(|l| l.subscriptions)
        .collect();
    subscriptions.sort();
    assert_eq!(
        subscriptions,
        [
            "schema=definition|stype_in=parent|symbols=SPY.OPT|snapshot=0|is_last=1",
            "schema=tcbbo|stype_in=parent|symbols=SPY.OPT|snapshot=0|is_last=1",
            "schema=trades|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1",
            "schema=trades|stype_in=raw_symbol|symbols=SPY|snapshot=0|is_last=1",
        ]
    );
    assert!(!log.contains(KEY), "the key is never printed: {log}");
}

#[test]
fn spm_ingest_with_a_wrong_key_exits_1_with_the_gateway_error_after_one_attempt() {
    let gateway = DbnGateway::start_in_background(GatewayConfig::new(KEY, vec![es_trades()]))
        .expect("fake gateway");
    let wrong = "db-WrongKeyWrongKeyWrongKey99999";
    let mut child = Killed(
        spm_ingest(&gateway, wrong)
            .args(["--dataset", "GLBX.MDP3", "--schema", "trades", "--symbols"])
            .arg("ES.FUT")
            .spawn()
            .expect("spawn spm-ingest"),
    );
    let stdout = read_stdout(&mut child.0);
    let stderr = read_stderr(&mut child.0);
    let status = child.wait_within(Duration::from_secs(30));
    let (events, statuses) = stdout.reader.join().expect("stdout reader");
    let log = stderr.join().expect("stderr reader");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(AUTH_FAILED),
        "the gateway's error is shown: {log}"
    );
    assert!(!log.contains(wrong), "the key is never printed: {log}");
    assert_eq!(gateway.connections(), 1, "no retry: {log}");
    assert_eq!(total(&events), 0);
    assert_eq!(
        statuses.iter().map(|s| s.state).collect::<Vec<_>>(),
        [FeedState::Error],
        "{statuses:?}"
    );
}

#[test]
fn spm_ingest_without_a_key_says_what_is_missing_and_connects_nowhere() {
    let gateway = DbnGateway::start_in_background(GatewayConfig::new(KEY, vec![es_trades()]))
        .expect("fake gateway");
    let mut cmd = spm_ingest(&gateway, "");
    cmd.env_remove("DATABENTO_API_KEY");
    let mut child = Killed(cmd.spawn().expect("spawn spm-ingest"));
    let stderr = read_stderr(&mut child.0);
    let status = child.wait_within(Duration::from_secs(30));
    let log = stderr.join().expect("stderr reader");
    assert!(!status.success(), "{log}");
    assert!(log.contains("DATABENTO_API_KEY"), "{log}");
    assert_eq!(gateway.connections(), 0);
}
