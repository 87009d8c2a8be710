//! Massive (formerly Polygon.io) WebSocket: the underlying's trades and quotes from the stocks
//! cluster, its 0DTE options around spot from the options cluster → canonical events
//! (`source` `massive_ws`).
//!
//! Each cluster is one connection and one feed ([`run_stocks`] → `stocks`, [`run_options`] →
//! `options`), run as a tokio task. The stocks feed publishes the spot it sees (trade prices and
//! quote midpoints of the underlying) on a [`watch`] channel; the options feed follows it.
//!
//! # The session (Polygon's protocol, unchanged by the rename)
//!
//! ```text
//! server  [{"ev":"status","status":"connected","message":"Connected Successfully"}]
//! client  {"action":"auth","params":"<key>"}
//! server  [{"ev":"status","status":"auth_success","message":"authenticated"}]
//! client  {"action":"subscribe","params":"T.SPY,Q.SPY"}
//! server  [{"ev":"status","status":"success","message":"subscribed to: T.SPY"}, …]
//! server  [{"ev":"T","sym":"SPY",…},{"ev":"Q","sym":"SPY",…}, …]
//! ```
//!
//! Stock trades and quotes become `stock_trade` / `stock_quote`; option trades `option_trade`
//! with the contract's last quote as `opt_bid`/`opt_ask` (option quotes only update that state;
//! it is cleared on reconnect, so a trade never carries a quote from before a gap). Message
//! mapping is in `wire`, option symbols in [`occ`], the strike window in [`window`].
//!
//! # The options window
//!
//! Calls and puts expiring today (US/Eastern; `--massive-expiration` overrides) at whole-dollar
//! strikes within `--strikes` dollars of spot, at most `--max-option-contracts` of them (Massive's
//! per-connection quote limit; a contract's trade and quote subscriptions count once), nearest
//! first. Nothing is subscribed before the stocks feed has seen a spot. When spot has moved more
//! than `--recenter` dollars from the spot the window was drawn around (or the date rolls), the
//! window is drawn again: what left is unsubscribed first, then what entered is subscribed.
//!
//! # Staying up
//!
//! A closed or failed connection is reported (`disconnected`, with the last event time as the
//! gap's start), then the feed waits a capped exponential backoff with jitter ([`Backoff`],
//! 1 s doubling to 60 s; `reconnecting` names the delay) and connects again, resubscribing
//! everything (the stocks channels, the current option window). The backoff is reset once data
//! flows again, and the hole is then reported as a `gap` from the last event before to the first
//! after (Massive does not replay what was missed; `records_lost` is unknown). A malformed
//! message is reported as a `gap` naming the first bytes of the message, and skipped.
//!
//! Fatal answers are never retried in a loop:
//! - `auth_failed` → [`IngestError::Auth`] at once (one connection, no retry).
//! - `max_connections` → retried with the same backoff, but a further answer once
//!   `--massive-limit-retries` (default 3) were retried within the past hour is
//!   [`IngestError::Refused`]. A bounded retry because the commonest cause is our own previous
//!   connection (a restart, a network blip) that the server has not yet noticed is dead; answers
//!   that keep coming mean another client uses the key's connections, which no retry fixes —
//!   and since the count is by time, not reset when data flows, two clients taking turns
//!   knocking each other off stop too.
//!
//! An `error` status is reported before either is returned. [`FeedTx::stop`] closes the socket
//! politely and returns `Ok`. Massive sends no heartbeats, so there is no idle timeout unless
//! asked for (`--massive-idle-timeout-s`); WebSocket pings are answered by tungstenite. The key
//! is sent only in the auth message and scrubbed from everything reported.

pub mod occ;
pub mod window;
mod wire;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{Backoff, FeedTx, IngestError, Secret, Stop, now_ns};
use crate::event::{Event, FeedState};
use occ::OptionSymbol;
use window::Changes;
use wire::Kind;

