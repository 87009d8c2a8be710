//! `spm-lake`: events → a Parquet lake, the lake back into events (`cat`, `ls`), and bronze →
//! silver (`compact`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args as ClapArgs, Parser, Subcommand};
use spymaster::bus::{
    BusConfig, DurableSettings, FEEDS_STREAM, LEVEL_SIGNALS_STREAM, MARKET_DATA_STREAM,
};
use spymaster::cli;
use spymaster::io::pipe::{PipeSink, PipeSource};
use spymaster::io::{EventSink, EventSource, PipeFormat, SinkError};
use spymaster::lake::archive::{self, ArchiveOptions, PipeInput};
use spymaster::lake::compact::{self, CompactOptions, Outcome};
use spymaster::lake::read::{self, LakeSource, Selection};
use spymaster::lake::{Lake, Layer, StoreConfig, Table, WriteOptions};
use spymaster::replay;
use spymaster::wiring::{BusArchiveInput, InputSource};

/// Archives market events and level signals as Parquet (hive-partitioned, ZSTD), and reads
/// them back.
#[derive(Debug, Parser)]
#[command(name = "spm-lake", version, subcommand_negates_reqs = true)]
struct Args {
    /// The lake: a local directory, or s3://BUCKET/PREFIX (AWS S3, MinIO, any S3-compatible
    /// server; see --s3-*) [default: s3://$S3_BUCKET when a bucket is set, else ./lake]. A local
    /// root with a bucket set is refused.
    #[arg(
        long,
        global = true,
        env = "SPM_LAKE_ROOT",
        value_name = "DIR|s3://BUCKET/PREFIX"
    )]
    root: Option<String>,
    /// S3 endpoint, e.g. http://127.0.0.1:9000 for a local MinIO (plain HTTP allowed)
    /// [default: AWS's endpoint for the region].
    #[arg(long, global = true, env = "S3_ENDPOINT", value_name = "URL")]
    s3_endpoint: Option<String>,
    /// S3 bucket: without --root, the lake is at the bucket's root; with an s3:// root, it must
    /// be that root's bucket.
    #[arg(long, global = true, env = "S3_BUCKET", value_name = "BUCKET")]
    s3_bucket: Option<String>,
    /// S3 access key id (needed for an s3:// root).
    #[arg(long, global = true, env = "S3_ACCESS_KEY", value_name = "KEY")]
    s3_access_key: Option<String>,
    /// S3 secret access key (needed for an s3:// root).
    #[arg(
        long,
        global = true,
        env = "S3_SECRET_KEY",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    s3_secret_key: Option<String>,
    /// S3 region (signs the requests; MinIO and moto accept any).
    #[arg(long, global = true, env = "S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    bus: BusConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read tables back as canonical events on stdout, merged by event time.
    Cat(CatArgs),
    /// List tables, partitions, files, rows, bytes and time ranges.
    Ls(LsArgs),
    /// Build silver from bronze for a date: deduplicated on event identity, sorted, one object
    /// per (table, partition, hour). Running it again with nothing new changes nothing.
    Compact(CompactArgs),
}

#[derive(Debug, ClapArgs)]
struct ArchiveArgs {
    /// Where events come from: stdin (NDJSON or the binary framing, detected), or NATS through
    /// durable consumers (MARKET_DATA → bronze, LEVEL_SIGNALS → gold, FEEDS → bronze
    /// `feeds/status`) [default: stdin when it is a pipe or a file, else NATS].
    #[arg(long, value_enum)]
    input: Option<InputSource>,
    /// Durable consumer on MARKET_DATA (bronze).
    #[arg(long, default_value = "spm-lake-bronze")]
    bronze_consumer: String,
    /// Durable consumer on LEVEL_SIGNALS (gold).
    #[arg(long, default_value = "spm-lake-gold")]
    gold_consumer: String,
    /// Durable consumer on FEEDS (the live feeds' status reports, bronze `feeds/status`).
    #[arg(long, default_value = "spm-lake-feeds")]
    feeds_consumer: String,
    /// A new consumer starts at the stream's first message (false: at new messages only). An
    /// existing consumer always resumes where it was acknowledged.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    from_start: bool,
    /// Exit after this many seconds without an event (NATS input) instead of running until a
    /// signal.
    #[arg(long, value_name = "SECS")]
    idle_exit: Option<f64>,
    /// Flush a batch at this many rows.
    #[arg(long, default_value_t = 500_000)]
    flush_rows: usize,
    /// Flush a batch open this many seconds (wall time). With several workers on one consumer,
    /// the messages of one that dies go to the others after twice this plus 10 s.
    #[arg(long, default_value_t = 60.0)]
    flush_secs: f64,
    /// ZSTD level of the Parquet pages.
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 262_144)]
    row_group_rows: usize,
    /// Name of the piped input in object names [default: a hash of its first events].
    #[arg(long)]
    input_id: Option<String>,
    /// Stop at the first malformed input item (exit 1) instead of skipping it.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, ClapArgs)]
