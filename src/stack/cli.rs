//! `spm-stack`'s command line: `up`, `down`, `status`, `probe` and the hidden `supervise`,
//! each a thin call into [`crate::stack`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};

use super::{StackConfig, StackError, io_err, probe};

/// Runs the full stack natively: nats-server (JetStream), spm-core, spm-lake, spm-gateway and a
/// replay, supervised, with state and logs under one folder.
#[derive(Debug, Parser)]
#[command(name = "spm-stack", version)]
pub struct StackArgs {
    /// The stack's folder: state, logs (logs/<name>.log), the server's store, the local lake.
    #[arg(long, global = true, env = "SPM_HOME", default_value = ".spm")]
    home: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the stack (unless it runs already) and return once every component is healthy.
    Up(UpArgs),
    /// Stop everything the stack started, the lake flushing what it holds.
    Down,
    /// Each component's process, health and key figures (exit 1 unless all are healthy).
    Status(StatusArgs),
    /// Exit 0 when a component answers healthy: an HTTP health page, or a client connected to
    /// nats-server (for container health checks).
    Probe(ProbeArgs),
    /// Run the supervisor in the foreground (`up` starts it detached).
    #[command(hide = true)]
    Supervise,
}

#[derive(Debug, ClapArgs)]
struct UpArgs {
    /// DBN files the source replays onto the bus.
    #[arg(required_unless_present = "live", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Live data instead of a replay: `spm-ingest` reads this feed (`auto`: Databento when
    /// DATABENTO_API_KEY is set, else Massive when MASSIVE_API_KEY or POLYGON_API_KEY is).
    #[arg(long, value_name = "FEED", conflicts_with = "files", value_parser = ["auto", "databento", "massive"])]
    live: Option<String>,
    /// Replay speed: 1 = real time, 0 = as fast as possible.
    #[arg(long, env = "REPLAY_SPEED", default_value_t = 1.0)]
    speed: f64,
    /// Where the spm-* binaries are [default: beside spm-stack].
    #[arg(long, env = "SPM_BIN_DIR", value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// The nats-server binary.
    #[arg(long, env = "SPM_NATS_SERVER", default_value = "nats-server")]
    nats_server: PathBuf,
    /// The server's configuration (JetStream; ports and store are set by spm-stack).
    #[arg(long, default_value = "deploy/nats-server.conf", value_name = "FILE")]
    nats_config: PathBuf,
    /// NATS client port.
    #[arg(long, env = "NATS_PORT", default_value_t = 4222)]
    nats_port: u16,
    /// nats-server's monitoring port (health, /connz, /jsz).
    #[arg(long, env = "NATS_MONITOR_PORT", default_value_t = 8222)]
    nats_monitor_port: u16,
    /// The gateway's port (the dashboard).
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 8000)]
    gateway_port: u16,
    /// The lake's root [default: {home}/lake, or S3 (spm-lake's S3_* settings) when
    /// S3_ENDPOINT is set].
    #[arg(long, env = "SPM_LAKE_ROOT", value_name = "DIR|s3://BUCKET/PREFIX")]
    lake_root: Option<String>,
    /// How long to wait for every component to be healthy, in seconds.
    #[arg(long, default_value_t = 120)]
    wait: u64,
}