/// Massive's real-time WebSocket endpoint (clusters under it: `/stocks`, `/options`).
pub const DEFAULT_URL: &str = "wss://socket.massive.com";
/// Default half-width of the options window, in dollars.
pub const DEFAULT_STRIKES: f64 = 10.0;
/// Massive's per-connection option quote limit.
pub const DEFAULT_MAX_OPTION_CONTRACTS: u32 = 1000;
/// Default spot move, in dollars, before the window is drawn again.
pub const DEFAULT_RECENTER: f64 = 1.0;
/// Default number of `max_connections` answers retried within [`LIMIT_WINDOW`].
pub const DEFAULT_LIMIT_RETRIES: u32 = 3;
/// Default bound on connecting, the WebSocket upgrade and authentication together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The window in which `max_connections` answers are counted.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(3600);
/// Channels per subscribe / unsubscribe message (a window of 1000 contracts is 2000 channels).
const CHANNELS_PER_MESSAGE: usize = 500;
/// How long a polite close may take on stopping.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Characters of a malformed message quoted in its report.
const SNIPPET_CHARS: usize = 80;
/// Malformed messages reported one by one; after that, one report per this many.
const MALFORMED_REPORTED: u64 = 20;
const MALFORMED_EVERY: u64 = 1000;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Massive's command-line settings (flattened into `spm-ingest`).
#[derive(Debug, Clone, clap::Args)]
pub struct MassiveArgs {
    /// Massive API key (falls back to POLYGON_API_KEY). Never printed.
    #[arg(
        long = "massive-key",
        env = "MASSIVE_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        value_parser = parse_secret
    )]
    pub massive_key: Option<Secret>,

    /// Massive WebSocket base URL: the stocks cluster is URL/stocks, options URL/options.
    #[arg(long = "massive-url", env = "MASSIVE_URL", default_value = DEFAULT_URL, value_name = "URL")]
    pub massive_url: String,

    /// Underlying: its trades and quotes, and its options expiring today.
    #[arg(long, default_value = "SPY", value_name = "SYMBOL")]
    pub underlying: String,

    /// Options subscribed: strikes within this many dollars of spot.
    #[arg(long, default_value_t = DEFAULT_STRIKES, value_name = "DOLLARS", value_parser = non_negative)]
    pub strikes: f64,

    /// At most this many option contracts (Massive's per-connection quote limit), nearest
    /// strikes first.
    #[arg(
        long,
        default_value_t = DEFAULT_MAX_OPTION_CONTRACTS,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_option_contracts: u32,

    /// Re-centre the options window when spot has moved more than this many dollars.
    #[arg(long, default_value_t = DEFAULT_RECENTER, value_name = "DOLLARS", value_parser = non_negative)]
    pub recenter: f64,

    /// Expiration of the options followed [default: today in US/Eastern, i.e. 0DTE].
    #[arg(long = "massive-expiration", value_name = "YYYY-MM-DD")]
    pub massive_expiration: Option<NaiveDate>,

    /// Reconnect when nothing arrives for this many seconds (0: never; Massive sends no
    /// heartbeats, so a quiet market trips a short timeout).
    #[arg(
        long = "massive-idle-timeout-s",
        default_value_t = 0,
        value_name = "SECONDS"
    )]
    pub massive_idle_timeout_s: u64,

    /// Give up an attempt that has not connected and authenticated within this many seconds
    /// (0: no limit).
    #[arg(long = "massive-connect-timeout-s", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs(), value_name = "SECONDS")]
    pub massive_connect_timeout_s: u64,

    /// `max_connections` answers retried (with the backoff) within an hour; one more is fatal.
    #[arg(long = "massive-limit-retries", default_value_t = DEFAULT_LIMIT_RETRIES, value_name = "N")]
    pub massive_limit_retries: u32,
}

fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a non-negative number")),
    }
}

impl MassiveArgs {
    /// The key: `--massive-key` / `MASSIVE_API_KEY`, else `POLYGON_API_KEY`.
    pub fn key(&self) -> Result<Secret, IngestError> {
        resolve_key(self.massive_key.as_ref(), |name| std::env::var(name).ok())
    }

    /// The settings both clusters run with.
    pub fn config(&self) -> Result<MassiveConfig, IngestError> {
        let mut cfg = MassiveConfig::new(&self.massive_url, &self.underlying)?;
        cfg.strikes = self.strikes;
        cfg.max_option_contracts = self.max_option_contracts as usize;
        cfg.recenter = self.recenter;
        cfg.expiration = self.massive_expiration;
        cfg.idle_timeout = (self.massive_idle_timeout_s > 0)
            .then(|| Duration::from_secs(self.massive_idle_timeout_s));
        cfg.connect_timeout = (self.massive_connect_timeout_s > 0)
            .then(|| Duration::from_secs(self.massive_connect_timeout_s));
        cfg.limit_retries = self.massive_limit_retries;
        Ok(cfg)
    }
}

