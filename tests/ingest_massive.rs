//! The Massive WebSocket feeds against a fake Massive server written here: a tokio-tungstenite
//! listener on 127.0.0.1 that hands every accepted connection to the test, which then plays the
//! server's side of Polygon's protocol message by message and checks what the client sent.
//!
//! Reconnect timing runs on paused tokio time: the fake stamps each accept with
//! `tokio::time::Instant`, and the gaps between a close and the next accept are compared with
//! the backoff's own draws (same seed). On paused time the runtime jumps to the next pending
//! timer whenever it would wait while loopback bytes are still in flight, so those tests keep
//! no timer pending but the one measured: the helpers here never time out on tokio's clock, the
//! client runs without its connect timeout, and a hang is caught by a watchdog on real time.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use spymaster::event::{Event, FeedState, FeedStatus, OptionTrade, StockQuote, StockTrade};
use spymaster::ingest::massive::{self, MassiveConfig};
use spymaster::ingest::{Backoff, Ingest, IngestError, Item, SOURCE_MASSIVE, Secret, StopHandle};

const KEY: &str = "test-key-0123456789";
/// Real time after which a test is declared hung.
const HUNG: Duration = Duration::from_secs(120);
/// 2025-11-21 16:00 ET in Unix milliseconds.
const T0_MS: u64 = 1_763_758_800_000;

// ---------------------------------------------------------------------------------------------
// Hang protection

/// Ends the process if the test is still running after [`HUNG`] of real time (tokio timeouts
/// cannot guard paused-time tests); disarmed when dropped.
struct Watchdog(#[allow(dead_code)] std_mpsc::Sender<()>);

fn watchdog() -> Watchdog {
    let (tx, rx) = std_mpsc::channel::<()>();
    let name = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    std::thread::spawn(move || {
        if let Err(std_mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(HUNG) {
            eprintln!("{name}: still running after {HUNG:?}: hung");
            std::process::exit(101);
        }
    });
    Watchdog(tx)
}

// ---------------------------------------------------------------------------------------------
// The fake server

/// Accepts WebSocket connections on 127.0.0.1 and hands them to the test.
struct Fake {
    base_url: String,
    conns: mpsc::UnboundedReceiver<Conn>,
    accept_loop: JoinHandle<()>,
}

/// One accepted connection: the test is the server.
struct Conn {
    path: String,
    accepted_at: Instant,
    ws: WebSocketStream<TcpStream>,
}

impl Fake {
    async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::unbounded_channel();
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let accepted_at = Instant::now();
                let mut path = String::new();
                // The error type is tungstenite's, fixed by its `Callback` trait.
                #[allow(clippy::result_large_err)]
                let upgrade = |req: &Request, resp: Response| {
                    path = req.uri().path().to_string();
                    Ok(resp)
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, upgrade).await else {
                    continue;
                };
                let conn = Conn {
                    path,
                    accepted_at,
                    ws,
                };
                if tx.send(conn).is_err() {
                    return;
                }
            }
        });
        Fake {
            base_url: format!("ws://{addr}"),
            conns,
            accept_loop,
        }
    }

    /// The next connection the client opens.
    async fn next(&mut self) -> Conn {
        self.conns
            .recv()
            .await
            .expect("the fake's accept loop ended")
    }

    /// Whether no connection is waiting.
    fn no_more_connections(&mut self) -> bool {
        matches!(self.conns.try_recv(), Err(mpsc::error::TryRecvError::Empty))
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

fn status_msg(status: &str, message: &str) -> Value {
    json!([{"ev": "status", "status": status, "message": message}])
}

impl Conn {
    async fn send(&mut self, v: Value) {
        self.send_raw(&v.to_string()).await;
    }

    async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next message from the client.
    async fn recv(&mut self) -> Value {
        match self.ws.next().await {
            Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected a text message from the client, got {other:?}"),
        }
    }

    /// The next message from the client, if one arrives within `wait` (real-time tests only).
    async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.recv()).await.ok()
    }

    /// `connected`, then the client's auth (checked), then `auth_success`.
    async fn authenticate(&mut self) {
        self.send(status_msg("connected", "Connected Successfully"))
            .await;
        assert_eq!(self.recv().await, json!({"action": "auth", "params": KEY}));
        self.send(status_msg("auth_success", "authenticated")).await;
    }

    /// The client's next message, which must be `action`; acknowledged like Massive does.
    /// Returns its channels.
    async fn expect_action(&mut self, action: &str) -> Vec<String> {
        let msg = self.recv().await;
        assert_eq!(msg["action"], action, "{msg}");
        let channels: Vec<String> = msg["params"]
            .as_str()
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect();
        let verb = if action == "subscribe" {
            "subscribed to"
        } else {
            "unsubscribed to"
        };
        let acks: Vec<Value> = channels
            .iter()
            .map(
                |c| json!({"ev": "status", "status": "success", "message": format!("{verb}: {c}")}),
            )
            .collect();
        self.send(Value::Array(acks)).await;
        channels
    }

    /// From now on only answers the client (its close, as a real server does), in the
    /// background.
    fn answer_in_background(mut self) {
        tokio::spawn(async move { while let Some(Ok(_)) = self.ws.next().await {} });
    }

    /// Closes politely and waits for the client's answer; returns when the close was sent.
    async fn close(mut self) -> Instant {
        let at = Instant::now();
        let _ = self.ws.close(None).await;
        while let Some(Ok(_)) = self.ws.next().await {}
        at
    }
}