#[derive(Debug, ClapArgs)]
struct StatusArgs {
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, ClapArgs)]
#[group(required = true, multiple = false, id = "target")]
struct ProbeArgs {
    /// GET this URL: healthy when it answers 2xx.
    #[arg(long, value_name = "URL", group = "target")]
    http: Option<String>,
    /// nats-server's monitoring URL (http://HOST:8222): healthy when a client named --client is
    /// connected.
    #[arg(long, value_name = "URL", group = "target", requires = "client")]
    monitor: Option<String>,
    /// The client's connection name (each spm command names its connection after itself).
    #[arg(long, value_name = "NAME")]
    client: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

/// Runs one `spm-stack` command; the exit code says healthy (0) or not (1) for `status` and
/// `probe`.
pub fn run(args: StackArgs) -> Result<ExitCode, StackError> {
    match args.command {
        Command::Up(up) => {
            let bin_dir = match up.bin_dir {
                Some(dir) => dir,
                None => {
                    let me = std::env::current_exe()
                        .map_err(io_err("finding", std::path::Path::new("spm-stack")))?;
                    me.parent().map(PathBuf::from).unwrap_or_default()
                }
            };
            let lake_root = match up.lake_root {
                Some(root) => Some(root),
                None if std::env::var_os("S3_ENDPOINT").is_some() => None,
                None => Some(args.home.join("lake").display().to_string()),
            };
            let cfg = StackConfig {
                home: absolute(&args.home)?,
                bin_dir: absolute(&bin_dir)?,
                nats_server: which(&up.nats_server),
                nats_config: absolute(&up.nats_config)?,
                nats_port: up.nats_port,
                monitor_port: up.nats_monitor_port,
                gateway_port: up.gateway_port,
                lake_root: lake_root
                    .map(|r| {
                        if r.starts_with("s3://") {
                            Ok(r)
                        } else {
                            absolute(&PathBuf::from(r)).map(|p| p.display().to_string())
                        }
                    })
                    .transpose()?,
                sources: up
                    .files
                    .iter()
                    .map(|f| absolute(f))
                    .collect::<Result<_, _>>()?,
                speed: up.speed,
                live: match up.live.as_deref() {
                    None => None,
                    Some("auto") => Some(
                        super::live_feed_from_keys()
                            .map_err(StackError::Config)?
                            .to_string(),
                    ),
                    Some(feed) => Some(feed.to_string()),
                },
            };
            let report = super::up(&cfg, Duration::from_secs(up.wait))?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Down => {
            print!("{}", super::down(&args.home)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(s) => {
            let Some(report) = super::status_of(&args.home) else {
                println!(
                    "no stack has run in {} (start one with `just up`)",
                    args.home.display()
                );
                return Ok(ExitCode::from(1));
            };
            match s.format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                Format::Table => {
                    if report.running {
                        println!(
                            "the stack is up for {} (supervisor pid {}, home {})\n",
                            humanize(report.up_for_s),
                            report.supervisor_pid,
                            report.home.display()
                        );
                    } else {
                        println!("the stack is down (home {})\n", report.home.display());
                    }
                    print!("{}", report.render());
                }
            }
            Ok(if report.all_healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Probe(p) => {
            let timeout = Duration::from_secs_f64(p.timeout.max(0.01));
            let result = match (&p.http, &p.monitor, &p.client) {
                (Some(url), _, _) => {
                    probe::get(url, timeout).map(|a| (a.ok(), format!("{url}: {}", a.code)))
                }
                (None, Some(monitor), Some(name)) => {
                    probe::nats_clients(monitor, timeout).map(|cs| {
                        let n = cs.iter().filter(|c| &c.name == name).count();
                        (n > 0, format!("{monitor}: {n} client(s) named {name}"))
                    })
                }
                _ => {
                    return Err(StackError::Config(
                        "--http URL, or --monitor URL with --client NAME".into(),
                    ));
                }
            };
            match result {
                Ok((healthy, what)) => {
                    println!("{} {what}", if healthy { "healthy:" } else { "unhealthy:" });
                    Ok(if healthy {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                Err(e) => {
                    println!("unhealthy: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Supervise => {
            super::supervise(&args.home)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn absolute(p: &std::path::Path) -> Result<PathBuf, StackError> {
    std::path::absolute(p).map_err(io_err("resolving", p))
}

/// A bare program name looked up on PATH; a path as it is.
fn which(program: &std::path::Path) -> PathBuf {
    if program.components().count() > 1 {
        return std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|c| c.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}

fn humanize(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