/// The key from the flag (or `MASSIVE_API_KEY`, read by clap), else `POLYGON_API_KEY` from
/// `env`; an empty key counts as none.
pub fn resolve_key(
    flag: Option<&Secret>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Secret, IngestError> {
    if let Some(k) = flag.filter(|k| !k.is_empty()) {
        return Ok(k.clone());
    }
    if let Some(k) = env("POLYGON_API_KEY")
        .map(Secret::new)
        .filter(|k| !k.is_empty())
    {
        return Ok(k);
    }
    Err(IngestError::Config(
        "no Massive API key: set MASSIVE_API_KEY (or POLYGON_API_KEY), or pass --massive-key"
            .into(),
    ))
}

/// The settings of both Massive feeds.
#[derive(Debug, Clone)]
pub struct MassiveConfig {
    /// `ws://` or `wss://` base URL, without the cluster.
    pub base_url: String,
    /// Upper-case, 1–6 letters or digits (an OSI root).
    pub underlying: String,
    /// Half-width of the options window, dollars.
    pub strikes: f64,
    pub max_option_contracts: usize,
    /// Spot move, dollars, that re-centres the window.
    pub recenter: f64,
    /// Options expiring on this date; `None`: today in US/Eastern.
    pub expiration: Option<NaiveDate>,
    /// Reconnect after this long without a frame; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Bound on connecting + upgrade + authentication; `None`: unbounded (tests on paused
    /// tokio time, where any pending timer may fire while loopback I/O is in flight).
    pub connect_timeout: Option<Duration>,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Fixed jitter seed (tests); `None`: seeded from the clock.
    pub backoff_seed: Option<u64>,
    /// `max_connections` answers retried within [`LIMIT_WINDOW`]; one more is
    /// [`IngestError::Refused`].
    pub limit_retries: u32,
}

impl MassiveConfig {
    /// Defaults for `base_url` and `underlying`, both checked.
    pub fn new(base_url: &str, underlying: &str) -> Result<MassiveConfig, IngestError> {
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        let scheme_ok = base_url.split_once("://").is_some_and(|(s, rest)| {
            matches!(s.to_ascii_lowercase().as_str(), "ws" | "wss") && !rest.is_empty()
        });
        if !scheme_ok {
            return Err(IngestError::Config(format!(
                "--massive-url {base_url:?}: expected ws://HOST[:PORT][/PATH] or wss://…"
            )));
        }
        let underlying = underlying.trim().to_ascii_uppercase();
        if underlying.is_empty()
            || underlying.len() > 6
            || !underlying.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(IngestError::Config(format!(
                "--underlying {underlying:?}: expected 1 to 6 letters or digits (an option root)"
            )));
        }
        Ok(MassiveConfig {
            base_url,
            underlying,
            strikes: DEFAULT_STRIKES,
            max_option_contracts: DEFAULT_MAX_OPTION_CONTRACTS as usize,
            recenter: DEFAULT_RECENTER,
            expiration: None,
            idle_timeout: None,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            backoff_seed: None,
            limit_retries: DEFAULT_LIMIT_RETRIES,
        })
    }

    /// The URL of a cluster.
    pub fn url(&self, cluster: Cluster) -> String {
        format!("{}/{}", self.base_url, cluster.path())
    }

    fn backoff(&self) -> Backoff {
        match self.backoff_seed {
            Some(seed) => Backoff::seeded(self.backoff_initial, self.backoff_max, seed),
            None => Backoff::new(self.backoff_initial, self.backoff_max),
        }
    }
}

/// A Massive cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    Stocks,
    Options,
}

impl Cluster {
    pub fn path(self) -> &'static str {
        match self {
            Cluster::Stocks => "stocks",
            Cluster::Options => "options",
        }
    }
}

/// A channel carrying spot from the stocks feed to the options feed.
pub fn spot_channel() -> (watch::Sender<Option<f64>>, watch::Receiver<Option<f64>>) {
    watch::channel(None)
}

/// Today's date in New York: the expiration of 0DTE options.
pub fn today_eastern() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::US::Eastern)
        .date_naive()
}

/// Runs the stocks cluster: trades and quotes of the underlying, publishing spot on `spot`.
/// Returns `Ok` when stopped, an error when the feed refuses us for good.
pub async fn run_stocks(
    cfg: MassiveConfig,
    key: Secret,
    tx: FeedTx,
    spot: watch::Sender<Option<f64>>,
) -> Result<(), IngestError> {
    let side = Side::Stocks(Stocks { spot });
    Feed::new(cfg, Cluster::Stocks, key, tx, side).run().await
}

/// Runs the options cluster: trades (with the last quote) of the 0DTE contracts around the
/// spot read from `spot`. Returns `Ok` when stopped, an error when refused for good.
pub async fn run_options(
    cfg: MassiveConfig,
    key: Secret,
    tx: FeedTx,
    spot: watch::Receiver<Option<f64>>,
) -> Result<(), IngestError> {
    let side = Side::Options(Options {
        spot,
        spot_open: true,
        subscribed: BTreeSet::new(),
        center: None,
        expiry: None,
        quotes: HashMap::new(),
    });
    Feed::new(cfg, Cluster::Options, key, tx, side).run().await
}

/// How a connection ended, when the feed goes on.
#[derive(Debug)]
enum End {
    /// Stopping was asked for.
    Stopped,
    /// Closed, failed or timed out: reconnect after the backoff.
    Lost(String),
    /// The server answered `max_connections`.
    Limit(String),
}