// ---------------------------------------------------------------------------------------------
// The feed under test

/// A running feed and what it publishes.
struct Running {
    out: mpsc::Receiver<Item>,
    statuses: Vec<FeedStatus>,
    stop: StopHandle,
    task: JoinHandle<Result<(), IngestError>>,
}

fn config(fake: &Fake) -> MassiveConfig {
    let mut cfg = MassiveConfig::new(&fake.base_url, "SPY").unwrap();
    cfg.expiration = NaiveDate::from_ymd_opt(2025, 11, 21);
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.backoff_seed = Some(7);
    cfg
}

/// For paused time: 1 s doubling to 60 s, and no connect timeout (see the module doc).
fn paused_config(fake: &Fake) -> MassiveConfig {
    let mut cfg = config(fake);
    cfg.backoff_initial = Duration::from_secs(1);
    cfg.backoff_max = Duration::from_secs(60);
    cfg.connect_timeout = None;
    cfg
}

fn start_stocks(cfg: MassiveConfig, key: &str) -> (Running, watch::Receiver<Option<f64>>) {
    let mut ingest = Ingest::new(1024);
    let tx = ingest.feed(SOURCE_MASSIVE, "stocks");
    let (out, stop, _) = ingest.into_parts();
    let (spot_tx, spot_rx) = massive::spot_channel();
    let task = tokio::spawn(massive::run_stocks(cfg, Secret::new(key), tx, spot_tx));
    let running = Running {
        out,
        statuses: Vec::new(),
        stop,
        task,
    };
    (running, spot_rx)
}

fn start_options(cfg: MassiveConfig) -> (Running, watch::Sender<Option<f64>>) {
    let mut ingest = Ingest::new(1024);
    let tx = ingest.feed(SOURCE_MASSIVE, "options");
    let (out, stop, _) = ingest.into_parts();
    let (spot_tx, spot_rx) = massive::spot_channel();
    let task = tokio::spawn(massive::run_options(cfg, Secret::new(KEY), tx, spot_rx));
    let running = Running {
        out,
        statuses: Vec::new(),
        stop,
        task,
    };
    (running, spot_tx)
}

impl Running {
    async fn item(&mut self) -> Item {
        self.out.recv().await.expect("the feed's queue closed")
    }

    /// The next event; statuses on the way are kept in `statuses`.
    async fn event(&mut self) -> Event {
        loop {
            match self.item().await {
                Item::Event(e) => return e,
                Item::Status(s) => self.statuses.push(s),
            }
        }
    }

    /// The next status (an event on the way is a failure).
    async fn status(&mut self) -> FeedStatus {
        match self.item().await {
            Item::Status(s) => {
                self.statuses.push(s.clone());
                s
            }
            Item::Event(e) => panic!("expected a status, got {e:?}"),
        }
    }

