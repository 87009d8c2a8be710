//! Databento Live: the raw TCP gateway protocol (CRAM authentication, subscriptions, a DBN
//! stream) → canonical events, one session per dataset, kept up across disconnects.
//!
//! We speak the small line protocol ourselves over tokio instead of depending on the
//! `databento` crate: its `live` feature would add sixteen crates our tree does not have (`bon`
//! and its `darling` proc-macro stack, `async-compression`, `async-stream`, a second `sha2`
//! major, `hex`), and the reconnect, overlap and heartbeat handling below is ours anyway.
//!
//! # The protocol
//!
//! 1. The gateway greets (`lsg_version=…`) and sends a challenge (`cram=CHALLENGE`).
//! 2. We answer `auth=SHA256_HEX(CHALLENGE|KEY)-BUCKET|dataset=…|encoding=dbn|compression=…|
//!    ts_out=0|client=…|heartbeat_interval_s=…|slow_reader_behavior=…`, where `BUCKET` is the
//!    last five characters of the key ([`cram_response`]). The key itself is never sent, logged
//!    or printed.
//! 3. The gateway answers `success=1|session_id=…` or `success=0|error=…`; a refusal is
//!    [`IngestError::Auth`] (or [`IngestError::Refused`] for a connection limit or an unknown
//!    dataset) and is never retried.
//! 4. We subscribe, one line per schema and symbology with at most 500 symbols a line
//!    (`schema=…|stype_in=…|symbols=A,B|snapshot=0|is_last=0|1[|start=NANOS]`,
//!    [`subscription_lines`]), then send `start_session`.
//! 5. The gateway streams DBN (zstd-compressed when asked): live-style metadata (no symbol
//!    mappings), then records. They go through the same sans-IO decoder (upgraded to DBN v3)
//!    and the same [`Mapper`] as `spm-replay`, so a live record and a replayed one give the same
//!    event. `SymbolMappingMsg` and definitions teach the mapper symbols and option terms;
//!    `SystemMsg` heartbeats keep the connection alive; a slow-reader warning and an
//!    `ErrorMsg` with `SKIPPED_RECORDS_AFTER_SLOW_READING` are reported as `gap` statuses;
//!    other gateway errors are logged with their code (an authentication or subscription error
//!    ends the feed).
//!
//! # Staying up
//!
//! - A connection that ends (closed by the gateway, an I/O error, corrupt data, or no byte at
//!   all for the heartbeat interval plus a grace of `max(interval / 2, 1 s)`) is reported as
//!   `disconnected`, then `reconnecting` with the delay: capped exponential backoff with jitter
//!   ([`super::Backoff`], 1 s doubling to 60 s), reset once records flow again.
//! - The new session resubscribes with `start` = the index time (`ts_recv`) of the last record
//!   handed on, so the gateway replays from there. The overlap is dropped by record identity:
//!   replayed records older than that time, and the records of exactly that time whose bytes
//!   were already handed on, are counted ([`FeedTx::count_duplicate`]) and not published.
//! - Before the first new event a `gap` status names the hole (`gap_start_ns` = the last event
//!   before the disconnect, `gap_end_ns` = the first event after) with `records_lost: 0`: the
//!   replay from `start` filled it. Without a point to resume from (nothing received yet and no
//!   `--start`), the gap says records may be missing and leaves `records_lost` unknown.
//! - When the output cannot keep up, the session waits for room in the publisher's queue and
//!   stops reading the socket: TCP pushes back to the gateway, whose `--slow-reader` policy
//!   decides (buffer and warn, or skip records) and says so in-band, reported as a `gap` with
//!   the records skipped. An intraday replay (`--start`), which the gateway sends as fast as
//!   it can, thus loses nothing to a slow sink.
//! - Options sessions publish only 0DTE trades (expiry = the US/Eastern date of the trade)
//!   unless `--all-expiries`; the others are counted and logged on exit.
//! - A stop request closes the connection and returns `Ok`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use ::dbn::decode::dbn::fsm::{DbnFsm, ProcessResult};
use ::dbn::{
    ErrorCode, ErrorMsg, Metadata, Record, RecordRef, SType, Schema, SystemCode, SystemMsg,
    UNDEF_TIMESTAMP, VersionUpgradePolicy, rtype,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use super::{Backoff, FeedTx, IngestError, Secret};
use crate::dbn::{Mapper, Market, Outcome};
use crate::event::{Event, FeedState, FeedStatus};

/// The live gateways' TCP port.
pub const DEFAULT_PORT: u16 = 13_000;
/// Databento's limit of symbols in one subscription line.
pub const MAX_SYMBOLS_PER_LINE: usize = 500;
/// Databento's smallest heartbeat interval; smaller values are sent anyway (for tests), with
/// a warning.
pub const MIN_HEARTBEAT_S: u32 = 5;
/// The default heartbeat interval.
pub const DEFAULT_HEARTBEAT_S: u32 = 30;
/// Time allowed to open the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed from the connection to the gateway's answer to our authentication.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of the DBN decoder's buffer (and of the compressed input buffer).
const BUFFER_SIZE: usize = 256 * 1024;
/// The longest control line accepted from the gateway.
const MAX_LINE: u64 = 64 * 1024;

/// Argument ids of the repeated options whose order groups them into sessions.
const ARG_DATASET: &str = "databento_dataset";
const ARG_SCHEMA: &str = "databento_schema";
const ARG_SYMBOLS: &str = "databento_symbols";

/// What the gateway does when we read too slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlowReader {
    /// Keep buffering and send a slow-reader warning (reported as a gap status).
    Warn,
    /// Skip records to catch up, then say how many (reported as a gap with the count).
    Skip,
}

impl SlowReader {
    pub fn as_str(self) -> &'static str {
        match self {
            SlowReader::Warn => "warn",
            SlowReader::Skip => "skip",
        }
    }
}

/// Compression of the DBN stream after authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
        }
    }
}

