//! The NATS bus: connection settings, JetStream streams, and the synchronous source and sink
//! adaptors every command uses to read and write events over NATS.
//!
//! The binaries are synchronous; [`Bus`] owns a small tokio runtime and hands out two sinks and
//! a source:
//! - [`BatchSink`] for bulk publishers (`spm-replay`): the fast-ingest batch protocol of
//!   nats-server 2.14+, exactly once across re-runs through a position header on every message;
//! - [`NatsSink`] for low-rate publishers (signals, feed status): one JetStream publish per
//!   event with a bounded window of outstanding acks and a deterministic `Nats-Msg-Id`;
//! - [`NatsSource`]: ordered consumers, new messages by default or the retained history.
//!
//! Async code (the gateway) can use [`connect`] and [`ensure_streams`] directly.

mod batch;
mod durable;
pub mod lock;
mod sink;
mod source;
mod subject;
pub mod testing;
mod watch;

pub use batch::{BatchSettings, BatchSink, POSITION_HEADER, Position};
pub use durable::{DurableMessage, DurableSettings, DurableSource, Polled, members_subject};
pub use sink::{NatsSink, SinkSettings, message_id};
pub use source::{NatsRawSource, NatsSource, RawMessage, SourceOptions, wait_for_signal};
pub use subject::{subject_matches, subjects_overlap};
pub use watch::{LinkState, LinkWatch};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::TryStreamExt;

/// Connection settings shared by every binary (`#[command(flatten)]`); each has an env fallback.
#[derive(Debug, Clone, clap::Args)]
pub struct BusConfig {
    /// NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured),
    /// or a comma-separated list of a cluster's servers: the client connects to any of them and
    /// reconnects to another when one goes away.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://localhost:4222"
    )]
    pub nats_url: String,
    /// NATS credentials file (JWT + NKey seed).
    #[arg(long = "nats-creds", env = "NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// NATS authentication token.
    #[arg(long = "nats-token", env = "NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// NATS user name (with `--nats-password`).
    #[arg(long = "nats-user", env = "NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password.
    #[arg(long = "nats-password", env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// PEM file of root certificates to trust for TLS.
    #[arg(long = "nats-ca", env = "NATS_CA", value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `--nats-key`).
    #[arg(
        long = "nats-cert",
        env = "NATS_CERT",
        value_name = "FILE",
        requires = "nats_key"
    )]
    pub nats_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(
        long = "nats-key",
        env = "NATS_KEY",
        value_name = "FILE",
        requires = "nats_cert"
    )]
    pub nats_key: Option<PathBuf>,
    /// How long to keep trying to reach the server at startup, in seconds.
    #[arg(
        long = "nats-connect-wait",
        env = "NATS_CONNECT_WAIT",
        default_value_t = 10.0,
        value_name = "SECS"
    )]
    pub connect_wait_secs: f64,
    #[command(flatten)]
    pub streams: StreamSettings,
}

impl BusConfig {
    /// Settings for a server at `url` with no credentials and the default streams.
    pub fn new(url: impl Into<String>) -> Self {
        BusConfig {
            nats_url: url.into(),
            nats_creds: None,
            nats_token: None,
            nats_user: None,
            nats_password: None,
            nats_ca: None,
            nats_cert: None,
            nats_key: None,
            connect_wait_secs: 10.0,
            streams: StreamSettings::default(),
        }
    }
}

/// Storage of a JetStream stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Storage {
    #[default]
    File,
    Memory,
}

impl From<Storage> for jetstream::stream::StorageType {
    fn from(s: Storage) -> Self {
        match s {
            Storage::File => jetstream::stream::StorageType::File,
            Storage::Memory => jetstream::stream::StorageType::Memory,
        }
    }
}

/// Persistence of a JetStream stream (nats-server 2.12+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PersistMode {
    /// Acknowledge once the message is handed to the file store (the server's default).
    Default,
    /// Acknowledge before the write and group writes (R1 file streams): a hard kill of the
    /// server can lose the last acknowledged messages.
    #[default]
    Async,
}

impl From<PersistMode> for jetstream::stream::PersistenceMode {
    fn from(m: PersistMode) -> Self {
        match m {
            PersistMode::Default => jetstream::stream::PersistenceMode::Default,
            PersistMode::Async => jetstream::stream::PersistenceMode::Async,
        }
    }
}