struct Stocks {
    spot: watch::Sender<Option<f64>>,
}

struct Options {
    spot: watch::Receiver<Option<f64>>,
    /// False once the stocks feed's sender is gone (spot stays at its last value).
    spot_open: bool,
    /// The window subscribed on the current connection.
    subscribed: BTreeSet<OptionSymbol>,
    /// The spot the window was drawn around.
    center: Option<f64>,
    /// The expiration the window was drawn for.
    expiry: Option<NaiveDate>,
    /// Last bid and ask of each contract in the window, on the current connection.
    quotes: HashMap<OptionSymbol, (Option<f64>, Option<f64>)>,
}

enum Side {
    Stocks(Stocks),
    Options(Options),
}

/// One cluster's connection, across reconnects.
struct Feed {
    cfg: MassiveConfig,
    url: String,
    key: Secret,
    tx: FeedTx,
    side: Side,
    backoff: Backoff,
    /// When `max_connections` was answered, within [`LIMIT_WINDOW`].
    limit_hits: VecDeque<Instant>,
    /// `connected` was reported on the current connection.
    announced: bool,
    /// Data arrived on the current connection.
    flowing: bool,
    /// Event time of the latest trade or quote read.
    last_data_ns: Option<u64>,
    /// Start of the hole left by a disconnect, reported at the first data after it.
    gap_from: Option<u64>,
    malformed: u64,
}

impl Feed {
    fn new(cfg: MassiveConfig, cluster: Cluster, key: Secret, tx: FeedTx, side: Side) -> Feed {
        Feed {
            url: cfg.url(cluster),
            backoff: cfg.backoff(),
            cfg,
            key,
            tx,
            side,
            limit_hits: VecDeque::new(),
            announced: false,
            flowing: false,
            last_data_ns: None,
            gap_from: None,
            malformed: 0,
        }
    }

    async fn run(mut self) -> Result<(), IngestError> {
        let result = self.run_inner().await;
        self.tx.flush_gaps().await;
        if let Err(e) = &result {
            let reason = match e {
                IngestError::Auth { message, .. } => format!("authentication failed: {message}"),
                IngestError::Refused { message, .. } => format!("refused: {message}"),
                e => e.to_string(),
            };
            let reason = self.key.redact(&reason);
            self.tx.report(FeedState::Error, reason).await;
        }
        result
    }