/// Databento Live settings of `spm-ingest --source databento`.
///
/// `--dataset`, `--schema` and `--symbols` may be repeated; each `--dataset` opens a session
/// of its own and the `--schema` and `--symbols` after it (up to the next `--dataset`) belong to
/// it. Read them with [`sessions`], which needs the parsed [`clap::ArgMatches`] for that order.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Databento Live (--source databento)")]
pub struct DatabentoArgs {
    /// Databento API key (never printed or logged).
    #[arg(
        long = "databento-key",
        id = "databento_key",
        env = "DATABENTO_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        value_parser = parse_secret
    )]
    pub key: Option<Secret>,

    /// Live gateway for every session [default: DATASET.lsg.databento.com:13000, with the
    /// dataset lowercased and its dots turned into dashes, e.g. glbx-mdp3.lsg.databento.com].
    #[arg(
        long = "gateway",
        id = "databento_gateway",
        env = "DATABENTO_GATEWAY",
        value_name = "HOST:PORT"
    )]
    pub gateway: Option<String>,

    /// A dataset to open a live session on (repeatable). The --schema and --symbols options
    /// that follow it, up to the next --dataset, belong to it. Without any --dataset:
    /// GLBX.MDP3 mbp-10,trades of ES.FUT; OPRA.PILLAR definition,tcbbo of SPY.OPT (0DTE
    /// trades); XNAS.ITCH trades of SPY.
    #[arg(long = "dataset", id = ARG_DATASET, value_name = "DATASET")]
    pub datasets: Vec<String>,

    /// Schemas of the preceding --dataset, comma-separated or repeated [default by market:
    /// futures mbp-10,trades; options definition,tcbbo; equities trades].
    #[arg(
        long = "schema",
        id = ARG_SCHEMA,
        value_name = "SCHEMA",
        value_delimiter = ',',
        value_parser = parse_schema
    )]
    pub schemas: Vec<Schema>,

    /// Symbols of the preceding --dataset, comma-separated or repeated [default by market:
    /// futures ES.FUT; options SPY.OPT; equities SPY].
    #[arg(
        long = "symbols",
        id = ARG_SYMBOLS,
        value_name = "SYMBOLS",
        value_delimiter = ','
    )]
    pub symbols: Vec<String>,

    /// Input symbology of every symbol [default: parent for ROOT.FUT / ROOT.OPT, continuous
    /// for ROOT.c.0-style names, raw_symbol otherwise].
    #[arg(
        long = "stype-in",
        id = "databento_stype_in",
        value_name = "STYPE",
        value_parser = parse_stype
    )]
    pub stype_in: Option<SType>,

    /// Replay the session from this time (intraday replay; ISO-8601 or nanoseconds) instead of
    /// starting live.
    #[arg(
        long = "start",
        id = "databento_start",
        value_name = "TIME",
        value_parser = crate::replay::parse_time
    )]
    pub start: Option<u64>,

    /// Heartbeat interval asked of the gateway, in seconds (Databento's minimum is 5). With no
    /// byte for the interval plus max(interval/2, 1 s), the connection is taken as dead and
    /// reopened.
    #[arg(
        long = "heartbeat-s",
        id = "databento_heartbeat_s",
        value_name = "SECONDS",
        default_value_t = DEFAULT_HEARTBEAT_S,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub heartbeat_s: u32,

    /// What the gateway does when spm-ingest falls behind: warn (buffer and warn) or skip
    /// (drop records to catch up); both are reported as gaps.
    #[arg(
        long = "slow-reader",
        id = "databento_slow_reader",
        value_name = "BEHAVIOR",
        value_enum,
        default_value_t = SlowReader::Warn
    )]
    pub slow_reader: SlowReader,

    /// Compression of the live stream.
    #[arg(
        long = "compression",
        id = "databento_compression",
        value_name = "COMPRESSION",
        value_enum,
        default_value_t = Compression::None
    )]
    pub compression: Compression,

    /// Publish option trades of every expiry, not only those expiring on the trade's date.
    #[arg(long = "all-expiries", id = "databento_all_expiries")]
    pub all_expiries: bool,
}

impl DatabentoArgs {
    /// The API key, or a clear error when none is set.
    pub fn key(&self) -> Result<Secret, IngestError> {
        match &self.key {
            Some(k) if !k.is_empty() => Ok(k.clone()),
            _ => Err(IngestError::Config(
                "no Databento API key: set DATABENTO_API_KEY or pass --databento-key".into(),
            )),
        }
    }
}

fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

fn parse_schema(s: &str) -> Result<Schema, String> {
    s.trim()
        .parse::<Schema>()
        .map_err(|_| format!("`{s}` is not a Databento schema (e.g. mbp-10, trades, tcbbo)"))
}

fn parse_stype(s: &str) -> Result<SType, String> {
    s.trim().parse::<SType>().map_err(|_| {
        format!(
            "`{s}` is not a Databento symbology (raw_symbol, parent, continuous, instrument_id)"
        )
    })
}

/// One subscription: a schema for symbols of one input symbology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub schema: Schema,
    pub stype_in: SType,
    pub symbols: Vec<String>,
}

/// Everything one live session (one dataset) needs.
#[derive(Debug, Clone)]
pub struct Session {
    pub dataset: String,
    /// `HOST:PORT` of the live gateway.
    pub gateway: String,
    pub subscriptions: Vec<Subscription>,
    /// Intraday replay from this time (ns); `None` starts live.
    pub start: Option<u64>,
    pub heartbeat_s: u32,
    pub slow_reader: SlowReader,
    pub compression: Compression,
    /// Publish only option trades expiring on their own (US/Eastern) date.
    pub zero_dte_only: bool,
    pub connect_timeout: Duration,
    pub auth_timeout: Duration,
    /// First reconnect delay (doubling, jittered).
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
}

impl Session {
    /// A session on `dataset` with the defaults of its market for empty `schemas` / `symbols`
    /// (see [`DatabentoArgs`]), the default gateway, and every symbol's symbology from
    /// `stype_in` or else guessed from its form ([`default_stype`]).
    pub fn new(
        dataset: &str,
        schemas: &[Schema],
        symbols: &[String],
        stype_in: Option<SType>,
    ) -> Session {
        let market = Market::of_dataset(dataset);
        let schemas = if schemas.is_empty() {
            default_schemas(market).to_vec()
        } else {
            schemas.to_vec()
        };
        let symbols: Vec<String> = if symbols.is_empty() {
            vec![default_symbol(market).to_string()]
        } else {
            symbols.to_vec()
        };
        let subscriptions = subscriptions(&schemas, &symbols, stype_in);
        Session {
            dataset: dataset.to_string(),
            gateway: default_gateway(dataset),
            subscriptions,
            start: None,
            heartbeat_s: DEFAULT_HEARTBEAT_S,
            slow_reader: SlowReader::Warn,
            compression: Compression::None,
            zero_dte_only: market == Market::Options,
            connect_timeout: CONNECT_TIMEOUT,
            auth_timeout: AUTH_TIMEOUT,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }

    /// How long the connection may stay silent: the heartbeat interval plus a grace of
    /// `max(interval / 2, 1 s)`.
    pub fn heartbeat_timeout(&self) -> Duration {
        let interval = Duration::from_secs(u64::from(self.heartbeat_s));
        interval + heartbeat_grace(interval)
    }

    /// `schema symbols (stype), …` for logs and status reasons.
    fn describe(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.subscriptions.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let shown: Vec<&str> = s.symbols.iter().take(5).map(String::as_str).collect();
            let more = s.symbols.len().saturating_sub(shown.len());
            let _ = write!(out, "{} {}", s.schema, shown.join(","));
            if more > 0 {
                let _ = write!(out, " (+{more})");
            }
            let _ = write!(out, " ({})", s.stype_in);
        }
        out
    }
}

/// The grace added to the heartbeat interval before a silent connection counts as dead.
pub fn heartbeat_grace(interval: Duration) -> Duration {
    (interval / 2).max(Duration::from_secs(1))
}

fn default_schemas(market: Market) -> &'static [Schema] {
    match market {
        Market::Futures => &[Schema::Mbp10, Schema::Trades],
        Market::Options => &[Schema::Definition, Schema::Tcbbo],
        Market::Equities => &[Schema::Trades],
    }
}

fn default_symbol(market: Market) -> &'static str {
    match market {
        Market::Futures => "ES.FUT",
        Market::Options => "SPY.OPT",
        Market::Equities => "SPY",
    }
}