/// One stream and the subjects it captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub subjects: Vec<String>,
    /// Written in bulk (market data): takes the configured persist mode. Low-rate streams
    /// (signals, feed status) always persist before they acknowledge.
    pub bulk: bool,
}

/// The JetStream streams commands create idempotently, and their limits.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamSettings {
    #[arg(skip = default_streams())]
    pub streams: Vec<StreamSpec>,
    /// Storage of streams this command creates.
    #[arg(long = "stream-storage", env = "NATS_STREAM_STORAGE", value_enum, default_value_t = Storage::File)]
    pub storage: Storage,
    /// Maximum age of messages in streams this command creates, in seconds.
    #[arg(
        long = "stream-max-age",
        env = "NATS_STREAM_MAX_AGE",
        default_value_t = 86_400,
        value_name = "SECS"
    )]
    pub max_age_secs: u64,
    /// Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds.
    #[arg(
        long = "stream-duplicate-window",
        env = "NATS_STREAM_DUPLICATE_WINDOW",
        default_value_t = 120,
        value_name = "SECS"
    )]
    pub duplicate_window_secs: u64,
    /// Maximum size of each stream this command creates, in bytes (-1: unlimited).
    #[arg(long = "stream-max-bytes", env = "NATS_STREAM_MAX_BYTES", default_value_t = -1, allow_negative_numbers = true, value_name = "BYTES")]
    pub max_bytes: i64,
    /// Persistence of the market-data stream this command creates (`async`: acknowledged before
    /// the write, about 1.5 times faster; a hard kill of the server can lose the last messages,
    /// which a re-run replay publishes again). Signal and feed streams always use `default`.
    #[arg(long = "stream-persist-mode", env = "NATS_STREAM_PERSIST_MODE", value_enum, default_value_t = PersistMode::Async)]
    pub persist_mode: PersistMode,
    /// Allow the fast-ingest batch protocol on streams this command creates (needed by
    /// `spm-replay --output nats` at full speed).
    #[arg(long = "stream-allow-batched", env = "NATS_STREAM_ALLOW_BATCHED", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub allow_batched: bool,
    /// Replicas of each stream this command creates (a cluster keeps each message on this many
    /// servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the
    /// server's default mode whatever --stream-persist-mode says.
    #[arg(long = "stream-replicas", env = "NATS_STREAM_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5), value_name = "N")]
    pub replicas: u8,
}

/// Name of the stream holding `market.>`.
pub const MARKET_DATA_STREAM: &str = "MARKET_DATA";
/// Name of the stream holding `levels.>`.
pub const LEVEL_SIGNALS_STREAM: &str = "LEVEL_SIGNALS";
/// Name of the stream holding `feeds.>`.
pub const FEEDS_STREAM: &str = "FEEDS";

fn default_streams() -> Vec<StreamSpec> {
    vec![
        StreamSpec {
            name: MARKET_DATA_STREAM.into(),
            subjects: vec!["market.>".into()],
            bulk: true,
        },
        StreamSpec {
            name: LEVEL_SIGNALS_STREAM.into(),
            subjects: vec!["levels.>".into()],
            bulk: false,
        },
        StreamSpec {
            name: FEEDS_STREAM.into(),
            subjects: vec!["feeds.>".into()],
            bulk: false,
        },
    ]
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            streams: default_streams(),
            storage: Storage::File,
            max_age_secs: 86_400,
            duplicate_window_secs: 120,
            max_bytes: -1,
            persist_mode: PersistMode::Async,
            allow_batched: true,
            replicas: 1,
        }
    }
}

impl StreamSettings {
    /// The JetStream configuration of one stream.
    pub fn stream_config(&self, spec: &StreamSpec) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: spec.name.clone(),
            subjects: spec.subjects.clone(),
            storage: self.storage.into(),
            max_age: Duration::from_secs(self.max_age_secs),
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            max_bytes: self.max_bytes,
            // Async persistence is for R1 streams only (the server refuses it on replicated
            // ones, which already write asynchronously and rely on their replicas).
            persist_mode: Some(if spec.bulk && self.replicas <= 1 {
                self.persist_mode.into()
            } else {
                jetstream::stream::PersistenceMode::Default
            }),
            allow_batch_publish: self.allow_batched,
            num_replicas: usize::from(self.replicas),
            ..Default::default()
        }
    }
}