struct CatArgs {
    /// Tables to read (repeatable) [default: every bronze table].
    #[arg(long = "table", value_enum)]
    tables: Vec<Table>,
    /// Only this UTC date (YYYY-MM-DD).
    #[arg(long)]
    date: Option<String>,
    /// From this event time (ns since the epoch, or ISO 8601).
    #[arg(long, value_parser = replay::parse_time)]
    start: Option<u64>,
    /// Before this event time.
    #[arg(long, value_parser = replay::parse_time)]
    end: Option<u64>,
    /// Only this symbol (or underlying).
    #[arg(long)]
    symbol: Option<String>,
    /// Layer to read the market tables from.
    #[arg(long, value_enum, default_value = "bronze")]
    layer: LayerArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PipeFormat::Ndjson)]
    format: PipeFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayerArg {
    Bronze,
    Silver,
}

#[derive(Debug, ClapArgs)]
struct CompactArgs {
    /// The UTC date to compact (YYYY-MM-DD).
    #[arg(long)]
    date: String,
    /// Market tables to compact (repeatable) [default: every bronze table].
    #[arg(long = "table", value_enum)]
    tables: Vec<Table>,
    /// ZSTD level of the silver objects.
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 262_144)]
    row_group_rows: usize,
    /// Output format of the report.
    #[arg(long, value_enum, default_value = "table")]
    format: LsFormat,
}

#[derive(Debug, ClapArgs)]
struct LsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: LsFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LsFormat {
    Table,
    Json,
}

fn main() -> ExitCode {
    cli::generate_docs::<Args>();
    let args = Args::parse();
    cli::init_logging();
    cli::finish(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let store = StoreConfig {
        root: args
            .root
            .clone()
            .unwrap_or_else(|| StoreConfig::default_root(args.s3_bucket.as_deref())),
        s3_endpoint: args.s3_endpoint.clone(),
        s3_bucket: args.s3_bucket.clone(),
        s3_access_key: args.s3_access_key.clone(),
        s3_secret_key: args.s3_secret_key.clone(),
        s3_region: Some(args.s3_region.clone()),
    };
    match args.command {
        None => run_archive(&store, &args.archive, &args.bus),
        Some(Command::Cat(cat)) => run_cat(&store, &cat),
        Some(Command::Ls(ls)) => run_ls(&store, &ls),
        Some(Command::Compact(c)) => run_compact(&store, &c),
    }
}

fn run_archive(store: &StoreConfig, a: &ArchiveArgs, bus: &BusConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.flush_secs.is_finite() && a.flush_secs > 0.0,
        "--flush-secs must be a positive number of seconds"
    );
    anyhow::ensure!(a.flush_rows > 0, "--flush-rows must be at least 1");
    let stop = cli::stop_flag();
    let flush_after = Duration::from_secs_f64(a.flush_secs);
    let opts = ArchiveOptions {
        write: WriteOptions {
            flush_rows: a.flush_rows,
            flush_after,
            zstd_level: a.zstd_level,
            row_group_rows: a.row_group_rows,
        },
        input_id: a.input_id.clone(),
        strict: a.strict,
        idle_exit: a.idle_exit.map(Duration::from_secs_f64),
        ..ArchiveOptions::default()
    };
    match a.input.unwrap_or_else(InputSource::auto) {
        InputSource::Stdin => {
            let lake = Lake::open_for_write(store).context("opening the lake")?;
            let mut input = PipeInput::new(PipeSource::stdin(), a.strict);
            let report = archive::archive(&mut input, lake, &opts, stop).context("spm-lake")?;
            eprint!("{}", report.summary());
            Ok(())
        }
        InputSource::Nats => {
            // One durable consumer per stream, each with its own writer, side by side.
            let lake = Lake::open_for_write(store).context("opening the lake")?;
            let consumers = [
                (MARKET_DATA_STREAM, a.bronze_consumer.clone()),
                (LEVEL_SIGNALS_STREAM, a.gold_consumer.clone()),
                (FEEDS_STREAM, a.feeds_consumer.clone()),
            ];
            let workers: Vec<_> = consumers
                .into_iter()
                .map(|(stream, durable)| {
                    let lake = lake.reopen();
                    let (bus, opts) = (bus.clone(), opts.clone());
                    let mut settings = DurableSettings::new(stream, durable);
                    settings.from_start = a.from_start;
                    // A message waits at most one flush age in a batch before it is acknowledged;
                    // a worker's unacknowledged messages go to another one after this wait.
                    settings.ack_wait = flush_after * 2 + Duration::from_secs(10);
                    std::thread::spawn(move || -> anyhow::Result<_> {
                        let lake = lake.context("opening the lake")?;
                        let mut input = BusArchiveInput::open(&bus, settings)
                            .with_context(|| format!("reading {stream}"))?;
                        archive::archive(&mut input, lake, &opts, stop)
                            .with_context(|| format!("archiving {stream}"))
                    })
                })
                .collect();
            let mut first_err = None;
            for w in workers {
                match w.join() {
                    Ok(Ok(report)) => eprint!("{}", report.summary()),
                    Ok(Err(e)) => {
                        // One stream failing stops the others too: nothing they hold is lost.
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                        first_err.get_or_insert(e);
                    }
                    Err(_) => {
                        first_err.get_or_insert(anyhow::anyhow!("a lake worker panicked"));
                    }
                }
            }
            first_err.map_or(Ok(()), Err)
        }
    }
}