    async fn run_inner(&mut self) -> Result<(), IngestError> {
        let connector = if self.url.to_ascii_lowercase().starts_with("wss://") {
            Some(tls_connector()?)
        } else {
            None
        };
        let mut stop = self.tx.stop();
        loop {
            if stop.is_stopped() {
                return Ok(());
            }
            let end = self.connection(connector.clone(), &mut stop).await?;
            let (reason, fatal) = match end {
                End::Stopped => {
                    self.disconnected("stopped: connection closed".into()).await;
                    return Ok(());
                }
                End::Lost(reason) => (reason, None),
                End::Limit(message) => {
                    let now = Instant::now();
                    self.limit_hits
                        .retain(|t| now.duration_since(*t) < LIMIT_WINDOW);
                    self.limit_hits.push_back(now);
                    let hits = self.limit_hits.len();
                    let reason = format!(
                        "connection limit reached (max_connections: {message}); {hits} such \
                         answer(s) within the hour, {} retried",
                        self.cfg.limit_retries
                    );
                    let fatal =
                        (hits > self.cfg.limit_retries as usize).then(|| IngestError::Refused {
                            feed: self.tx.feed().to_string(),
                            message: format!(
                                "{message} (max_connections {hits} time(s) within the hour: \
                                 another client uses this key's connections; stop it or add \
                                 connections to the plan)"
                            ),
                        });
                    (reason, fatal)
                }
            };
            let reason = self.key.redact(&reason);
            self.disconnected(reason.clone()).await;
            if let Some(e) = fatal {
                return Err(e);
            }
            let delay = self.backoff.next_delay();
            self.tx
                .report(
                    FeedState::Reconnecting,
                    format!("{reason}; next attempt in {:.3} s", delay.as_secs_f64()),
                )
                .await;
            tokio::select! {
                biased;
                _ = stop.stopped() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Reports the end of a connection that had reported `connected`, and remembers where the
    /// hole starts.
    async fn disconnected(&mut self, reason: String) {
        if self.gap_from.is_none() {
            self.gap_from = self.last_data_ns;
        }
        if std::mem::take(&mut self.announced) {
            let mut s = self.tx.status_of(FeedState::Disconnected, reason);
            s.gap_start_ns = self.last_data_ns;
            self.tx.status(s).await;
        } else {
            tracing::debug!("{}: {reason}", self.tx.feed());
        }
    }

    /// One connection: open, authenticate, subscribe, read until it ends.
    async fn connection(
        &mut self,
        connector: Option<Connector>,
        stop: &mut Stop,
    ) -> Result<End, IngestError> {
        self.flowing = false;
        self.announced = false;
        let opening = open(&self.url, connector, &self.key, self.tx.feed());
        let timeout = self.cfg.connect_timeout;
        let mut ws = tokio::select! {
            biased;
            _ = stop.stopped() => return Ok(End::Stopped),
            () = sleep_opt(timeout) => {
                let secs = timeout.map_or(0.0, |d| d.as_secs_f64());
                return Ok(End::Lost(format!(
                    "no answer within {secs} s while connecting and authenticating"
                )));
            }
            r = opening => match r? {
                Ok(ws) => ws,
                Err(end) => return Ok(end),
            },
        };
        if let Err(end) = self.subscribe_all(&mut ws).await {
            return Ok(end);
        }
        let end = self.read(&mut ws, stop).await;
        if matches!(end, End::Stopped) {
            close(&mut ws).await;
        }
        Ok(end)
    }

    /// Subscriptions of a new connection: the stocks channels, or the current option window.
    async fn subscribe_all(&mut self, ws: &mut Ws) -> Result<(), End> {
        match &mut self.side {
            Side::Stocks(_) => {
                let u = &self.cfg.underlying;
                let channels = [format!("T.{u}"), format!("Q.{u}")];
                send(ws, "subscribe", &channels).await?;
                let reason = format!("subscribed to {} at {}", channels.join(","), self.url);
                self.announce(reason).await;
            }
            Side::Options(o) => {
                o.subscribed.clear();
                o.quotes.clear();
                o.center = None;
                o.expiry = None;
                self.retarget(ws).await?;
                if !self.announced {
                    tracing::info!(
                        "{}: authenticated at {}; waiting for a spot from the stocks feed \
                         before subscribing options",
                        self.tx.feed(),
                        self.url
                    );
                }
            }
        }
        Ok(())
    }

    async fn announce(&mut self, reason: String) {
        self.announced = true;
        self.tx.report(FeedState::Connected, reason).await;
    }

    /// Draws the option window again if spot moved more than `recenter` from its centre (or
    /// there is none yet, or the date rolled), and sends the difference.
    async fn retarget(&mut self, ws: &mut Ws) -> Result<(), End> {
        let Side::Options(o) = &mut self.side else {
            return Ok(());
        };
        let spot = match *o.spot.borrow_and_update() {
            Some(s) if s.is_finite() && s > 0.0 => s,
            _ => return Ok(()),
        };
        let cfg = &self.cfg;
        let expiry = cfg.expiration.unwrap_or_else(today_eastern);
        let moved = o.center.is_none_or(|c| (spot - c).abs() > cfg.recenter);
        if !moved && o.expiry == Some(expiry) {
            return Ok(());
        }
        let want = window::window(
            &cfg.underlying,
            expiry,
            spot,
            cfg.strikes,
            cfg.max_option_contracts,
        );
        let changes = Changes::between(&o.subscribed, &want);
        o.center = Some(spot);
        o.expiry = Some(expiry);
        for c in &changes.unsubscribe {
            o.quotes.remove(c);
        }
        o.subscribed = want;
        let count = o.subscribed.len();
        let strikes = (
            o.subscribed
                .iter()
                .map(OptionSymbol::strike)
                .reduce(f64::min),
            o.subscribed
                .iter()
                .map(OptionSymbol::strike)
                .reduce(f64::max),
        );
        if !changes.unsubscribe.is_empty() {
            send(ws, "unsubscribe", &channels(&changes.unsubscribe)).await?;
        }
        if !changes.subscribe.is_empty() {
            send(ws, "subscribe", &channels(&changes.subscribe)).await?;
        }
        let (Some(lo), Some(hi)) = strikes else {
            return Ok(());
        };
        let what = format!(
            "{count} {} option contracts expiring {expiry}, strikes {lo}–{hi} around spot {spot:.2}",
            cfg.underlying
        );
        if !self.announced {
            self.announce(format!("subscribed to {what} at {}", self.url))
                .await;
        } else if !changes.is_empty() {
            tracing::info!(
                "{}: re-centred: +{} −{} contracts, now {what}",
                self.tx.feed(),
                changes.subscribe.len(),
                changes.unsubscribe.len()
            );
        }
        Ok(())
    }

    fn subscribed_any(&self) -> bool {
        match &self.side {
            Side::Stocks(_) => true,
            Side::Options(o) => !o.subscribed.is_empty(),
        }
    }

    /// Reads frames until the connection ends or stopping is asked for.
    async fn read(&mut self, ws: &mut Ws, stop: &mut Stop) -> End {
        let mut last_frame = Instant::now();
        loop {
            let idle_at = self
                .cfg
                .idle_timeout
                .filter(|_| self.subscribed_any())
                .map(|d| last_frame + d);
            tokio::select! {
                biased;
                _ = stop.stopped() => return End::Stopped,
                msg = ws.next() => {
                    last_frame = Instant::now();
                    let end = match msg {
                        None => Some(End::Lost("the server closed the connection".into())),
                        Some(Err(e)) => Some(End::Lost(format!("connection failed: {e}"))),
                        Some(Ok(Message::Text(text))) => self.on_frame(text.as_str()).await,
                        Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                            Ok(text) => self.on_frame(text).await,
                            Err(_) => {
                                let text = String::from_utf8_lossy(&bytes);
                                self.malformed(&text, "a binary frame that is not UTF-8").await;
                                None
                            }
                        },
                        Some(Ok(Message::Close(frame))) => Some(End::Lost(close_reason(frame))),
                        Some(Ok(_)) => None,
                    };
                    if let Some(end) = end {
                        return end;
                    }
                }
                () = spot_changed(&mut self.side) => {
                    if let Err(end) = self.retarget(ws).await {
                        return end;
                    }
                }
                () = sleep_until_opt(idle_at) => {
                    let secs = self.cfg.idle_timeout.map_or(0.0, |d| d.as_secs_f64());
                    return End::Lost(format!("nothing received for {secs} s (idle timeout)"));
                }
            }
        }
    }

    /// One text frame: statuses, trades and quotes. `Some` when the connection must end.
    async fn on_frame(&mut self, text: &str) -> Option<End> {
        let ts_recv_ns = now_ns();
        let items = match wire::parse(text) {
            Ok(items) => items,
            Err(e) => {
                self.malformed(text, &format!("not JSON: {e}")).await;
                return None;
            }
        };
        for w in &items {
            match w.kind() {
                Kind::Status => {
                    if let Some(end) = self.on_status(w) {
                        return Some(end);
                    }
                }
                Kind::Trade | Kind::Quote => {
                    if let Err(why) = self.on_data(w, ts_recv_ns).await {
                        self.malformed(text, why).await;
                    }
                }
                Kind::Other => {}
            }
        }
        None
    }

    fn on_status(&mut self, w: &wire::Wire) -> Option<End> {
        let status = w.status.as_deref().unwrap_or("");
        let message = self.key.redact(w.message.as_deref().unwrap_or(""));
        let feed = self.tx.feed();
        match status {
            "max_connections" => return Some(End::Limit(message)),
            "auth_failed" => {
                return Some(End::Lost(format!("authentication withdrawn: {message}")));
            }
            "success" | "connected" | "auth_success" => {
                tracing::debug!("{feed}: {status}: {message}");
            }
            _ => tracing::warn!("{feed}: Massive says {status:?}: {message}"),
        }
        None
    }

    /// A trade or a quote.
    async fn on_data(&mut self, w: &wire::Wire, ts_recv_ns: u64) -> Result<(), &'static str> {
        let ts = w.ts_event_ns()?;
        let source = self.tx.source();
        let event = match &mut self.side {
            Side::Stocks(s) => {
                let event = if w.kind() == Kind::Trade {
                    Event::StockTrade(wire::stock_trade(w, ts_recv_ns, source)?)
                } else {
                    Event::StockQuote(wire::stock_quote(w, ts_recv_ns, source)?)
                };
                s.observe(&event, &self.cfg.underlying);
                Some(event)
            }
            Side::Options(o) => {
                let contract = wire::option_symbol(w)?;
                if w.kind() == Kind::Trade {
                    let quote = o.quotes.get(&contract).copied();
                    let t = wire::option_trade(w, &contract, quote, ts_recv_ns, source)?;
                    Some(Event::OptionTrade(t))
                } else {
                    if o.subscribed.contains(&contract) {
                        o.quotes.insert(contract, wire::option_quote(w));
                    }
                    None
                }
            }
        };
        self.data_flows(ts).await;
        if let Some(event) = event {
            self.tx.event(event);
        }
        Ok(())
    }

    /// Data arrived: the first on a connection resets the backoff and reports the hole a
    /// disconnect left.
    async fn data_flows(&mut self, ts: u64) {
        if !self.flowing {
            self.flowing = true;
            self.backoff.reset();
            if let Some(start) = self.gap_from.take() {
                let mut s = self.tx.status_of(
                    FeedState::Gap,
                    "no data while disconnected (Massive does not replay what was missed)",
                );
                s.gap_start_ns = Some(start);
                s.gap_end_ns = Some(ts);
                self.tx.status(s).await;
            }
        }
        self.last_data_ns = Some(self.last_data_ns.map_or(ts, |l| l.max(ts)));
    }

    /// Reports a message that could not be read (the first ones one by one, then one report
    /// per [`MALFORMED_EVERY`]), and goes on.
    async fn malformed(&mut self, text: &str, why: &str) {
        self.malformed += 1;
        let n = self.malformed;
        if n > MALFORMED_REPORTED && !n.is_multiple_of(MALFORMED_EVERY) {
            return;
        }
        let so_far = if n > MALFORMED_REPORTED {
            format!(" ({n} so far)")
        } else {
            String::new()
        };
        let reason = format!(
            "malformed message skipped{so_far}: {why}: {}",
            wire::snippet(text, SNIPPET_CHARS)
        );
        let reason = self.key.redact(&reason);
        self.tx.report(FeedState::Gap, reason).await;
    }
}

impl Stocks {
    /// Spot from the underlying's trades and quote midpoints.
    fn observe(&self, event: &Event, underlying: &str) {
        let spot = match event {
            Event::StockTrade(t) if t.symbol == underlying => t.price,
            Event::StockQuote(q) if q.symbol == underlying => (q.bid_px + q.ask_px) / 2.0,
            _ => return,
        };
        if spot.is_finite() && spot > 0.0 {
            self.spot.send_if_modified(|v| {
                let changed = *v != Some(spot);
                *v = Some(spot);
                changed
            });
        }
    }
}

/// Connects, waits for `connected`, authenticates. The outer error is fatal (`auth_failed`);
/// the inner one ends this attempt.
async fn open(
    url: &str,
    connector: Option<Connector>,
    key: &Secret,
    feed: &str,
) -> Result<Result<Ws, End>, IngestError> {
    let mut ws =
        match tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector).await {
            Ok((ws, _)) => ws,
            Err(e) => return Ok(Err(End::Lost(format!("connecting to {url}: {e}")))),
        };
    let mut auth_sent = false;
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
            Some(Ok(Message::Close(frame))) => return Ok(Err(End::Lost(close_reason(frame)))),
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                return Ok(Err(End::Lost(format!(
                    "connection failed while authenticating: {e}"
                ))));
            }
            None => {
                return Ok(Err(End::Lost(
                    "the server closed the connection while authenticating".into(),
                )));
            }
        };
        let items = match wire::parse(&text) {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(
                    "{feed}: malformed message while authenticating, skipped: {e}: {}",
                    key.redact(&wire::snippet(&text, SNIPPET_CHARS))
                );
                continue;
            }
        };
        for w in items.iter().filter(|w| w.kind() == Kind::Status) {
            let status = w.status.as_deref().unwrap_or("");
            let message = key.redact(w.message.as_deref().unwrap_or(""));
            match status {
                "connected" if !auth_sent => {
                    let auth = serde_json::json!({"action": "auth", "params": key.expose()});
                    if let Err(e) = ws.send(Message::text(auth.to_string())).await {
                        return Ok(Err(End::Lost(format!("sending auth: {e}"))));
                    }
                    auth_sent = true;
                }
                "auth_success" => return Ok(Ok(ws)),
                "auth_failed" => {
                    return Err(IngestError::Auth {
                        feed: feed.to_string(),
                        message: format!(
                            "{message} (check MASSIVE_API_KEY or POLYGON_API_KEY, and that the \
                             plan covers this cluster)"
                        ),
                    });
                }
                "max_connections" => return Ok(Err(End::Limit(message))),
                _ => tracing::debug!("{feed}: {status}: {message}"),
            }
        }
    }
}

