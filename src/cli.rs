//! What every command shares at its edges: logging, signals, exit codes, progress bars.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (default `info`, with the NATS
/// client's own chatter from `warn` up: the bus logs connection changes itself).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

static STOP: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Calls `on_signal` on a background thread at every SIGINT or SIGTERM.
fn watch_signals(mut on_signal: impl FnMut() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    on_signal();
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch for signals: {e}");
    }
}

/// A flag that becomes true on SIGINT or SIGTERM. Commands poll it, stop reading, flush and
/// exit 0. A second signal exits at once with the conventional code.
pub fn stop_flag() -> &'static AtomicBool {
    INSTALLED.get_or_init(|| {
        let mut seen = 0;
        watch_signals(move || {
            seen += 1;
            if seen > 1 {
                std::process::exit(130);
            }
            tracing::info!("signal received: stopping (again to exit at once)");
            STOP.store(true, Ordering::SeqCst);
        });
    });
    &STOP
}

/// Exits the process with status 0 on SIGINT or SIGTERM, for commands with nothing to flush
/// (their output is flushed as written) that may be blocked reading. No flush happens here:
/// the main thread may hold the stdout lock.
pub fn exit_on_signal() {
    watch_signals(|| std::process::exit(0));
}

/// When `SPM_GEN_DOCS=DIR` is set, writes the command's man page (`DIR/man/NAME.1`) and shell
/// completions (`DIR/completions/NAME.{bash,zsh,fish}`) and exits; otherwise does nothing.
/// `just docs` regenerates the committed copies, and a test keeps them current.
pub fn generate_docs<C: clap::CommandFactory>() {
    let Some(dir) = std::env::var_os("SPM_GEN_DOCS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut cmd = C::command();
    let name = cmd.get_name().to_owned();
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("man"))?;
        std::fs::create_dir_all(dir.join("completions"))?;
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
        std::fs::write(dir.join("man").join(format!("{name}.1")), page)?;
        use clap_complete::Shell;
        for (shell, ext) in [
            (Shell::Bash, "bash"),
            (Shell::Zsh, "zsh"),
            (Shell::Fish, "fish"),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, name.clone(), &mut out);
            std::fs::write(dir.join("completions").join(format!("{name}.{ext}")), out)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing docs for {name}: {e}");
            std::process::exit(1)
        }
    }
}

/// Reports a command's outcome: errors with their context chain, exit 1.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Whether progress bars should be drawn (stderr is a terminal).
pub fn progress_enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// Formats a count with thousands separators: 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Formats event time as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn format_ts(ts_ns: u64) -> String {
    let secs = (ts_ns / 1_000_000_000) as i64;
    let nanos = (ts_ns % 1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ts_ns.to_string())
}

/// Raises the soft limit of open files to the hard limit (a server with thousands of clients
/// needs more than the common default of 1 024). Best effort: the limit stays as it was if it
/// cannot be raised.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit are given a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// `120`, `120s`, `2m`, `1500ms` → seconds.
pub fn parse_duration_s(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v * scale),
        _ => Err(format!(
            "`{s}` is not a duration (for instance 120s, 2m, 1500ms)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_default_to_seconds() {
        assert_eq!(parse_duration_s("120"), Ok(120.0));
        assert_eq!(parse_duration_s("120s"), Ok(120.0));
        assert_eq!(parse_duration_s("2m"), Ok(120.0));
        assert_eq!(parse_duration_s("1500ms"), Ok(1.5));
        assert_eq!(parse_duration_s("1h"), Ok(3600.0));
        assert!(parse_duration_s("soon").is_err());
        assert!(parse_duration_s("-5s").is_err());
        assert!(parse_duration_s("inf").is_err());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn event_time_formats_in_utc() {
        assert_eq!(
            format_ts(1_700_000_000_123_000_000),
            "2023-11-14 22:13:20.123"
        );
    }
}