/// Errors of the NATS bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cannot read NATS credentials file {path}: {source}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("JetStream stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("cannot subscribe to {subject}: {message}")]
    Subscribe { subject: String, message: String },
    #[error("cannot start the NATS runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(
        "JetStream stream {stream} does not allow batched publishing (created by an older version, or with --stream-allow-batched false)"
    )]
    BatchDisabled { stream: String },
    #[error(transparent)]
    Lock(#[from] lock::LockError),
}

/// The servers of a `--nats-url`: one URL, or a comma-separated list (the NATS convention).
pub fn server_list(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The URL (or list of URLs) with any password or token replaced by `***`, for messages and
/// logs.
pub fn redact_url(url: &str) -> String {
    let list = server_list(url);
    if list.len() > 1 {
        return list
            .iter()
            .map(|u| redact_one(u))
            .collect::<Vec<_>>()
            .join(",");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let shown = match userinfo.find(':') {
                Some(colon) => format!("{}:***", &userinfo[..colon]),
                None => "***".to_string(),
            };
            format!("{scheme}{shown}{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// The name this process gives its NATS connections: the command's own (`spm-core`,
/// `spm-lake`, ...), so the server's monitoring (`/connz`) tells who is connected.
pub fn client_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "spymaster".to_string())
}

async fn connect_options(
    cfg: &BusConfig,
    watch: Option<LinkWatch>,
) -> Result<async_nats::ConnectOptions, BusError> {
    let mut opts = match &cfg.nats_creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|source| BusError::Credentials {
                path: path.clone(),
                source,
            })?,
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(token) = &cfg.nats_token {
        opts = opts.token(token.clone());
    }
    if let Some(user) = &cfg.nats_user {
        opts = opts.user_and_password(user.clone(), cfg.nats_password.clone().unwrap_or_default());
    }
    if let Some(ca) = &cfg.nats_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&cfg.nats_cert, &cfg.nats_key) {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if server_list(&cfg.nats_url)
        .iter()
        .any(|u| u.starts_with("tls://"))
    {
        opts = opts.require_tls(true);
    }
    let shown = redact_url(&cfg.nats_url);
    Ok(opts
        .name(client_name())
        .connection_timeout(Duration::from_secs(3))
        .event_callback(move |event| {
            let shown = shown.clone();
            let watch = watch.clone();
            async move {
                if let Some(watch) = &watch {
                    watch.record(&event);
                }
                match event {
                    async_nats::Event::Connected => tracing::info!(url = %shown, "NATS connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!(url = %shown, "NATS disconnected; reconnecting")
                    }
                    async_nats::Event::Closed => {
                        tracing::warn!(url = %shown, "NATS connection closed")
                    }
                    other => tracing::warn!(url = %shown, "NATS: {other}"),
                }
            }
        }))
}

/// Connects to NATS, retrying for `connect_wait_secs` at startup; the error names the URL.
/// Once connected, the client reconnects by itself and logs disconnects through `tracing`.
pub async fn connect(cfg: &BusConfig) -> Result<async_nats::Client, BusError> {
    let shown = redact_url(&cfg.nats_url);
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.connect_wait_secs.max(0.0));
    let mut delay = Duration::from_millis(100);
    loop {
        let opts = connect_options(cfg, None).await?;
        match opts.connect(server_list(&cfg.nats_url)).await {
            Ok(client) => {
                let info = client.server_info();
                tracing::info!(
                    "on NATS server {} at {}:{}{}",
                    info.server_name,
                    info.host,
                    info.port,
                    info.cluster
                        .as_deref()
                        .map(|c| format!(" (cluster {c})"))
                        .unwrap_or_default()
                );
                return Ok(client);
            }
            Err(err) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(BusError::Connect {
                        url: shown,
                        message: err.to_string(),
                    });
                }
                tracing::warn!(url = %shown, "cannot connect to NATS yet ({err}); retrying");
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Connects without waiting for the server: the client keeps trying in the background (and
/// reconnects after a loss) while the returned [`LinkWatch`] tells whether it is connected and
/// since when. For services that must come up and report on their own health (the gateway).
pub async fn connect_in_background(
    cfg: &BusConfig,
) -> Result<(async_nats::Client, LinkWatch), BusError> {
    let watch = LinkWatch::new();
    let opts = connect_options(cfg, Some(watch.clone()))
        .await?
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100 << attempts.min(5)).min(Duration::from_secs(2))
        });
    let client = opts
        .connect(server_list(&cfg.nats_url))
        .await
        .map_err(|err| BusError::Connect {
            url: redact_url(&cfg.nats_url),
            message: err.to_string(),
        })?;
    Ok((client, watch))
}