/// Sends a subscribe / unsubscribe, in messages of at most [`CHANNELS_PER_MESSAGE`] channels.
async fn send(ws: &mut Ws, action: &str, channels: &[String]) -> Result<(), End> {
    for chunk in channels.chunks(CHANNELS_PER_MESSAGE) {
        let msg = serde_json::json!({"action": action, "params": chunk.join(",")});
        ws.send(Message::text(msg.to_string()))
            .await
            .map_err(|e| End::Lost(format!("sending {action}: {e}")))?;
    }
    Ok(())
}

/// The trade and quote channels of each contract.
fn channels(contracts: &[OptionSymbol]) -> Vec<String> {
    contracts
        .iter()
        .flat_map(|c| {
            let m = c.massive();
            [format!("T.{m}"), format!("Q.{m}")]
        })
        .collect()
}

/// Closes politely: a close frame, then the server's answer (briefly).
async fn close(ws: &mut Ws) {
    let polite = async {
        if ws.close(None).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, polite).await;
}

fn close_reason(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(f) if !f.reason.is_empty() => format!(
            "the server closed the connection (code {}: {})",
            u16::from(f.code),
            f.reason.as_str()
        ),
        Some(f) => format!(
            "the server closed the connection (code {})",
            u16::from(f.code)
        ),
        None => "the server closed the connection".into(),
    }
}