/// `glbx-mdp3.lsg.databento.com:13000` for `GLBX.MDP3`.
pub fn default_gateway(dataset: &str) -> String {
    let host = dataset.to_ascii_lowercase().replace('.', "-");
    format!("{host}.lsg.databento.com:{DEFAULT_PORT}")
}

/// The symbology a symbol is written in: `parent` for a product (`ES.FUT`, `SPY.OPT`),
/// `continuous` for a roll rule (`ES.c.0`, `CL.v.1`, `ZN.n.0`), `raw_symbol` otherwise.
pub fn default_stype(symbol: &str) -> SType {
    let parts: Vec<&str> = symbol.split('.').collect();
    match parts.as_slice() {
        [root, "FUT" | "OPT"] if !root.is_empty() => SType::Parent,
        [root, "c" | "v" | "n", rank]
            if !root.is_empty() && !rank.is_empty() && rank.bytes().all(|b| b.is_ascii_digit()) =>
        {
            SType::Continuous
        }
        _ => SType::RawSymbol,
    }
}

/// One subscription per schema and symbology, symbols in their given order.
pub fn subscriptions(
    schemas: &[Schema],
    symbols: &[String],
    stype_in: Option<SType>,
) -> Vec<Subscription> {
    let mut by_stype: Vec<(SType, Vec<String>)> = Vec::new();
    for sym in symbols.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let stype = stype_in.unwrap_or_else(|| default_stype(sym));
        match by_stype.iter_mut().find(|(t, _)| *t == stype) {
            Some((_, list)) if !list.iter().any(|s| s == sym) => list.push(sym.to_string()),
            Some(_) => {}
            None => by_stype.push((stype, vec![sym.to_string()])),
        }
    }
    let mut out = Vec::new();
    for (i, &schema) in schemas.iter().enumerate() {
        if schemas[..i].contains(&schema) {
            continue; // given twice
        }
        for (stype, syms) in &by_stype {
            out.push(Subscription {
                schema,
                stype_in: *stype,
                symbols: syms.clone(),
            });
        }
    }
    out
}

/// The sessions the command line asks for (see [`DatabentoArgs`]): one per `--dataset`, with
/// the `--schema` and `--symbols` that follow it; the three default sessions without any.
/// `matches` must come from a command that flattens [`DatabentoArgs`].
pub fn sessions(
    args: &DatabentoArgs,
    matches: &clap::ArgMatches,
) -> Result<Vec<Session>, IngestError> {
    let groups = group_by_dataset(args, matches)?;
    if args.heartbeat_s < MIN_HEARTBEAT_S {
        tracing::warn!(
            "--heartbeat-s {} is below Databento's minimum of {MIN_HEARTBEAT_S} s; the gateway may \
             refuse or raise it",
            args.heartbeat_s
        );
    }
    let groups = if groups.is_empty() {
        ["GLBX.MDP3", "OPRA.PILLAR", "XNAS.ITCH"]
            .into_iter()
            .map(|d| (d.to_string(), Vec::new(), Vec::new()))
            .collect()
    } else {
        groups
    };
    let mut out: Vec<Session> = Vec::with_capacity(groups.len());
    for (dataset, schemas, symbols) in groups {
        if out.iter().any(|s| s.dataset == dataset) {
            return Err(IngestError::Config(format!(
                "--dataset {dataset} is given twice: put all its --schema and --symbols after one \
                 --dataset"
            )));
        }
        let mut session = Session::new(&dataset, &schemas, &symbols, args.stype_in);
        if session.subscriptions.is_empty() {
            return Err(IngestError::Config(format!(
                "--dataset {dataset}: no symbols to subscribe to"
            )));
        }
        if let Some(gw) = &args.gateway {
            session.gateway = gw.clone();
        }
        session.start = args.start;
        session.heartbeat_s = args.heartbeat_s;
        session.slow_reader = args.slow_reader;
        session.compression = args.compression;
        session.zero_dte_only &= !args.all_expiries;
        out.push(session);
    }
    Ok(out)
}

type Group = (String, Vec<Schema>, Vec<String>);

/// `--dataset`, `--schema` and `--symbols` values grouped by the `--dataset` before them.
fn group_by_dataset(
    args: &DatabentoArgs,
    matches: &clap::ArgMatches,
) -> Result<Vec<Group>, IngestError> {
    enum Opt {
        Dataset(usize),
        Schema(usize),
        Symbols(usize),
    }
    let indices = |id: &str| -> Result<Vec<usize>, IngestError> {
        matches.try_contains_id(id).map_err(|_| {
            IngestError::Config(format!("internal: the command does not define {id}"))
        })?;
        Ok(matches
            .indices_of(id)
            .map(|i| i.collect())
            .unwrap_or_default())
    };
    let mut order: Vec<(usize, Opt)> = Vec::new();
    for (n, (i, _)) in indices(ARG_DATASET)?
        .into_iter()
        .zip(&args.datasets)
        .enumerate()
    {
        order.push((i, Opt::Dataset(n)));
    }
    for (n, (i, _)) in indices(ARG_SCHEMA)?
        .into_iter()
        .zip(&args.schemas)
        .enumerate()
    {
        order.push((i, Opt::Schema(n)));
    }
    for (n, (i, _)) in indices(ARG_SYMBOLS)?
        .into_iter()
        .zip(&args.symbols)
        .enumerate()
    {
        order.push((i, Opt::Symbols(n)));
    }
    order.sort_by_key(|(i, _)| *i);
    let mut groups: Vec<Group> = Vec::new();
    for (_, opt) in order {
        match (opt, groups.last_mut()) {
            (Opt::Dataset(n), _) => {
                let d = args.datasets[n].trim();
                if d.is_empty() {
                    return Err(IngestError::Config("--dataset needs a dataset name".into()));
                }
                groups.push((d.to_string(), Vec::new(), Vec::new()));
            }
            (Opt::Schema(n), Some(g)) => g.1.push(args.schemas[n]),
            (Opt::Symbols(n), Some(g)) => g.2.push(args.symbols[n].clone()),
            (Opt::Schema(n), None) => {
                return Err(IngestError::Config(format!(
                    "--schema {} comes before any --dataset: each dataset's --schema and \
                     --symbols follow its --dataset",
                    args.schemas[n]
                )));
            }
            (Opt::Symbols(n), None) => {
                return Err(IngestError::Config(format!(
                    "--symbols {} comes before any --dataset: each dataset's --schema and \
                     --symbols follow its --dataset",
                    args.symbols[n]
                )));
            }
        }
    }
    Ok(groups)
}

/// The CRAM response to `challenge`: `SHA256_HEX(challenge|key)-BUCKET`, the bucket being the
/// last five characters of the key.
pub fn cram_response(challenge: &str, key: &Secret) -> String {
    let key = key.expose();
    let digest = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b"|")
        .chain_update(key.as_bytes())
        .finalize();
    let mut out = String::with_capacity(64 + 6);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    let tail = key.char_indices().rev().nth(4).map_or(0, |(i, _)| i);
    out.push('-');
    out.push_str(&key[tail..]);
    out
}

/// The authentication line answering `challenge` (newline included).
pub fn auth_line(challenge: &str, key: &Secret, session: &Session) -> String {
    format!(
        "auth={}|dataset={}|encoding=dbn|compression={}|ts_out=0|client=spymaster {}|\
         heartbeat_interval_s={}|slow_reader_behavior={}\n",
        cram_response(challenge, key),
        session.dataset,
        session.compression.as_str(),
        env!("CARGO_PKG_VERSION"),
        session.heartbeat_s,
        session.slow_reader.as_str(),
    )
}

