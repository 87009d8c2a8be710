//! spm-ingest: live feeds (Databento Live, Massive WebSocket, DBN on stdin) → canonical events
//! on stdout or NATS, with the feeds' health on `feeds.status`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches, Parser};
use spymaster::bus::BusConfig;
use spymaster::cli;
use spymaster::ingest::publish::{self, PublishOptions};
use spymaster::ingest::{
    self, Ingest, IngestError, QUEUE_CAPACITY, SOURCE_DATABENTO, SOURCE_MASSIVE, databento, massive,
};
use spymaster::io::PipeFormat;
use spymaster::io::pipe::{StdioKind, stdio_kind};
use spymaster::wiring::{OutputTarget, Publishing, open_sink};

/// Which feed to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Feed {
    /// Databento Live (raw TCP gateway; DATABENTO_API_KEY): one session per dataset.
    Databento,
    /// Massive (Polygon) WebSocket (MASSIVE_API_KEY or POLYGON_API_KEY): SPY and its 0DTE options.
    Massive,
    /// DBN bytes on stdin (plain or zstd): a saved live session or `dbn` CLI output.
    Stdin,
}

/// Live market data onto the bus: the same canonical events `spm-replay` writes.
#[derive(Parser, Debug)]
#[command(name = "spm-ingest", version)]
struct Args {
    /// The feed to read.
    #[arg(long, value_enum, env = "SPM_INGEST_SOURCE")]
    source: Feed,
    /// Where events go [default: stdout when stdout is a pipe or a file, else nats].
    #[arg(long, value_enum)]
    output: Option<OutputTarget>,
    /// Pipe format on stdout.
    #[arg(long, value_enum, default_value_t)]
    format: PipeFormat,
    /// The `source` field of every event [default: direct_feed for databento, massive_ws for
    /// massive, replay for stdin (so that a file piped in equals `spm-replay` of it)].
    #[arg(long, value_name = "NAME")]
    event_source: Option<String>,
    /// Events held between the feeds and the output; when full, a live feed's events are
    /// dropped and reported as a gap (stdin waits instead).
    #[arg(long, default_value_t = QUEUE_CAPACITY, value_name = "EVENTS")]
    queue: usize,
    /// Log throughput and latency (now − ts_recv, ts_recv − ts_event) this often; 0 = never.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    stats_secs: f64,
    #[command(flatten)]
    databento: databento::DatabentoArgs,
    #[command(flatten, next_help_heading = "Massive (--source massive)")]
    massive: massive::MassiveArgs,
    #[command(flatten)]
    bus: BusConfig,
}

fn main() -> ExitCode {
    cli::generate_docs::<Args>();
    let matches = Args::command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    cli::init_logging();
    cli::finish(run(args, &matches))
}

fn run(args: Args, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    if args.stats_secs.is_nan() || args.stats_secs < 0.0 {
        bail!("--stats-secs must be 0 or more, got {}", args.stats_secs);
    }
    let stop_flag = cli::stop_flag();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ingest")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut ingest = Ingest::new(args.queue);
    let event_source = |default: &str| args.event_source.clone().unwrap_or(default.into());
    let mut feeds: Vec<tokio::task::JoinHandle<Result<(), IngestError>>> = Vec::new();
    let mut threads = Vec::new();
    match args.source {
        Feed::Stdin => {
            let tx = ingest.feed(&event_source("replay"), "stdin");
            if stdio_kind(0) == StdioKind::Terminal {
                bail!("--source stdin reads DBN bytes: pipe a file or a stream in");
            }
            threads.push(ingest::stdin::spawn_stdin(tx).context("starting the stdin reader")?);
        }
        Feed::Massive => {
            let key = args.massive.key()?;
            let cfg = args.massive.config()?;
            let source = event_source(SOURCE_MASSIVE);
            let (spot_tx, spot_rx) = massive::spot_channel();
            let stocks = ingest.feed(&source, "stocks");
            let options = ingest.feed(&source, "options");
            let stocks = massive::run_stocks(cfg.clone(), key.clone(), stocks, spot_tx);
            feeds.push(ingest.spawn(rt.handle(), stocks));
            let options = massive::run_options(cfg, key, options, spot_rx);
            feeds.push(ingest.spawn(rt.handle(), options));
        }
        Feed::Databento => {
            let key = args.databento.key()?;
            let source = event_source(SOURCE_DATABENTO);
            for session in databento::sessions(&args.databento, matches)? {
                let tx = ingest.feed(&source, &session.dataset);
                let feed = databento::run(session, key.clone(), tx);
                feeds.push(ingest.spawn(rt.handle(), feed));
            }
        }
    }
    let output = args.output.unwrap_or_else(OutputTarget::auto);
    let mut sink = open_sink(output, args.format, &args.bus, false, Publishing::PerEvent)
        .context("opening the output")?;
    let opts = PublishOptions {
        stats_every: Duration::from_secs_f64(args.stats_secs),
        live: args.source != Feed::Stdin,
        ..PublishOptions::default()
    };
    let (rx, stop, counters) = ingest.into_parts();
    let published = publish::run(
        rt.handle(),
        rx,
        stop.clone(),
        counters,
        sink.as_mut(),
        stop_flag,
        &opts,
    );
    // The publisher is done: whatever a feed still does is of no use.
    stop.stop();
    let mut errors = Vec::new();
    for feed in feeds.drain(..) {
        match rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), feed).await }) {
            Ok(Ok(Err(e))) => errors.push(e.to_string()),
            Ok(Err(e)) => errors.push(format!("a feed failed: {e}")),
            Ok(Ok(Ok(()))) | Err(_) => {}
        }
    }
    for t in threads {
        // A reader blocked on an idle stdin after a stop is left behind (the process exits).
        if t.is_finished()
            && let Ok(Err(e)) = t.join()
        {
            errors.push(e.to_string());
        }
    }
    rt.shutdown_timeout(Duration::from_millis(200));
    let mut summary = published.context("publishing")?;
    eprint!("{}", summary.report());
    match errors.first() {
        Some(first) => {
            for e in &errors[1..] {
                eprintln!("error: {e}");
            }
            bail!("{first}")
        }
        None => Ok(()),
    }
}