    /// The next status in `state` (earlier statuses are kept and skipped).
    async fn status_in(&mut self, state: FeedState) -> FeedStatus {
        loop {
            let s = self.status().await;
            if s.state == state {
                return s;
            }
        }
    }

    /// Stops the feed and returns how it ended.
    async fn stop(self) -> Result<(), IngestError> {
        self.stop.stop();
        self.task.await.unwrap()
    }

    async fn finished(self) -> Result<(), IngestError> {
        self.task.await.unwrap()
    }

    /// The client's next connection; a failure if the feed ends instead.
    async fn reconnects(&mut self, fake: &mut Fake) -> Conn {
        tokio::select! {
            conn = fake.next() => conn,
            r = &mut self.task => panic!("the feed ended instead of reconnecting: {r:?}"),
        }
    }

    /// How the feed ends; a failure if it connects again instead.
    async fn gives_up(self, fake: &mut Fake) -> Result<(), IngestError> {
        tokio::select! {
            r = self.task => r.unwrap(),
            _ = fake.next() => panic!("the feed connected again instead of giving up"),
        }
    }
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn stock_trade(price: f64, size: u32, t_ms: u64, q: u64) -> Value {
    json!({"ev": "T", "sym": "SPY", "x": 4, "i": "52983525029461", "z": 3, "p": price, "s": size,
           "c": [12, 37], "t": t_ms, "q": q})
}

/// Log lines written while the guard lives (tasks of a current-thread runtime included).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Stocks

#[tokio::test]
async fn stocks_session_authenticates_subscribes_and_maps_trades_and_quotes_field_by_field() {
    let _watchdog = watchdog();
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut fake = Fake::start().await;
    let (mut feed, spot) = start_stocks(config(&fake), KEY);

    let mut conn = fake.next().await;
    assert_eq!(conn.path, "/stocks");
    // The client speaks only when spoken to: nothing before `connected`.
    assert_eq!(conn.recv_within(Duration::from_millis(200)).await, None);
    conn.authenticate().await;
    assert_eq!(
        conn.recv().await,
        json!({"action": "subscribe", "params": "T.SPY,Q.SPY"})
    );
    conn.send(json!([
        {"ev": "status", "status": "success", "message": "subscribed to: T.SPY"},
        {"ev": "status", "status": "success", "message": "subscribed to: Q.SPY"},
    ]))
    .await;
    let connected = feed.status().await;
    assert_eq!(connected.state, FeedState::Connected);
    assert_eq!(connected.source, SOURCE_MASSIVE);
    assert_eq!(connected.feed.as_deref(), Some("stocks"));
    assert!(connected.reason.contains("T.SPY,Q.SPY"), "{connected:?}");

    let before = wall_ns();
    conn.send(json!([
        stock_trade(687.12, 100, T0_MS + 123, 1234),
        {"ev": "A", "sym": "SPY", "v": 100, "o": 687.0},
        {"ev": "Q", "sym": "SPY", "bx": 4, "bp": 687.10, "bs": 3, "ax": 7, "ap": 687.20, "as": 2,
         "c": 0, "i": [604], "t": T0_MS + 124, "q": 1235, "z": 3},
    ]))
    .await;
    conn.send(json!([
        {"ev": "Q", "sym": "SPY", "bx": 4, "bp": 0, "bs": 0, "ax": 7, "ap": 687.21, "as": 5,
         "t": T0_MS + 125}
    ]))
    .await;

    let Event::StockTrade(trade) = feed.event().await else {
        panic!("expected a stock trade");
    };
    let Event::StockQuote(quote) = feed.event().await else {
        panic!("expected a stock quote");
    };
    let Event::StockQuote(one_sided) = feed.event().await else {
        panic!("expected a stock quote");
    };
    let after = wall_ns();
    for ts in [trade.ts_recv_ns, quote.ts_recv_ns, one_sided.ts_recv_ns] {
        assert!(
            (before..=after).contains(&ts),
            "ts_recv_ns {ts} is not the receive time"
        );
    }
    assert_eq!(
        trade,
        StockTrade {
            ts_event_ns: (T0_MS + 123) * 1_000_000,
            ts_recv_ns: trade.ts_recv_ns,
            source: "massive_ws".into(),
            symbol: "SPY".into(),
            price: 687.12,
            size: 100,
            exchange: Some("4".into()),
            seq: Some(1234),
        }
    );
    assert_eq!(
        quote,
        StockQuote {
            ts_event_ns: (T0_MS + 124) * 1_000_000,
            ts_recv_ns: quote.ts_recv_ns,
            source: "massive_ws".into(),
            symbol: "SPY".into(),
            bid_px: 687.10,
            ask_px: 687.20,
            bid_sz: 3,
            ask_sz: 2,
            seq: Some(1235),
        }
    );
    assert!(
        one_sided.bid_px.is_nan(),
        "an empty side is null: {one_sided:?}"
    );
    assert_eq!(
        (
            one_sided.bid_sz,
            one_sided.ask_px,
            one_sided.ask_sz,
            one_sided.seq
        ),
        (0, 687.21, 5, None)
    );
    // Spot for the options feed: the last trade, then quote midpoints with both sides.
    assert_eq!(*spot.borrow(), Some((687.10 + 687.20) / 2.0));

    // Stopping closes the socket politely.
    feed.stop.stop();
    let closing = conn.ws.next().await;
    assert!(
        matches!(closing, Some(Ok(Message::Close(_)))),
        "{closing:?}"
    );
    drop(conn);
    let mut statuses = Vec::new();
    let result = feed.task.await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    while let Ok(Item::Status(s)) = feed.out.try_recv() {
        statuses.push(s);
    }
    assert_eq!(
        statuses.iter().map(|s| s.state).collect::<Vec<_>>(),
        [FeedState::Disconnected]
    );
    assert!(!logs.text().contains(KEY), "the key was logged");
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_a_server_close_and_max_connections_follow_the_backoff_and_resubscribe() {
    let _watchdog = watchdog();
    let mut fake = Fake::start().await;
    let (mut feed, _spot) = start_stocks(paused_config(&fake), KEY);
    // The delays the client must wait: the same backoff, the same seed.
    let mut expected = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(60), 7);

    let subscribe = || json!({"action": "subscribe", "params": "T.SPY,Q.SPY"});
    let waited = |closed: Instant, conn: &Conn| conn.accepted_at - closed;
    let assert_delay = |what: &str, got: Duration, want: Duration, nominal: Duration| {
        assert!(
            got >= want && got <= want + Duration::from_millis(2),
            "{what}: reconnected after {got:?}, the backoff drew {want:?}"
        );
        assert!(
            got >= nominal / 2 && got <= nominal + Duration::from_millis(2),
            "{what}: {got:?} outside the jitter band of {nominal:?}"
        );
    };

    // 1: data flows, then the server closes.
    let mut conn = fake.next().await;
    conn.authenticate().await;
    assert_eq!(conn.recv().await, subscribe());
    conn.send(json!([stock_trade(687.0, 100, T0_MS, 1)])).await;
    let Event::StockTrade(first) = feed.event().await else {
        panic!("expected a trade")
    };
    let closed = conn.close().await;
    let disconnected = feed.status_in(FeedState::Disconnected).await;
    assert_eq!(disconnected.gap_start_ns, Some(first.ts_event_ns));
    let d1 = expected.next_delay();
    let reconnecting = feed.status_in(FeedState::Reconnecting).await;
    assert!(
        reconnecting
            .reason
            .contains(&format!("{:.3} s", d1.as_secs_f64())),
        "{reconnecting:?} does not name the delay {d1:?}"
    );

    // 2: after the first delay (1 s nominal); subscriptions restored; closed without data.
    let mut conn = fake.next().await;
    assert_delay(
        "after a close",
        waited(closed, &conn),
        d1,
        Duration::from_secs(1),
    );
    conn.authenticate().await;
    assert_eq!(conn.recv().await, subscribe());
    let closed = conn.close().await;

    // 3: no data flowed, so the delay doubled (2 s nominal); this time `max_connections`.
    let d2 = expected.next_delay();
    let mut conn = fake.next().await;
    assert_delay(
        "after a second close",
        waited(closed, &conn),
        d2,
        Duration::from_secs(2),
    );
    conn.send(status_msg("connected", "Connected Successfully"))
        .await;
    assert_eq!(conn.recv().await, json!({"action": "auth", "params": KEY}));
    conn.send(status_msg(
        "max_connections",
        "Maximum number of websocket connections exceeded. You have been disconnected. \
         Update your subscription to add more connections",
    ))
    .await;
    let closed = conn.close().await;

    // 4: doubled again (4 s nominal); resubscribed; data flows and the hole is reported.
    let d3 = expected.next_delay();
    let mut conn = fake.next().await;
    assert_delay(
        "after max_connections",
        waited(closed, &conn),
        d3,
        Duration::from_secs(4),
    );
    conn.authenticate().await;
    assert_eq!(conn.recv().await, subscribe());
    conn.send(json!([stock_trade(688.0, 5, T0_MS + 60_000, 2)]))
        .await;
    let Event::StockTrade(after) = feed.event().await else {
        panic!("expected a trade")
    };
    assert_eq!(after.price, 688.0);
    let gap = feed
        .statuses
        .iter()
        .find(|s| s.state == FeedState::Gap)
        .expect("no gap reported after the reconnect");
    assert_eq!(gap.gap_start_ns, Some(first.ts_event_ns));
    assert_eq!(gap.gap_end_ns, Some(after.ts_event_ns));
    let reconnects = feed
        .statuses
        .iter()
        .filter(|s| s.state == FeedState::Reconnecting)
        .count();
    assert_eq!(reconnects, 3);
    let closed = conn.close().await;

    // 5: data flowed, so the backoff started over (1 s nominal).
    expected.reset();
    let d4 = expected.next_delay();
    let mut conn = fake.next().await;
    assert_delay(
        "after data flowed again",
        waited(closed, &conn),
        d4,
        Duration::from_secs(1),
    );
    conn.authenticate().await;
    assert_eq!(conn.recv().await, subscribe());

    conn.answer_in_background();
    assert!(feed.stop().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn max_connections_beyond_the_retry_budget_is_refused_and_not_retried() {
    let _watchdog = watchdog();
    let mut fake = Fake::start().await;
    let mut cfg = paused_config(&fake);
    cfg.limit_retries = 2;
    let (mut feed, _spot) = start_stocks(cfg, KEY);
    let mut expected = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(60), 7);

    let mut closed = None;
    for attempt in 1..=3 {
        let mut conn = if attempt == 1 {
            fake.next().await
        } else {
            feed.reconnects(&mut fake).await
        };
        if let Some(closed) = closed {
            let want = expected.next_delay();
            let got = conn.accepted_at - closed;
            assert!(
                got >= want && got <= want + Duration::from_millis(2),
                "attempt {attempt}: after {got:?}, the backoff drew {want:?}"
            );
        }
        conn.send(status_msg("connected", "Connected Successfully"))
            .await;
        assert_eq!(conn.recv().await, json!({"action": "auth", "params": KEY}));
        conn.send(status_msg(
            "max_connections",
            "Maximum number of websocket connections exceeded.",
        ))
        .await;
        closed = Some(conn.close().await);
    }
    let error = feed.status_in(FeedState::Error).await;
    assert!(error.reason.contains("max_connections"), "{error:?}");
    let statuses = feed.statuses.clone();
    let result = feed.gives_up(&mut fake).await;
    assert!(
        matches!(&result, Err(IngestError::Refused { feed, .. }) if feed == "stocks"),
        "{result:?}"
    );
    // Never `connected`, two waits, then the error; and no fourth connection, however long.
    assert_eq!(
        statuses.iter().map(|s| s.state).collect::<Vec<_>>(),
        [
            FeedState::Reconnecting,
            FeedState::Reconnecting,
            FeedState::Error
        ]
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(fake.no_more_connections());
}

#[tokio::test(start_paused = true)]
async fn max_connections_answers_count_per_hour_even_when_data_flows_between_so_sharing_a_key_stops()
 {
    let _watchdog = watchdog();
    let mut fake = Fake::start().await;
    let mut cfg = paused_config(&fake);
    cfg.limit_retries = 1;
    let (mut feed, _spot) = start_stocks(cfg, KEY);
    let kicked = || {
        status_msg(
            "max_connections",
            "Maximum number of websocket connections exceeded.",
        )
    };

    // Each connection works, then another client takes the key's connection.
    let mut conn = fake.next().await;
    conn.authenticate().await;
    conn.expect_action("subscribe").await;
    conn.send(json!([stock_trade(687.0, 1, T0_MS, 1)])).await;
    feed.event().await;
    conn.send(kicked()).await;
    conn.close().await;

    // Retried (one answer within the hour); an hour later the first answer no longer counts.
    let mut conn = feed.reconnects(&mut fake).await;
    conn.authenticate().await;
    conn.expect_action("subscribe").await;
    conn.send(json!([stock_trade(687.0, 1, T0_MS + 1, 2)]))
        .await;
    feed.event().await;
    tokio::time::sleep(massive::LIMIT_WINDOW + Duration::from_secs(1)).await;
    conn.send(kicked()).await;
    conn.close().await;

    // Retried again; the next answer within the hour is the end, though data flowed between.
    let mut conn = feed.reconnects(&mut fake).await;
    conn.authenticate().await;
    conn.expect_action("subscribe").await;
    conn.send(json!([stock_trade(687.0, 1, T0_MS + 2, 3)]))
        .await;
    feed.event().await;
    conn.send(kicked()).await;
    conn.close().await;

    let result = feed.gives_up(&mut fake).await;
    assert!(
        matches!(&result, Err(IngestError::Refused { .. })),
        "{result:?}"
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(fake.no_more_connections());
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_is_an_auth_error_after_exactly_one_connection_and_never_printed() {
    let _watchdog = watchdog();
    let logs = Logs::default();
    let _guard = logs.capture();
    let wrong = "wrong-key-abcdef";
    let mut fake = Fake::start().await;
    let (mut feed, _spot) = start_stocks(paused_config(&fake), wrong);

    let mut conn = fake.next().await;
    conn.send(status_msg("connected", "Connected Successfully"))
        .await;
    assert_eq!(
        conn.recv().await,
        json!({"action": "auth", "params": wrong})
    );
    // A server that echoes what it was sent must not make the key appear anywhere.
    conn.send(status_msg(
        "auth_failed",
        &format!("authentication failed for {wrong}"),
    ))
    .await;
    let error = feed.status().await;
    assert_eq!(error.state, FeedState::Error);
    assert!(error.reason.contains("authentication failed"), "{error:?}");
    let result = feed.finished().await;
    let Err(e @ IngestError::Auth { .. }) = &result else {
        panic!("expected an auth error, got {result:?}");
    };
    for text in [
        e.to_string(),
        format!("{e:?}"),
        error.reason.clone(),
        logs.text(),
    ] {
        assert!(!text.contains(wrong), "the key leaked: {text}");
    }
    assert!(e.to_string().contains("***"), "{e}");
    drop(conn);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        fake.no_more_connections(),
        "the client retried a refused key"
    );
}

#[tokio::test]
async fn malformed_json_is_reported_with_its_first_bytes_and_skipped_on_the_same_connection() {
    let _watchdog = watchdog();
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut fake = Fake::start().await;
    let (mut feed, _spot) = start_stocks(config(&fake), KEY);
    let mut conn = fake.next().await;
    conn.authenticate().await;
    conn.expect_action("subscribe").await;
    assert_eq!(feed.status().await.state, FeedState::Connected);
    feed.statuses.clear();

    conn.send_raw(r#"[{"ev":"T","sym":"SPY","p":687.1,"#).await;
    conn.send_raw("<html>502 Bad Gateway</html>").await;
    conn.send(json!([
        {"ev": "T", "sym": "SPY", "s": 10, "t": T0_MS},
        stock_trade(687.5, 7, T0_MS + 1, 9),
    ]))
    .await;

    let Event::StockTrade(t) = feed.event().await else {
        panic!("expected a trade")
    };
    assert_eq!((t.price, t.size, t.seq), (687.5, 7, Some(9)));
    let reports: Vec<&FeedStatus> = feed.statuses.iter().collect();
    assert_eq!(reports.len(), 3, "{reports:#?}");
    for r in &reports {
        assert_eq!(r.state, FeedState::Gap);
        assert_eq!(r.feed.as_deref(), Some("stocks"));
        assert!(r.reason.starts_with("malformed message skipped"), "{r:?}");
    }
    assert!(
        reports[0]
            .reason
            .contains(r#"`[{"ev":"T","sym":"SPY","p":687.1,`"#)
    );
    assert!(reports[1].reason.contains("`<html>502 Bad Gateway</html>`"));
    assert!(reports[2].reason.contains("a trade without a price `p`"));
    let log = logs.text();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("stocks") && l.contains("<html>502")),
        "no warning naming the connection and the message:\n{log}"
    );
    // Still the same connection.
    conn.send(json!([stock_trade(687.6, 1, T0_MS + 2, 10)]))
        .await;
    let Event::StockTrade(t) = feed.event().await else {
        panic!("expected a trade")
    };
    assert_eq!(t.seq, Some(10));
    assert!(fake.no_more_connections());
    conn.answer_in_background();
    assert!(feed.stop().await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Options

/// The trade and quote channels of SPY 2025-11-21 contracts.
fn chans(contracts: &[(u32, char)]) -> BTreeSet<String> {
    contracts
        .iter()
        .flat_map(|(k, r)| {
            let sym = format!("O:SPY251121{r}{:08}", k * 1000);
            [format!("T.{sym}"), format!("Q.{sym}")]
        })
        .collect()
}

fn both(strikes: &[u32]) -> Vec<(u32, char)> {
    strikes
        .iter()
        .flat_map(|k| [(*k, 'C'), (*k, 'P')])
        .collect()
}

fn set(channels: Vec<String>) -> BTreeSet<String> {
    let n = channels.len();
    let s: BTreeSet<String> = channels.into_iter().collect();
    assert_eq!(s.len(), n, "a channel named twice");
    s
}

#[tokio::test]
async fn options_wait_for_spot_subscribe_the_nearest_0dte_strikes_and_attach_the_last_quote() {
    let _watchdog = watchdog();
    let mut fake = Fake::start().await;
    let mut cfg = config(&fake);
    cfg.strikes = 2.0;
    cfg.max_option_contracts = 6;
    let (mut feed, spot) = start_options(cfg);

    let mut conn = fake.next().await;
    assert_eq!(conn.path, "/options");
    conn.authenticate().await;
    // No spot yet: nothing subscribed.
    assert_eq!(conn.recv_within(Duration::from_millis(300)).await, None);
    spot.send_replace(Some(687.4));
    // Strikes 686–689 are within $2; the limit of 6 keeps 687, 688, 686 (nearest first).
    let subscribed = set(conn.expect_action("subscribe").await);
    assert_eq!(subscribed, chans(&both(&[686, 687, 688])));
    let connected = feed.status().await;
    assert_eq!(connected.state, FeedState::Connected);
    assert_eq!(connected.feed.as_deref(), Some("options"));

    let call = "O:SPY251121C00687000";
    conn.send(json!([
        {"ev": "Q", "sym": call, "bx": 302, "bp": 1.20, "bs": 17, "ax": 302, "ap": 1.25,
         "as": 24, "t": T0_MS, "q": 10},
        {"ev": "T", "sym": call, "x": 65, "p": 1.23, "s": 5, "c": [233], "t": T0_MS + 1, "q": 11},
        {"ev": "T", "sym": "O:SPY251121P00686000", "x": 65, "p": 0.40, "s": 2, "t": T0_MS + 2},
    ]))
    .await;
    conn.send(json!([
        {"ev": "Q", "sym": call, "bp": 1.30, "bs": 1, "ap": 1.35, "as": 1, "t": T0_MS + 3},
        {"ev": "T", "sym": call, "p": 1.35, "s": 1, "t": T0_MS + 4, "q": 13},
    ]))
    .await;

    let Event::OptionTrade(t) = feed.event().await else {
        panic!("expected an option trade")
    };
    assert_eq!(
        t,
        OptionTrade {
            ts_event_ns: (T0_MS + 1) * 1_000_000,
            ts_recv_ns: t.ts_recv_ns,
            source: "massive_ws".into(),
            underlying: "SPY".into(),
            option_symbol: "SPY   251121C00687000".into(),
            exp_date: "2025-11-21".into(),
            strike: 687.0,
            right: 'C',
            price: 1.23,
            size: 5,
            opt_bid: Some(1.20),
            opt_ask: Some(1.25),
            aggressor: 0,
            seq: Some(11),
        }
    );
    let Event::OptionTrade(put) = feed.event().await else {
        panic!("expected an option trade")
    };
    assert_eq!(put.option_symbol, "SPY   251121P00686000");
    assert_eq!(
        (put.strike, put.right, put.price, put.size),
        (686.0, 'P', 0.40, 2)
    );
    assert_eq!(
        (put.opt_bid, put.opt_ask),
        (None, None),
        "no quote for this contract yet"
    );
    let Event::OptionTrade(later) = feed.event().await else {
        panic!("expected an option trade")
    };
    assert_eq!(
        (later.opt_bid, later.opt_ask),
        (Some(1.30), Some(1.35)),
        "the last quote"
    );
    conn.answer_in_background();
    assert!(feed.stop().await.is_ok());
}

#[tokio::test]
async fn options_recentre_on_spot_moves_within_the_limit_and_the_window_is_restored_after_a_reconnect()
 {
    let _watchdog = watchdog();
    let mut fake = Fake::start().await;
    let mut cfg = config(&fake);
    cfg.strikes = 2.0;
    cfg.max_option_contracts = 6;
    cfg.recenter = 1.0;
    let (mut feed, spot) = start_options(cfg);
    spot.send_replace(Some(687.4));

    let mut conn = fake.next().await;
    conn.authenticate().await;
    let mut live = set(conn.expect_action("subscribe").await);
    assert_eq!(live, chans(&both(&[686, 687, 688])));

    // A move of $0.50 is within --recenter: nothing changes.
    spot.send_replace(Some(687.9));
    assert_eq!(conn.recv_within(Duration::from_millis(300)).await, None);

    // $1.60 from the centre: 686 and 687 leave first, then 689 and 690 enter; never over 6.
    spot.send_replace(Some(689.0));
    let left = set(conn.expect_action("unsubscribe").await);
    assert_eq!(left, chans(&both(&[686, 687])));
    assert!(left.is_subset(&live));
    live.retain(|c| !left.contains(c));
    let entered = set(conn.expect_action("subscribe").await);
    assert_eq!(entered, chans(&both(&[689, 690])));
    assert!(entered.is_disjoint(&live));
    live.extend(entered);
    assert_eq!(live, chans(&both(&[688, 689, 690])));
    assert!(live.len() / 2 <= 6, "over the contract limit");

    // A quote, then the server goes away: the whole current window comes back, and a quote from
    // before the reconnect is not attached to a trade after it.
    conn.send(
        json!([{"ev": "Q", "sym": "O:SPY251121C00688000", "bp": 2.0, "ap": 2.1, "t": T0_MS}]),
    )
    .await;
    let _ = conn.close().await;
    let disconnected = feed.status_in(FeedState::Disconnected).await;
    assert_eq!(disconnected.gap_start_ns, Some(T0_MS * 1_000_000));

    let mut conn = fake.next().await;
    conn.authenticate().await;
    assert_eq!(set(conn.expect_action("subscribe").await), live);
    conn.send(
        json!([{"ev": "T", "sym": "O:SPY251121C00688000", "p": 2.05, "s": 3, "t": T0_MS + 9_000}]),
    )
    .await;
    let Event::OptionTrade(t) = feed.event().await else {
        panic!("expected an option trade")
    };
    assert_eq!(t.option_symbol, "SPY   251121C00688000");
    assert_eq!((t.opt_bid, t.opt_ask), (None, None));
    let gap = feed
        .statuses
        .iter()
        .find(|s| s.state == FeedState::Gap)
        .expect("no gap reported");
    assert_eq!(
        (gap.gap_start_ns, gap.gap_end_ns),
        (Some(T0_MS * 1_000_000), Some((T0_MS + 9_000) * 1_000_000))
    );

    // Moving back re-centres against the window of the new connection.
    spot.send_replace(Some(687.4));
    let left = set(conn.expect_action("unsubscribe").await);
    let entered = set(conn.expect_action("subscribe").await);
    assert_eq!(left, chans(&both(&[689, 690])));
    assert_eq!(entered, chans(&both(&[686, 687])));
    conn.answer_in_background();
    assert!(feed.stop().await.is_ok());
}