/// Creates the configured streams if they do not exist. A stream that exists with other
/// settings (or whose subjects another stream already captures) is used as it is, with a warning.
pub async fn ensure_streams(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), BusError> {
    for spec in &settings.streams {
        let wanted = settings.stream_config(spec);
        // A cluster that has just started (or lost its meta leader) answers JetStream API
        // requests only once it has elected one: keep asking for a while.
        let deadline = Instant::now() + STREAM_API_PATIENCE;
        let created = loop {
            match js.get_or_create_stream(wanted.clone()).await {
                Err(e) if Instant::now() < deadline && is_transient(&e.to_string()) => {
                    tracing::warn!(stream = %spec.name, "JetStream not ready ({e}); asking again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => break other,
            }
        };
        match created {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(|e| BusError::Stream {
                    stream: spec.name.clone(),
                    message: e.to_string(),
                })?;
                let have = &info.config;
                let persist = |c: &jetstream::stream::Config| c.persist_mode.unwrap_or_default();
                if have.subjects != wanted.subjects
                    || have.storage != wanted.storage
                    || have.max_age != wanted.max_age
                    || have.duplicate_window != wanted.duplicate_window
                    || have.max_bytes != wanted.max_bytes
                    || persist(have) != persist(&wanted)
                    || have.allow_batch_publish != wanted.allow_batch_publish
                    || have.num_replicas.max(1) != wanted.num_replicas
                {
                    tracing::warn!(
                        stream = %spec.name,
                        "stream exists with other settings (subjects {:?}, storage {:?}, max age {:?}, duplicate window {:?}, max bytes {}, persist mode {:?}, batched publishing {}, replicas {}); using it as it is",
                        have.subjects, have.storage, have.max_age, have.duplicate_window, have.max_bytes,
                        persist(have), have.allow_batch_publish, have.num_replicas
                    );
                }
            }
            Err(err) => {
                // Typically: another stream already captures these subjects. Publishing still
                // lands in that stream, so go on.
                let text = err.to_string();
                if text.contains("overlap") {
                    tracing::warn!(stream = %spec.name, "cannot create stream ({text}); using the stream that captures its subjects");
                } else {
                    return Err(BusError::Stream {
                        stream: spec.name.clone(),
                        message: text,
                    });
                }
            }
        }
    }
    Ok(())
}

/// How long a command keeps asking a JetStream that is not ready (a cluster electing its leader).
const STREAM_API_PATIENCE: Duration = Duration::from_secs(30);

/// Whether a JetStream API error says "not now" rather than "no".
fn is_transient(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("timed out") || e.contains("no responders") || e.contains("temporarily unavailable")
}

/// Names and subjects of every stream on the server, each once.
///
/// The listing is paged by offset, and while a stream changes leader the server may leave it out
/// of a page, so that paging repeats another one (seen: `MARKET_DATA, FEEDS, MARKET_DATA` on a
/// cluster right after a leader change, which made a reader consume `MARKET_DATA` twice). Names
/// are therefore taken once each, and the listing is made again, for up to
/// [`LIST_COMPLETE_WITHIN`], until it holds as many streams as the account says it has.
pub(crate) async fn list_streams(js: &jetstream::Context) -> Result<Vec<StreamSpec>, BusError> {
    let err = |e: &dyn std::fmt::Display| BusError::Stream {
        stream: "(list)".into(),
        message: e.to_string(),
    };
    let deadline = tokio::time::Instant::now() + LIST_COMPLETE_WITHIN;
    loop {
        let mut out: Vec<StreamSpec> = Vec::new();
        let mut streams = js.streams();
        while let Some(info) = streams.try_next().await.map_err(|e| err(&e))? {
            if out.iter().any(|s| s.name == info.config.name) {
                continue;
            }
            out.push(StreamSpec {
                name: info.config.name.clone(),
                subjects: info.config.subjects.clone(),
                // Listed streams are only routed to; whether they take batches is asked when needed.
                bulk: false,
            });
        }
        let expected = match js.query_account().await {
            Ok(account) => account.streams,
            // Not allowed to ask (a restricted account): take the listing as it is.
            Err(_) => out.len(),
        };
        if out.len() >= expected {
            return Ok(out);
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                "the server lists {} of its {expected} streams ({}); going on with those",
                out.len(),
                out.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(out);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// How long [`list_streams`] waits for a listing that leaves no stream out.
const LIST_COMPLETE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The error a sink's publisher task stopped with: joins the task once, keeps the message for
/// every later call. Shared by the sinks, whose synchronous side only learns of a failure when
/// the task's channel closes.
pub(crate) fn publisher_failure(
    bus: &Bus,
    task: &mut Option<tokio::task::JoinHandle<Result<(), String>>>,
    failure: &mut Option<String>,
) -> crate::io::SinkError {
    let msg = failure.get_or_insert_with(|| match task.take() {
        Some(task) => match bus.runtime().block_on(task) {
            Ok(Ok(())) => "publisher stopped".to_string(),
            Ok(Err(msg)) => msg,
            Err(join) => format!("publisher task failed: {join}"),
        },
        None => "publisher stopped".to_string(),
    });
    crate::io::SinkError::Publish(msg.clone())
}

/// A connection to NATS with its own runtime, for synchronous callers.
#[derive(Clone)]
pub struct Bus {
    runtime: Arc<tokio::runtime::Runtime>,
    client: async_nats::Client,
    settings: StreamSettings,
    url: String,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("url", &self.url).finish()
    }
}

impl Bus {
    /// Starts a runtime and connects (see [`connect`]). Must not be called from async code.
    pub fn connect(cfg: &BusConfig) -> Result<Bus, BusError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("spm-nats")
            .enable_all()
            .build()
            .map_err(BusError::Runtime)?;
        let client = runtime.block_on(connect(cfg))?;
        Ok(Bus {
            runtime: Arc::new(runtime),
            client,
            settings: cfg.streams.clone(),
            url: redact_url(&cfg.nats_url),
        })
    }

    /// The server URL, with secrets redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    pub fn stream_settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Creates the configured streams if needed (see [`ensure_streams`]).
    pub fn ensure_streams(&self) -> Result<(), BusError> {
        self.runtime.block_on(async {
            let js = jetstream::new(self.client.clone());
            ensure_streams(&js, &self.settings).await
        })
    }

    /// A sink publishing every event to its subject through JetStream, one acked publish
    /// with a message id per event (low-rate publishers).
    pub fn sink(&self, settings: SinkSettings) -> Result<NatsSink, BusError> {
        NatsSink::new(self, settings)
    }

    /// A bulk sink: the fast-ingest batch protocol, resuming after what the stream already
    /// holds of `settings.input` (see [`BatchSink`]).
    pub fn batch_sink(&self, settings: BatchSettings) -> Result<BatchSink, BusError> {
        BatchSink::new(self, settings)
    }

    /// A source reading the given subjects (wildcards allowed) through ordered consumers.
    pub fn source(&self, subjects: &[String], opts: SourceOptions) -> Result<NatsSource, BusError> {
        NatsSource::new(self, subjects, opts)
    }

    /// Like [`Bus::source`], but yields the subject and payload bytes of each message unparsed.
    pub fn raw_source(
        &self,
        subjects: &[String],
        opts: SourceOptions,
    ) -> Result<NatsRawSource, BusError> {
        NatsRawSource::new(self, subjects, opts)
    }

    /// Number of messages in a stream (for tests and tools).
    pub fn stream_message_count(&self, stream: &str) -> Result<u64, BusError> {
        self.runtime.block_on(async {
            let js = jetstream::new(self.client.clone());
            let s = js.get_stream(stream).await.map_err(|e| BusError::Stream {
                stream: stream.into(),
                message: e.to_string(),
            })?;
            let info = s.get_info().await.map_err(|e| BusError::Stream {
                stream: stream.into(),
                message: e.to_string(),
            })?;
            Ok(info.state.messages)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bus: BusConfig,
    }

    #[test]
    fn redact_url_hides_passwords_and_tokens_but_keeps_the_host() {
        assert_eq!(
            redact_url("nats://alice:s3cret@host:4222"),
            "nats://alice:***@host:4222"
        );
        assert_eq!(redact_url("tls://tok@host"), "tls://***@host");
        assert_eq!(redact_url("nats://localhost:4222"), "nats://localhost:4222");
        assert_eq!(redact_url("host:4222"), "host:4222");
        assert_eq!(
            redact_url("nats://a:pw@h1:4222, nats://h2:4223,nats://b:pw@h3:4224"),
            "nats://a:***@h1:4222,nats://h2:4223,nats://b:***@h3:4224"
        );
    }

    #[test]
    fn a_comma_separated_url_is_a_list_of_servers() {
        assert_eq!(
            server_list("nats://127.0.0.1:1, nats://127.0.0.1:2,,nats://127.0.0.1:3 "),
            [
                "nats://127.0.0.1:1",
                "nats://127.0.0.1:2",
                "nats://127.0.0.1:3"
            ]
        );
        assert_eq!(
            server_list("nats://localhost:4222"),
            ["nats://localhost:4222"]
        );
        use async_nats::ToServerAddrs;
        let addrs: Vec<_> = server_list("nats://127.0.0.1:1,tls://h:2")
            .to_server_addrs()
            .expect("both parse")
            .collect();
        assert_eq!(addrs.len(), 2);
    }

    #[test]
    fn stream_replicas_come_from_the_flag_and_are_one_to_five() {
        let cli = Cli::try_parse_from(["x", "--stream-replicas", "3"]).unwrap();
        let cfg = cli.bus.streams.stream_config(&cli.bus.streams.streams[0]);
        assert_eq!(cfg.num_replicas, 3);
        assert_eq!(
            cfg.persist_mode,
            Some(jetstream::stream::PersistenceMode::Default),
            "the server refuses async persistence on replicated streams"
        );
        assert!(Cli::try_parse_from(["x", "--stream-replicas", "6"]).is_err());
        assert!(Cli::try_parse_from(["x", "--stream-replicas", "0"]).is_err());
    }

    #[test]
    fn bus_config_defaults_to_localhost_and_the_three_streams() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        // NATS_URL may be set in the environment running the tests.
        if std::env::var_os("NATS_URL").is_none() {
            assert_eq!(cli.bus.nats_url, "nats://localhost:4222");
        }
        let names: Vec<_> = cli
            .bus
            .streams
            .streams
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            names,
            [MARKET_DATA_STREAM, LEVEL_SIGNALS_STREAM, FEEDS_STREAM]
        );
        let cfg = cli.bus.streams.stream_config(&cli.bus.streams.streams[0]);
        assert_eq!(cfg.subjects, ["market.>"]);
        assert_eq!(cfg.duplicate_window, Duration::from_secs(120));
        assert_eq!(cfg.max_age, Duration::from_secs(86_400));
        assert_eq!(cfg.storage, jetstream::stream::StorageType::File);
        // Market data in bulk: async persistence and fast-ingest batches.
        assert_eq!(
            cfg.persist_mode,
            Some(jetstream::stream::PersistenceMode::Async)
        );
        assert!(cfg.allow_batch_publish);
        // Signals persist before they are acknowledged, whatever the bulk setting.
        let signals = cli.bus.streams.stream_config(&cli.bus.streams.streams[1]);
        assert_eq!(
            signals.persist_mode,
            Some(jetstream::stream::PersistenceMode::Default)
        );
    }

    #[test]
    fn stream_settings_take_flags_for_persistence_and_batching() {
        let cli = Cli::try_parse_from([
            "x",
            "--stream-persist-mode",
            "default",
            "--stream-allow-batched",
            "false",
        ])
        .unwrap();
        let cfg = cli.bus.streams.stream_config(&cli.bus.streams.streams[0]);
        assert_eq!(
            cfg.persist_mode,
            Some(jetstream::stream::PersistenceMode::Default)
        );
        assert!(!cfg.allow_batch_publish);
    }

    #[test]
    fn client_certificate_requires_its_key() {
        assert!(Cli::try_parse_from(["x", "--nats-cert", "c.pem"]).is_err());
        assert!(Cli::try_parse_from(["x", "--nats-cert", "c.pem", "--nats-key", "k.pem"]).is_ok());
    }

    #[test]
    fn connect_fails_with_an_error_naming_the_url() {
        // A port nothing listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = BusConfig::new(format!("nats://u:pw@127.0.0.1:{port}"));
        cfg.connect_wait_secs = 0.3;
        let err = Bus::connect(&cfg).unwrap_err().to_string();
        assert!(
            err.contains(&format!("nats://u:***@127.0.0.1:{port}")),
            "{err}"
        );
        assert!(!err.contains("pw"), "{err}");
    }
}