/// The subscription lines of `subs` (newlines included), at most [`MAX_SYMBOLS_PER_LINE`]
/// symbols a line, `is_last=1` on the last line of each subscription, and `start` when
/// replaying.
pub fn subscription_lines(subs: &[Subscription], start: Option<u64>) -> Vec<String> {
    let mut lines = Vec::new();
    for sub in subs {
        let chunks: Vec<&[String]> = sub.symbols.chunks(MAX_SYMBOLS_PER_LINE).collect();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            let mut line = format!(
                "schema={}|stype_in={}|symbols={}|snapshot=0|is_last={}",
                sub.schema,
                sub.stype_in,
                chunk.join(","),
                u8::from(i == last)
            );
            if let Some(start) = start {
                let _ = write!(line, "|start={start}");
            }
            line.push('\n');
            lines.push(line);
        }
    }
    lines
}

/// `key=value|key=value` pairs of a gateway line.
fn fields(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split('|').filter_map(|kv| kv.split_once('='))
}

/// The error a `success=0` answer to our authentication means.
fn refusal(feed: &str, message: String) -> IngestError {
    let lower = message.to_ascii_lowercase();
    let about_credentials = lower.contains("auth") || lower.contains("key");
    if !about_credentials
        && ["limit", "dataset", "subscription"]
            .iter()
            .any(|w| lower.contains(w))
    {
        IngestError::Refused {
            feed: feed.to_string(),
            message,
        }
    } else {
        IngestError::Auth {
            feed: feed.to_string(),
            message,
        }
    }
}

/// The number of records a gateway message says were skipped (`… 1234 records …`).
fn records_in(message: &str) -> Option<u64> {
    let words: Vec<&str> = message.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let n = w[0].trim_matches(|c: char| !c.is_ascii_digit());
        (w[1].starts_with("record") && !n.is_empty())
            .then(|| n.parse().ok())
            .flatten()
    })
}

/// The US/Eastern calendar date (`YYYY-MM-DD`) of a Unix-ns time.
fn eastern_date(ts_ns: u64) -> Option<String> {
    use chrono::TimeZone;
    let secs = i64::try_from(ts_ns / 1_000_000_000).ok()?;
    let utc = chrono::DateTime::from_timestamp(secs, 0)?;
    let local = chrono_tz::America::New_York.from_utc_datetime(&utc.naive_utc());
    Some(local.format("%Y-%m-%d").to_string())
}