/// Resolves when the options feed's spot changes; never for the stocks feed.
async fn spot_changed(side: &mut Side) {
    match side {
        Side::Options(o) if o.spot_open => {
            if o.spot.changed().await.is_err() {
                o.spot_open = false;
            }
        }
        _ => std::future::pending().await,
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// TLS for `wss://`: the system's roots, aws-lc-rs named explicitly (both rustls providers are
/// compiled in, so there is no process default to fall back on).
fn tls_connector() -> Result<Connector, IngestError> {
    let native = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        let why = native
            .errors
            .first()
            .map_or(String::new(), |e| format!(": {e}"));
        return Err(IngestError::Config(format!(
            "no trusted root certificates found on this system for wss://{why}"
        )));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| IngestError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        massive: MassiveArgs,
    }

    #[test]
    fn defaults_give_the_documented_clusters_and_window() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        let cfg = cli.massive.config().unwrap();
        assert_eq!(cfg.url(Cluster::Stocks), "wss://socket.massive.com/stocks");
        assert_eq!(
            cfg.url(Cluster::Options),
            "wss://socket.massive.com/options"
        );
        assert_eq!(cfg.underlying, "SPY");
        assert_eq!(cfg.strikes, 10.0);
        assert_eq!(cfg.max_option_contracts, 1000);
        assert_eq!(cfg.recenter, 1.0);
        assert_eq!(cfg.idle_timeout, None);
        assert_eq!(cfg.connect_timeout, Some(Duration::from_secs(30)));
        assert_eq!(cfg.limit_retries, 3);
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let cli = Cli::try_parse_from([
            "x",
            "--massive-url",
            "ws://127.0.0.1:9/",
            "--underlying",
            "qqq",
            "--strikes",
            "5",
            "--max-option-contracts",
            "20",
            "--recenter",
            "0.5",
            "--massive-expiration",
            "2025-11-21",
            "--massive-idle-timeout-s",
            "90",
            "--massive-connect-timeout-s",
            "0",
        ])
        .unwrap();
        let cfg = cli.massive.config().unwrap();
        assert_eq!(cfg.url(Cluster::Options), "ws://127.0.0.1:9/options");
        assert_eq!(cfg.underlying, "QQQ");
        assert_eq!(
            (cfg.strikes, cfg.max_option_contracts, cfg.recenter),
            (5.0, 20, 0.5)
        );
        assert_eq!(cfg.expiration, NaiveDate::from_ymd_opt(2025, 11, 21));
        assert_eq!(cfg.idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(cfg.connect_timeout, None);
        for bad in [
            ["--strikes", "-1"],
            ["--recenter", "nan"],
            ["--max-option-contracts", "0"],
            ["--massive-expiration", "2025-13-01"],
        ] {
            assert!(
                Cli::try_parse_from(["x", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
        for url in ["http://x", "socket.massive.com", "ws://"] {
            assert!(matches!(
                MassiveConfig::new(url, "SPY"),
                Err(IngestError::Config(_))
            ));
        }
        for u in ["", "TOOLONG", "S-P"] {
            assert!(matches!(
                MassiveConfig::new(DEFAULT_URL, u),
                Err(IngestError::Config(_))
            ));
        }
    }

    #[test]
    fn key_comes_from_the_flag_else_polygon_api_key_and_is_never_printed() {
        let flag = Secret::new("massive-secret");
        let env = |_: &str| Some("polygon-secret".to_string());
        let none = |_: &str| None;
        assert_eq!(
            resolve_key(Some(&flag), env).unwrap().expose(),
            "massive-secret"
        );
        assert_eq!(resolve_key(None, env).unwrap().expose(), "polygon-secret");
        assert_eq!(
            resolve_key(Some(&Secret::new(" ")), env).unwrap().expose(),
            "polygon-secret"
        );
        let e = resolve_key(None, none).unwrap_err();
        assert!(e.to_string().contains("MASSIVE_API_KEY"), "{e}");
        let cli = Cli::try_parse_from(["x", "--massive-key", "massive-secret"]).unwrap();
        assert!(!format!("{cli:?}").contains("massive-secret"));
    }

    #[test]
    fn help_hides_the_key_from_the_environment() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        assert!(help.contains("MASSIVE_API_KEY"), "{help}");
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == "massive_key")
            .unwrap();
        assert!(arg.is_hide_env_values_set());
    }

    #[test]
    fn option_channels_name_trades_and_quotes_of_each_contract() {
        let c = OptionSymbol::parse("SPY   251121C00687000").unwrap();
        assert_eq!(
            channels(&[c]),
            ["T.O:SPY251121C00687000", "Q.O:SPY251121C00687000"]
        );
    }
}