fn run_cat(store: &StoreConfig, c: &CatArgs) -> anyhow::Result<()> {
    let lake = Lake::open(store).context("opening the lake")?;
    let layer = match c.layer {
        LayerArg::Bronze => Layer::Bronze,
        LayerArg::Silver => Layer::Silver,
    };
    let tables = if c.tables.is_empty() {
        Table::BRONZE.to_vec()
    } else {
        c.tables.clone()
    };
    let sel = Selection {
        date: c.date.clone(),
        symbol: c.symbol.clone(),
        start_ns: c.start,
        end_ns: c.end,
        ..Selection::all(layer, tables)
    };
    let mut source = LakeSource::new(lake, sel).context("reading the lake")?;
    let mut sink = PipeSink::stdout(c.format);
    let bar = cli::progress_enabled().then(|| progress_bar(source.total_rows()));
    let mut n: u64 = 0;
    while let Some(event) = source.next_event().context("reading the lake")? {
        match sink.send(&event) {
            Ok(()) => {}
            Err(SinkError::Closed) => return Ok(()),
            Err(e) => return Err(e).context("writing stdout"),
        }
        n += 1;
        if let Some(bar) = &bar
            && n.is_multiple_of(4096)
        {
            bar.set_position(n);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match sink.finish() {
        Ok(()) | Err(SinkError::Closed) => Ok(()),
        Err(e) => Err(e).context("writing stdout"),
    }
}

fn run_compact(store: &StoreConfig, c: &CompactArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        chrono::NaiveDate::parse_from_str(&c.date, "%Y-%m-%d").is_ok(),
        "--date must be a date as YYYY-MM-DD, not {:?}",
        c.date
    );
    let lake = Lake::open_for_write(store).context("opening the lake")?;
    let opts = CompactOptions {
        date: c.date.clone(),
        tables: c.tables.clone(),
        write: WriteOptions {
            zstd_level: c.zstd_level,
            row_group_rows: c.row_group_rows,
            ..WriteOptions::default()
        },
    };
    let bar = cli::progress_enabled().then(|| progress_bar(0));
    let report = compact::compact(&lake, &opts, |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    })
    .with_context(|| format!("compacting {}", c.date))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match c.format {
        LsFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        LsFormat::Table => {
            println!(
                "{:<15} {:<20} {:>2} {:>5} {:>12} {:>12} {:>10} {:>14}  outcome",
                "table", "partition", "hh", "files", "bronze rows", "silver rows", "dups", "bytes"
            );
            for p in &report.partitions {
                println!(
                    "{:<15} {:<20} {:>2} {:>5} {:>12} {:>12} {:>10} {:>14}  {}",
                    p.table,
                    format!("{}={}", p.key, p.value),
                    p.hour,
                    p.bronze_files,
                    cli::thousands(p.bronze_rows),
                    cli::thousands(p.silver_rows),
                    cli::thousands(p.duplicates),
                    cli::thousands(p.bytes),
                    match p.outcome {
                        Outcome::Written => "written",
                        Outcome::Unchanged => "unchanged",
                    }
                );
            }
        }
    }
    eprint!("{}", report.summary());
    Ok(())
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} rows {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn run_ls(store: &StoreConfig, l: &LsArgs) -> anyhow::Result<()> {
    let lake = Lake::open(store).context("opening the lake")?;
    let listing = read::list(&lake, &Selection::all(Layer::Bronze, Table::ALL.to_vec()))
        .context("listing the lake")?;
    match l.format {
        LsFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&listing)?);
        }
        LsFormat::Table => {
            println!(
                "{:<7} {:<15} {:<20} {:<10} {:>2} {:>5} {:>12} {:>14}  time range (UTC)",
                "layer", "table", "partition", "date", "hh", "files", "rows", "bytes"
            );
            for p in &listing {
                let range = match (p.min_ts_ns, p.max_ts_ns) {
                    (Some(a), Some(b)) => format!(
                        "{} .. {}",
                        cli::format_ts(a.max(0) as u64),
                        cli::format_ts(b.max(0) as u64)
                    ),
                    _ => "-".into(),
                };
                println!(
                    "{:<7} {:<15} {:<20} {:<10} {:>2} {:>5} {:>12} {:>14}  {}",
                    p.layer,
                    p.table,
                    format!("{}={}", p.key, p.value),
                    p.date,
                    p.hour,
                    p.files,
                    cli::thousands(p.rows),
                    cli::thousands(p.bytes),
                    range
                );
            }
        }
    }
    Ok(())
}