/// Runs one live session until stopped: connects, authenticates, subscribes, publishes, and
/// reconnects after anything but a refusal. Returns `Ok` when stopped, the refusal otherwise
/// (after reporting it as an `error` status).
pub async fn run(session: Session, key: Secret, mut tx: FeedTx) -> Result<(), IngestError> {
    let mut stop = tx.stop();
    let mut feed = Feed::new(session, key);
    let result = loop {
        if stop.is_stopped() {
            break Ok(());
        }
        let ended = tokio::select! {
            biased;
            _ = stop.stopped() => Ended::Stopped,
            ended = feed.connection(&mut tx) => ended,
        };
        match ended {
            Ended::Stopped => break Ok(()),
            Ended::Fatal(e) => {
                // The status names the feed already: the reason is the error without it.
                let reason = match &e {
                    IngestError::Auth { message, .. } => {
                        format!("authentication failed: {message}")
                    }
                    IngestError::Refused { message, .. } => format!("refused: {message}"),
                    other => other.to_string(),
                };
                tx.report(FeedState::Error, reason).await;
                break Err(e);
            }
            Ended::Lost(reason) => {
                let reason = feed.key.redact(&reason);
                if feed.connected {
                    tx.report(FeedState::Disconnected, reason.clone()).await;
                }
                let delay = feed.backoff.next_delay();
                let why = if feed.connected {
                    String::new()
                } else {
                    format!(" ({reason})")
                };
                tx.report(
                    FeedState::Reconnecting,
                    format!(
                        "attempt {} in {:.1} s to {}{why}",
                        feed.backoff.attempts(),
                        delay.as_secs_f64(),
                        feed.session.gateway,
                    ),
                )
                .await;
                tokio::select! {
                    biased;
                    _ = stop.stopped() => break Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    tx.flush_gaps().await;
    feed.log_summary();
    result
}

/// How one connection ended.
enum Ended {
    Stopped,
    /// A refusal: never retried.
    Fatal(IngestError),
    /// Reconnect (the reason is reported).
    Lost(String),
}

/// What handling one record asks of the async caller.
#[allow(clippy::large_enum_variant)]
enum Handled {
    Done,
    /// Publish the event.
    Event(Event),
    /// Report this status, then publish the event.
    Report(FeedStatus, Option<Event>),
    Fatal(IngestError),
}

/// The state of one session that outlives its connections.
struct Feed {
    session: Session,
    key: Secret,
    backoff: Backoff,
    /// Created from the first metadata; keeps symbols and option terms across reconnects.
    mapper: Option<Mapper>,
    handed_on: HandedOn,
    /// Set from a reconnect until a record newer than the resume point arrives.
    overlap: Option<Overlap>,
    /// Set from a reconnect until the first new event, which closes the gap.
    pending_gap: Option<PendingGap>,
    /// Whether the current connection got as far as the session's metadata.
    connected: bool,
    /// Whether any connection did.
    ever_connected: bool,
    /// Whether records have flowed on the current connection (backoff reset).
    flowing: bool,
    /// Option trades of other expiries, not published.
    filtered: u64,
    skipped: BTreeMap<&'static str, u64>,
}

/// The data records most recently handed to the mapper: enough to resume without a hole or a
/// duplicate.
#[derive(Debug, Default)]
struct HandedOn {
    /// The greatest index time (`ts_recv`) of a data record handed on.
    index_ts: Option<u64>,
    /// The bytes of the records handed on at exactly `index_ts`, back to back.
    at_index_ts: Vec<u8>,
    /// Where each of those records ends in `at_index_ts`.
    ends: Vec<usize>,
    /// `ts_event` of the last event published.
    last_event_ts: Option<u64>,
}

impl HandedOn {
    fn note(&mut self, index_ts: u64, bytes: &[u8]) {
        match self.index_ts {
            Some(t) if index_ts < t => return,
            Some(t) if index_ts == t => {}
            _ => {
                self.index_ts = Some(index_ts);
                self.at_index_ts.clear();
                self.ends.clear();
            }
        }
        self.at_index_ts.extend_from_slice(bytes);
        self.ends.push(self.at_index_ts.len());
    }

    /// The overlap to drop when the gateway replays from [`HandedOn::index_ts`].
    fn overlap(&self) -> Option<Overlap> {
        let from = self.index_ts?;
        let mut seen: HashMap<Box<[u8]>, u32> = HashMap::with_capacity(self.ends.len());
        let mut begin = 0;
        for &end in &self.ends {
            *seen.entry(self.at_index_ts[begin..end].into()).or_default() += 1;
            begin = end;
        }
        Some(Overlap { from, seen })
    }
}

/// Records a replay from `from` sends again.
#[derive(Debug)]
struct Overlap {
    from: u64,
    /// Records of exactly `from` already handed on (a multiset of their bytes).
    seen: HashMap<Box<[u8]>, u32>,
}

impl Overlap {
    /// Whether a replayed record was handed on before; `None` once past the overlap.
    fn replayed(&mut self, index_ts: u64, bytes: &[u8]) -> Option<bool> {
        if index_ts < self.from {
            return Some(true);
        }
        if index_ts > self.from {
            return None;
        }
        Some(match self.seen.get_mut(bytes) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
    }
}

/// A hole opened by a disconnect, reported before the first new event.
#[derive(Debug, Clone, Copy)]
struct PendingGap {
    /// `ts_event` of the last event before the disconnect.
    before: Option<u64>,
    /// The replay point sent on resubscribing (None: resumed live, the hole is unknown).
    from: Option<u64>,
}

impl Feed {
    fn new(session: Session, key: Secret) -> Feed {
        Feed {
            backoff: Backoff::new(session.backoff_initial, session.backoff_max),
            session,
            key,
            mapper: None,
            handed_on: HandedOn::default(),
            overlap: None,
            pending_gap: None,
            connected: false,
            ever_connected: false,
            flowing: false,
            filtered: 0,
            skipped: BTreeMap::new(),
        }
    }

    fn feed(&self) -> &str {
        &self.session.dataset
    }

    /// Where the next session starts: just after what was handed on, else `--start`.
    fn resume_from(&self) -> Option<u64> {
        self.handed_on.index_ts.or(self.session.start)
    }

    /// One connection: connect, authenticate, subscribe, stream until it ends.
    async fn connection(&mut self, tx: &mut FeedTx) -> Ended {
        self.connected = false;
        self.flowing = false;
        let gateway = self.session.gateway.clone();
        let stream = match tokio::time::timeout(
            self.session.connect_timeout,
            TcpStream::connect(gateway.as_str()),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Ended::Lost(format!("connecting to {gateway}: {e}")),
            Err(_) => {
                return Ended::Lost(format!(
                    "connecting to {gateway}: no answer within {} s",
                    self.session.connect_timeout.as_secs()
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::with_capacity(BUFFER_SIZE, read);
        let session_id = match tokio::time::timeout(
            self.session.auth_timeout,
            self.authenticate(&mut read, &mut write),
        )
        .await
        {
            Ok(Ok(id)) => id,
            Ok(Err(ended)) => return ended,
            Err(_) => {
                return Ended::Lost(format!(
                    "authenticating with {gateway}: no answer within {} s",
                    self.session.auth_timeout.as_secs()
                ));
            }
        };

        // Resubscribe from where we are, and drop what the replay sends again.
        let from = self.resume_from();
        if self.ever_connected {
            self.overlap = self.handed_on.overlap();
            if self.pending_gap.is_none() {
                self.pending_gap = Some(PendingGap {
                    before: self.handed_on.last_event_ts,
                    from,
                });
            }
        }
        let mut request = subscription_lines(&self.session.subscriptions, from).concat();
        request.push_str("start_session\n");
        tracing::debug!("{}: subscribing: {}", self.feed(), request.trim_end());
        if let Err(e) = write.write_all(request.as_bytes()).await {
            return Ended::Lost(format!("subscribing: {e}"));
        }

        let mut input = match Input::new(read, self.session.compression, self.session.heartbeat_s) {
            Ok(i) => i,
            Err(e) => return Ended::Lost(format!("zstd decoder: {e}")),
        };
        let fsm = DbnFsm::builder()
            .upgrade_policy(VersionUpgradePolicy::UpgradeToV3)
            .buffer_size(BUFFER_SIZE)
            .build();
        let mut fsm = match fsm {
            Ok(f) => f,
            Err(e) => return Ended::Lost(format!("DBN decoder: {e}")),
        };
        let ended = self
            .stream(&mut input, &mut fsm, tx, &session_id, from)
            .await;
        // The write half stays open until here: closing it would end the session.
        drop(write);
        ended
    }

    /// Greeting, challenge, our response, the gateway's answer: the session id.
    async fn authenticate<R: AsyncRead + Unpin, W: tokio::io::AsyncWrite + Unpin>(
        &self,
        read: &mut BufReader<R>,
        write: &mut W,
    ) -> Result<String, Ended> {
        let greeting = read_line(read).await?;
        tracing::debug!("{}: gateway greeting: {greeting}", self.feed());
        let line = read_line(read).await?;
        let Some(challenge) = line.strip_prefix("cram=") else {
            return Err(Ended::Lost(format!(
                "no CRAM challenge from the gateway (got `{}`)",
                self.key.redact(&line)
            )));
        };
        let auth = auth_line(challenge, &self.key, &self.session);
        write
            .write_all(auth.as_bytes())
            .await
            .map_err(|e| Ended::Lost(format!("authenticating: {e}")))?;
        let answer = read_line(read).await?;
        let mut success = None;
        let mut error = None;
        let mut session_id = String::new();
        for (k, v) in fields(&answer) {
            match k {
                "success" => success = Some(v == "1"),
                "error" => error = Some(v.to_string()),
                "session_id" => session_id = v.to_string(),
                _ => {}
            }
        }
        if success == Some(true) {
            return Ok(session_id);
        }
        let message = self.key.redact(error.as_deref().unwrap_or(answer.as_str()));
        Err(Ended::Fatal(refusal(self.feed(), message)))
    }

    /// Decodes the session's DBN stream until the connection ends.
    async fn stream(
        &mut self,
        input: &mut Input,
        fsm: &mut DbnFsm,
        tx: &mut FeedTx,
        session_id: &str,
        from: Option<u64>,
    ) -> Ended {
        loop {
            match fsm.process() {
                ProcessResult::Record(()) => {
                    let handled = match fsm.last_record() {
                        Some(rec) => self.on_record(rec, tx),
                        None => Handled::Done,
                    };
                    match handled {
                        Handled::Done => {}
                        Handled::Event(event) => {
                            if tx.event_wait(event).await.is_err() {
                                return Ended::Stopped;
                            }
                        }
                        Handled::Report(status, event) => {
                            tx.status(status).await;
                            if let Some(event) = event
                                && tx.event_wait(event).await.is_err()
                            {
                                return Ended::Stopped;
                            }
                        }
                        Handled::Fatal(e) => return Ended::Fatal(e),
                    }
                }
                ProcessResult::ReadMore(_) => {
                    if let Err(reason) = input.fill(fsm).await {
                        return Ended::Lost(reason);
                    }
                }
                ProcessResult::Metadata(metadata) => {
                    let status = self.on_metadata(&metadata, tx, session_id, from);
                    tx.status(status).await;
                }
                ProcessResult::Err(e) => {
                    return Ended::Lost(format!("corrupt DBN stream: {e}"));
                }
            }
        }
    }

    fn on_metadata(
        &mut self,
        metadata: &Metadata,
        tx: &FeedTx,
        session_id: &str,
        from: Option<u64>,
    ) -> FeedStatus {
        if metadata.dataset != self.session.dataset {
            tracing::warn!(
                "{}: the gateway streams dataset {} (asked for {})",
                self.feed(),
                metadata.dataset,
                self.session.dataset
            );
        }
        if self.mapper.is_none() {
            self.mapper = Some(Mapper::new(metadata, tx.source()));
        }
        self.connected = true;
        self.ever_connected = true;
        let replay = from.map_or(String::new(), |t| {
            format!(", replaying from {}", crate::cli::format_ts(t))
        });
        tx.status_of(
            FeedState::Connected,
            format!(
                "session {session_id} on {}: {}{replay}",
                self.session.gateway,
                self.session.describe()
            ),
        )
    }

    /// Handles one decoded record: control records are applied or reported, data records are
    /// deduplicated after a reconnect, mapped and published.
    fn on_record(&mut self, rec: RecordRef<'_>, tx: &mut FeedTx) -> Handled {
        let rt = rec.header().rtype;
        match rt {
            rtype::SYSTEM => return self.on_system(rec, tx),
            rtype::ERROR => return self.on_error(rec, tx),
            rtype::SYMBOL_MAPPING => {
                if let Some(m) = &mut self.mapper {
                    m.map(rec);
                }
                return Handled::Done;
            }
            _ => {}
        }
        let index_ts = rec.raw_index_ts();
        if index_ts != UNDEF_TIMESTAMP {
            if let Some(overlap) = &mut self.overlap {
                match overlap.replayed(index_ts, rec.as_ref()) {
                    Some(true) => {
                        tx.count_duplicate();
                        return Handled::Done;
                    }
                    Some(false) => {}
                    None => self.overlap = None,
                }
            }
            self.handed_on.note(index_ts, rec.as_ref());
        }
        if !self.flowing {
            self.flowing = true;
            self.backoff.reset();
        }
        let Some(mapper) = &mut self.mapper else {
            return Handled::Done;
        };
        let event = match mapper.map(rec) {
            Outcome::Event(e) => e,
            Outcome::Skip(why) => {
                *self.skipped.entry(why).or_default() += 1;
                return Handled::Done;
            }
            Outcome::Applied => return Handled::Done,
        };
        if self.session.zero_dte_only
            && let Event::OptionTrade(t) = &event
            && eastern_date(t.ts_event_ns).as_deref() != Some(t.exp_date.as_str())
        {
            self.filtered += 1;
            tx.count_filtered();
            return Handled::Done;
        }
        let ts = event.ts_event_ns();
        self.handed_on.last_event_ts = Some(ts);
        if let Some(gap) = self.pending_gap.take() {
            return Handled::Report(self.gap_closed(gap, ts, tx), Some(event));
        }
        Handled::Event(event)
    }

    /// The gap status of a reconnect, closed by the first new event at `first_ts`.
    fn gap_closed(&self, gap: PendingGap, first_ts: u64, tx: &FeedTx) -> FeedStatus {
        let dropped = tx
            .counters()
            .duplicates_dropped
            .load(std::sync::atomic::Ordering::Relaxed);
        let (reason, lost) = match gap.from {
            Some(from) => (
                format!(
                    "reconnected: the replay from {} filled the gap ({dropped} overlapping \
                     record(s) dropped so far)",
                    crate::cli::format_ts(from)
                ),
                Some(0),
            ),
            None => (
                "reconnected live with no point to replay from: records sent while \
                 disconnected may be missing"
                    .to_string(),
                None,
            ),
        };
        let mut s = tx.status_of(FeedState::Gap, reason);
        s.gap_start_ns = gap.before;
        s.gap_end_ns = Some(first_ts);
        s.records_lost = lost;
        s
    }

    fn on_system(&mut self, rec: RecordRef<'_>, tx: &FeedTx) -> Handled {
        let Some(m) = rec.get::<SystemMsg>() else {
            return Handled::Done;
        };
        let msg = self.key.redact(m.msg().unwrap_or("<unreadable message>"));
        let code = m.code().unwrap_or(SystemCode::Unset);
        match code {
            SystemCode::Heartbeat => tracing::trace!("{}: heartbeat", self.feed()),
            SystemCode::EndOfInterval => tracing::trace!("{}: {msg}", self.feed()),
            SystemCode::SubscriptionAck => tracing::debug!("{}: {msg}", self.feed()),
            SystemCode::SlowReaderWarning => {
                let mut s = tx.status_of(
                    FeedState::Gap,
                    format!("gateway slow-reader warning: {msg} (records are delayed)"),
                );
                s.gap_start_ns = self.handed_on.last_event_ts;
                return Handled::Report(s, None);
            }
            _ => tracing::info!("{}: gateway: {msg} ({})", self.feed(), code.as_str()),
        }
        Handled::Done
    }

    fn on_error(&mut self, rec: RecordRef<'_>, tx: &FeedTx) -> Handled {
        let Some(m) = rec.get::<ErrorMsg>() else {
            return Handled::Done;
        };
        let msg = self.key.redact(m.err().unwrap_or("<unreadable message>"));
        let code = m.code().unwrap_or(ErrorCode::Unset);
        let feed = self.feed().to_string();
        tracing::error!("{feed}: gateway error {}: {msg}", code.as_str());
        match code {
            ErrorCode::AuthFailed | ErrorCode::ApiKeyDeactivated => {
                Handled::Fatal(IngestError::Auth { feed, message: msg })
            }
            ErrorCode::ConnectionLimitExceeded | ErrorCode::InvalidSubscription => {
                Handled::Fatal(IngestError::Refused { feed, message: msg })
            }
            ErrorCode::SkippedRecordsAfterSlowReading | ErrorCode::ReplayDataAgedOut => {
                let mut s = tx.status_of(FeedState::Gap, format!("gateway: {msg}"));
                s.gap_start_ns = self.handed_on.last_event_ts;
                s.gap_end_ns = (m.hd.ts_event != UNDEF_TIMESTAMP).then_some(m.hd.ts_event);
                s.records_lost = records_in(&msg);
                Handled::Report(s, None)
            }
            _ => Handled::Done,
        }
    }

    fn log_summary(&self) {
        let feed = self.feed();
        for (why, n) in &self.skipped {
            tracing::info!("{feed}: {n} record(s) skipped: {why}");
        }
        if self.filtered > 0 {
            tracing::info!(
                "{feed}: {} option trade(s) of other expiries not published (0DTE only; \
                 --all-expiries publishes them)",
                self.filtered
            );
        }
    }
}

/// Reads one control line (without its newline).
async fn read_line<R: AsyncRead + Unpin>(read: &mut BufReader<R>) -> Result<String, Ended> {
    let mut line = String::new();
    let n = (&mut *read)
        .take(MAX_LINE)
        .read_line(&mut line)
        .await
        .map_err(|e| Ended::Lost(format!("reading from the gateway: {e}")))?;
    if n == 0 {
        return Err(Ended::Lost(
            "the gateway closed the connection during authentication".into(),
        ));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The socket after authentication, decompressed when the session is: feeds the DBN decoder.
struct Input {
    socket: BufReader<OwnedReadHalf>,
    zstd: Option<Zstd>,
    /// No byte for this long ends the connection.
    timeout: Duration,
    heartbeat_s: u32,
}

/// A sans-IO zstd decoder and its compressed input.
struct Zstd {
    decoder: zstd::stream::raw::Decoder<'static>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The last call filled the output: more may come without new input.
    more_out: bool,
}

impl Input {
    fn new(
        socket: BufReader<OwnedReadHalf>,
        compression: Compression,
        heartbeat_s: u32,
    ) -> std::io::Result<Input> {
        let zstd = match compression {
            Compression::None => None,
            Compression::Zstd => Some(Zstd {
                decoder: zstd::stream::raw::Decoder::new()?,
                buf: vec![0; BUFFER_SIZE].into_boxed_slice(),
                start: 0,
                end: 0,
                more_out: false,
            }),
        };
        let interval = Duration::from_secs(u64::from(heartbeat_s));
        Ok(Input {
            socket,
            zstd,
            timeout: interval + heartbeat_grace(interval),
            heartbeat_s,
        })
    }

    /// Adds at least one byte to the decoder, or says why the connection is over.
    async fn fill(&mut self, fsm: &mut DbnFsm) -> Result<(), String> {
        let Some(z) = &mut self.zstd else {
            let n = read_some(
                &mut self.socket,
                fsm.space(),
                self.timeout,
                self.heartbeat_s,
            )
            .await?;
            fsm.fill(n);
            return Ok(());
        };
        loop {
            if z.start < z.end || z.more_out {
                use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
                let space = fsm.space();
                let capacity = space.len();
                let mut input = InBuffer::around(&z.buf[z.start..z.end]);
                let mut output = OutBuffer::around(space);
                z.decoder
                    .run(&mut input, &mut output)
                    .map_err(|e| format!("corrupt zstd stream: {e}"))?;
                z.start += input.pos();
                let produced = output.pos();
                z.more_out = produced == capacity;
                fsm.fill(produced);
                if produced > 0 {
                    return Ok(());
                }
                if z.start < z.end {
                    continue;
                }
            }
            if z.start == z.end {
                z.start = 0;
                z.end = 0;
            } else if z.end == z.buf.len() {
                z.buf.copy_within(z.start..z.end, 0);
                z.end -= z.start;
                z.start = 0;
            }
            let n = read_some(
                &mut self.socket,
                &mut z.buf[z.end..],
                self.timeout,
                self.heartbeat_s,
            )
            .await?;
            z.end += n;
        }
    }
}

/// One read of at least a byte from the gateway, or why the connection is over (closed,
/// failed, or silent for longer than `timeout`).
async fn read_some(
    socket: &mut BufReader<OwnedReadHalf>,
    buf: &mut [u8],
    timeout: Duration,
    heartbeat_s: u32,
) -> Result<usize, String> {
    match tokio::time::timeout(timeout, socket.read(buf)).await {
        Ok(Ok(0)) => Err("the gateway closed the connection".into()),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(format!("reading from the gateway: {e}")),
        Err(_) => Err(format!(
            "heartbeat timeout: no data for {:.1} s (heartbeat interval {heartbeat_s} s + grace \
             {:.1} s)",
            timeout.as_secs_f64(),
            heartbeat_grace(Duration::from_secs(u64::from(heartbeat_s))).as_secs_f64()
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        databento: DatabentoArgs,
    }

    fn parse(args: &[&str]) -> Result<Vec<Session>, IngestError> {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("spm-ingest").chain(args.iter().copied()))
            .map_err(|e| IngestError::Config(e.to_string()))?;
        let cli =
            Cli::from_arg_matches(&matches).map_err(|e| IngestError::Config(e.to_string()))?;
        sessions(&cli.databento, &matches)
    }

    fn symbols(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cram_response_is_sha256_of_challenge_bar_key_then_the_key_bucket() {
        // printf '%s' 'abcdefghijklmnopqrstuvwxyz012345|db-0123456789abcdefghijklmnopq' | sha256sum
        let key = Secret::new("db-0123456789abcdefghijklmnopq");
        let response = cram_response("abcdefghijklmnopqrstuvwxyz012345", &key);
        assert_eq!(
            response,
            "85a3f8d09eb8ae729ad19a73c9fce83bb6b77716c8a00f03d5a03c1fe5b76fe9-mnopq"
        );
    }

    #[test]
    fn auth_line_names_dataset_options_and_never_the_key() {
        let key = Secret::new("db-0123456789abcdefghijklmnopq");
        let mut session = Session::new("GLBX.MDP3", &[], &[], None);
        session.compression = Compression::Zstd;
        session.heartbeat_s = 7;
        session.slow_reader = SlowReader::Skip;
        let line = auth_line("CHALLENGE", &key, &session);
        assert!(line.ends_with('\n'));
        let fields: Vec<(&str, &str)> = fields(line.trim_end()).collect();
        let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
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
        assert_eq!(fields[0].1, cram_response("CHALLENGE", &key));
        assert_eq!(fields[1].1, "GLBX.MDP3");
        assert_eq!(fields[2].1, "dbn");
        assert_eq!(fields[3].1, "zstd");
        assert_eq!(fields[4].1, "0");
        assert!(fields[5].1.starts_with("spymaster "));
        assert_eq!(fields[6].1, "7");
        assert_eq!(fields[7].1, "skip");
        assert!(!line.contains(key.expose()));
    }

    #[test]
    fn subscription_lines_carry_schema_stype_symbols_and_start() {
        let subs = subscriptions(
            &[Schema::Mbp10, Schema::Trades],
            &symbols(&["ES.FUT"]),
            None,
        );
        assert_eq!(
            subscription_lines(&subs, None),
            [
                "schema=mbp-10|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1\n",
                "schema=trades|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1\n",
            ]
        );
        assert_eq!(
            subscription_lines(&subs[..1], Some(1_763_737_200_000_000_000)),
            [
                "schema=mbp-10|stype_in=parent|symbols=ES.FUT|snapshot=0|is_last=1|start=1763737200000000000\n"
            ]
        );
    }

    #[test]
    fn more_than_500_symbols_are_chunked_with_is_last_on_the_final_line() {
        let many: Vec<String> = (0..1201).map(|i| format!("S{i}")).collect();
        let subs = subscriptions(&[Schema::Trades], &many, None);
        let lines = subscription_lines(&subs, None);
        assert_eq!(lines.len(), 3);
        let counts: Vec<usize> = lines
            .iter()
            .map(|l| {
                fields(l.trim_end())
                    .find(|(k, _)| *k == "symbols")
                    .map_or(0, |(_, v)| v.split(',').count())
            })
            .collect();
        assert_eq!(counts, [500, 500, 201]);
        let last: Vec<bool> = lines.iter().map(|l| l.contains("is_last=1")).collect();
        assert_eq!(last, [false, false, true]);
        let sent: Vec<String> = lines
            .iter()
            .flat_map(|l| {
                let v = fields(l.trim_end())
                    .find(|(k, _)| *k == "symbols")
                    .map_or("", |(_, v)| v);
                v.split(',').map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(sent, many, "every symbol once, in order");
    }

    #[test]
    fn symbology_is_guessed_from_the_symbol_and_mixed_symbols_split_by_it() {
        assert_eq!(default_stype("ES.FUT"), SType::Parent);
        assert_eq!(default_stype("SPY.OPT"), SType::Parent);
        assert_eq!(default_stype("ES.c.0"), SType::Continuous);
        assert_eq!(default_stype("ESZ5"), SType::RawSymbol);
        assert_eq!(default_stype("SPY"), SType::RawSymbol);
        assert_eq!(default_stype("BRK.B"), SType::RawSymbol);
        let subs = subscriptions(
            &[Schema::Trades],
            &symbols(&["ES.FUT", "ESZ5", "NQ.FUT"]),
            None,
        );
        assert_eq!(
            subs,
            [
                Subscription {
                    schema: Schema::Trades,
                    stype_in: SType::Parent,
                    symbols: symbols(&["ES.FUT", "NQ.FUT"])
                },
                Subscription {
                    schema: Schema::Trades,
                    stype_in: SType::RawSymbol,
                    symbols: symbols(&["ESZ5"])
                },
            ]
        );
        let forced = subscriptions(
            &[Schema::Trades],
            &symbols(&["ES.FUT"]),
            Some(SType::RawSymbol),
        );
        assert_eq!(forced[0].stype_in, SType::RawSymbol);
    }

    #[test]
    fn without_datasets_the_three_default_sessions_are_opened() {
        let s = parse(&[]).expect("defaults");
        let got: Vec<(String, String, String)> = s
            .iter()
            .map(|s| (s.dataset.clone(), s.gateway.clone(), s.describe()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "GLBX.MDP3".to_string(),
                    "glbx-mdp3.lsg.databento.com:13000".to_string(),
                    "mbp-10 ES.FUT (parent), trades ES.FUT (parent)".to_string()
                ),
                (
                    "OPRA.PILLAR".to_string(),
                    "opra-pillar.lsg.databento.com:13000".to_string(),
                    "definition SPY.OPT (parent), tcbbo SPY.OPT (parent)".to_string()
                ),
                (
                    "XNAS.ITCH".to_string(),
                    "xnas-itch.lsg.databento.com:13000".to_string(),
                    "trades SPY (raw_symbol)".to_string()
                ),
            ]
        );
        assert!(s[1].zero_dte_only && !s[0].zero_dte_only);
        assert_eq!(s[0].heartbeat_timeout(), Duration::from_secs(45));
    }

    #[test]
    fn schema_and_symbols_belong_to_the_dataset_before_them() {
        let s = parse(&[
            "--dataset",
            "GLBX.MDP3",
            "--schema",
            "trades",
            "--symbols",
            "ESZ5,NQZ5",
            "--dataset",
            "XNAS.ITCH",
            "--symbols",
            "QQQ",
            "--schema",
            "mbp-1",
            "--symbols",
            "SPY",
            "--gateway",
            "127.0.0.1:9",
            "--heartbeat-s",
            "2",
            "--start",
            "2025-11-21T15:00:00Z",
            "--compression",
            "zstd",
        ])
        .expect("sessions");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].dataset, "GLBX.MDP3");
        assert_eq!(s[0].describe(), "trades ESZ5,NQZ5 (raw_symbol)");
        assert_eq!(s[1].dataset, "XNAS.ITCH");
        assert_eq!(s[1].describe(), "mbp-1 QQQ,SPY (raw_symbol)");
        for session in &s {
            assert_eq!(session.gateway, "127.0.0.1:9");
            assert_eq!(session.heartbeat_s, 2);
            assert_eq!(session.heartbeat_timeout(), Duration::from_secs(3));
            assert_eq!(session.start, Some(1_763_737_200_000_000_000));
            assert_eq!(session.compression, Compression::Zstd);
        }
    }

    #[test]
    fn a_schema_before_any_dataset_is_refused() {
        let err = parse(&["--schema", "trades", "--dataset", "GLBX.MDP3"]).expect_err("refused");
        assert!(err.to_string().contains("before any --dataset"), "{err}");
        let err = parse(&["--dataset", "GLBX.MDP3", "--dataset", "GLBX.MDP3"]).expect_err("twice");
        assert!(err.to_string().contains("given twice"), "{err}");
        assert!(parse(&["--dataset", "GLBX.MDP3", "--schema", "nonsense"]).is_err());
        assert!(parse(&["--heartbeat-s", "0"]).is_err());
    }

    #[test]
    fn the_key_is_hidden_in_help_and_debug_output() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--databento-key"));
        assert!(help.contains("DATABENTO_API_KEY"));
        let matches = Cli::command()
            .try_get_matches_from(["spm-ingest", "--databento-key", "db-secretsecretsecret"])
            .expect("parse");
        let cli = Cli::from_arg_matches(&matches).expect("args");
        assert!(!format!("{cli:?}").contains("secretsecret"));
        assert_eq!(
            cli.databento.key().expect("key").expose(),
            "db-secretsecretsecret"
        );
        let none = Cli::from_arg_matches(
            &Cli::command()
                .try_get_matches_from(["spm-ingest"])
                .expect("parse"),
        )
        .expect("args");
        if std::env::var_os("DATABENTO_API_KEY").is_none() {
            assert!(matches!(none.databento.key(), Err(IngestError::Config(_))));
        }
    }

    #[test]
    fn refusals_are_auth_errors_unless_they_name_a_limit_or_dataset() {
        assert!(matches!(
            refusal("GLBX.MDP3", "Authentication failed.".into()),
            IngestError::Auth { .. }
        ));
        assert!(matches!(
            refusal(
                "GLBX.MDP3",
                "User has reached their open connection limit".into()
            ),
            IngestError::Refused { .. }
        ));
        assert!(matches!(
            refusal("GLBX.MDP3", "Unknown dataset".into()),
            IngestError::Refused { .. }
        ));
        assert!(matches!(
            refusal("GLBX.MDP3", "Invalid API key for dataset GLBX.MDP3".into()),
            IngestError::Auth { .. }
        ));
    }

    #[test]
    fn the_skipped_record_count_is_read_from_the_gateway_message() {
        assert_eq!(
            records_in("Skipped 1234 records after slow reading"),
            Some(1234)
        );
        assert_eq!(records_in("skipped 1 record"), Some(1));
        assert_eq!(records_in("Skipped records after slow reading"), None);
    }

    #[test]
    fn the_overlap_drops_older_records_and_those_already_handed_on_at_the_resume_time() {
        let mut handed = HandedOn::default();
        handed.note(10, b"a");
        handed.note(20, b"b");
        handed.note(20, b"c");
        handed.note(15, b"late"); // older than the newest: not a resume candidate
        let mut overlap = handed.overlap().expect("resume point");
        assert_eq!(overlap.from, 20);
        assert_eq!(overlap.replayed(10, b"a"), Some(true));
        assert_eq!(overlap.replayed(20, b"b"), Some(true));
        assert_eq!(overlap.replayed(20, b"b"), Some(false), "only once");
        assert_eq!(
            overlap.replayed(20, b"d"),
            Some(false),
            "new at the same time"
        );
        assert_eq!(overlap.replayed(20, b"c"), Some(true));
        assert_eq!(overlap.replayed(21, b"e"), None, "past the overlap");
        assert!(HandedOn::default().overlap().is_none());
    }

    #[test]
    fn eastern_dates_follow_new_york_time() {
        // 2025-11-21 15:00 UTC = 10:00 EST; 2025-11-22 03:00 UTC = 22:00 EST on the 21st.
        assert_eq!(
            eastern_date(1_763_737_200_000_000_000).as_deref(),
            Some("2025-11-21")
        );
        assert_eq!(
            eastern_date(1_763_780_400_000_000_000).as_deref(),
            Some("2025-11-21")
        );
    }
}
