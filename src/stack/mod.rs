//! The whole system on one machine (`just up`): a JetStream nats-server from the committed
//! `deploy/nats-server.conf`, `spm-core`, `spm-lake`, `spm-gateway` and a source (a replay),
//! each supervised, restarted with backoff when it fails and logging to
//! `{home}/logs/<name>.log`, with `{home}` (`.spm` by default) holding the server's store, the
//! lake and the stack's state.
//!
//! `spm-stack up` checks what it needs (binaries, files, free ports), starts a detached
//! supervisor (`spm-stack supervise`) and returns once every component is healthy;
//! `status` asks each component through its own interface (the gateway's `/health`,
//! nats-server's monitoring) and `down` stops what was started, by process id only.

pub mod cli;
pub mod probe;
mod supervise;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use supervise::supervise;

/// The stream names the status reads (DESIGN.md "NATS").
const MARKET_DATA: &str = "MARKET_DATA";
const LEVEL_SIGNALS: &str = "LEVEL_SIGNALS";
/// The lake's durable consumers (its defaults).
const BRONZE_CONSUMER: &str = "spm-lake-bronze";
const GOLD_CONSUMER: &str = "spm-lake-gold";

/// A failure of the stack's commands.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{0}")]
    Config(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the stack did not come up: {0}")]
    NotUp(String),
    #[error("the stack did not stop: {0}")]
    NotDown(String),
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StackError + 'a {
    move |source| StackError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Everything the supervisor needs to start the stack; written to `{home}/config.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StackConfig {
    /// The stack's folder: state, logs, the server's store, the local lake.
    pub home: PathBuf,
    /// Where the `spm-*` binaries are.
    pub bin_dir: PathBuf,
    pub nats_server: PathBuf,
    pub nats_config: PathBuf,
    pub nats_port: u16,
    pub monitor_port: u16,
    pub gateway_port: u16,
    /// The lake's root; `None`: S3, from the `S3_*` environment.
    pub lake_root: Option<String>,
    /// DBN files the source replays.
    pub sources: Vec<PathBuf>,
    pub speed: f64,
    /// A live feed (`databento`, `massive`) read by `spm-ingest` instead of a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
}

impl StackConfig {
    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.nats_port)
    }

    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    pub fn dashboard_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.gateway_port)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.home.join("logs")
    }

    fn lake_shown(&self) -> String {
        match &self.lake_root {
            Some(root) => root.clone(),
            None => std::env::var("S3_BUCKET")
                .map(|b| format!("s3://{b}"))
                .unwrap_or_else(|_| "s3".into()),
        }
    }

    /// The components in start order.
    pub fn components(&self) -> Vec<Component> {
        let bin = |name: &str| self.bin_dir.join(name);
        let mut lake_args = vec!["--input".to_string(), "nats".to_string()];
        if let Some(root) = &self.lake_root {
            lake_args.extend(["--root".to_string(), root.clone()]);
        }
        let mut replay_args = vec![
            "--output".to_string(),
            "nats".to_string(),
            "--speed".to_string(),
            self.speed.to_string(),
        ];
        replay_args.extend(self.sources.iter().map(|p| p.display().to_string()));
        vec![
            Component {
                name: "nats".into(),
                program: self.nats_server.clone(),
                args: vec!["-c".into(), self.nats_config.display().to_string()],
                restart: Restart::Always,
                after: Gate::None,
            },
            Component {
                name: "core".into(),
                program: bin("spm-core"),
                args: vec!["--input".into(), "nats".into()],
                restart: Restart::Always,
                after: Gate::NatsHealthy,
            },
            Component {
                name: "lake".into(),
                program: bin("spm-lake"),
                args: lake_args,
                restart: Restart::Always,
                after: Gate::NatsHealthy,
            },
            Component {
                name: "gateway".into(),
                program: bin("spm-gateway"),
                args: vec![
                    "--input".into(),
                    "nats".into(),
                    "--port".into(),
                    self.gateway_port.to_string(),
                ],
                restart: Restart::Always,
                after: Gate::NatsHealthy,
            },
            match &self.live {
                None => Component {
                    name: "replay".into(),
                    program: bin("spm-replay"),
                    args: replay_args,
                    restart: Restart::OnFailure,
                    // The engine reads new messages only: it must be listening before the
                    // source speaks, or the first minutes of the session would pass it by.
                    after: Gate::ClientListening("spm-core"),
                },
                Some(feed) => Component {
                    name: "ingest".into(),
                    program: bin("spm-ingest"),
                    args: ["--source", feed, "--output", "nats"]
                        .map(String::from)
                        .to_vec(),
                    // spm-ingest reconnects by itself; it exits 1 only on what a restart
                    // cannot fix (a refused key, a connection limit), and that is not retried.
                    restart: Restart::OnCrash,
                    after: Gate::ClientListening("spm-core"),
                },
            },
        ]
    }

    /// The environment every component gets on top of the caller's.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("NATS_URL".into(), self.nats_url()),
            ("SPM_NATS_PORT".into(), self.nats_port.to_string()),
            (
                "SPM_NATS_MONITOR_PORT".into(),
                self.monitor_port.to_string(),
            ),
            (
                "SPM_NATS_STORE".into(),
                self.home.join("nats").display().to_string(),
            ),
        ]
    }

    /// What must hold before anything starts: binaries, files, free and distinct ports.
    pub fn preflight(&self) -> Result<(), StackError> {
        let mut problems = Vec::new();
        for c in self.components() {
            if !is_executable(&c.program) {
                problems.push(format!(
                    "{}: no executable at {}",
                    c.name,
                    c.program.display()
                ));
            }
        }
        if !self.nats_config.is_file() {
            problems.push(format!(
                "no nats-server config at {}",
                self.nats_config.display()
            ));
        }
        match self.live.as_deref() {
            Some(feed) => {
                if let Err(missing) = live_key(feed) {
                    problems.push(missing);
                }
            }
            None if self.sources.is_empty() => {
                problems.push("no source files to replay".into());
            }
            None => {}
        }
        for f in &self.sources {
            if !f.is_file() {
                problems.push(format!("source file {} does not exist", f.display()));
            }
        }
        if !(self.speed.is_finite() && self.speed >= 0.0) {
            problems.push(format!("replay speed {} is not a number ≥ 0", self.speed));
        }
        let ports = [
            ("NATS", "NATS_PORT", self.nats_port),
            ("NATS monitoring", "NATS_MONITOR_PORT", self.monitor_port),
            ("gateway", "GATEWAY_PORT", self.gateway_port),
        ];
        for (i, (what, var, port)) in ports.iter().enumerate() {
            if ports[..i].iter().any(|p| p.2 == *port) {
                problems.push(format!("the {what} port {port} is used twice; set {var}"));
            } else if TcpListener::bind(("127.0.0.1", *port)).is_err() {
                problems.push(format!(
                    "port {port} ({what}) is taken by another process; set {var} to a free port"
                ));
            }
        }
        if self.lake_root.is_none() && std::env::var_os("S3_BUCKET").is_none() {
            problems.push("S3_ENDPOINT is set but S3_BUCKET is not".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StackError::Config(problems.join("\n  ")))
        }
    }
}

/// The environment variables holding each live feed's key.
const DATABENTO_KEY: &str = "DATABENTO_API_KEY";
const MASSIVE_KEYS: [&str; 2] = ["MASSIVE_API_KEY", "POLYGON_API_KEY"];

fn key_set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

/// Checks that `feed`'s key is in the environment; the error says what to set.
pub fn live_key(feed: &str) -> Result<(), String> {
    match feed {
        "databento" if key_set(DATABENTO_KEY) => Ok(()),
        "databento" => Err(format!(
            "live from Databento needs {DATABENTO_KEY} (CME futures, OPRA options, equities)"
        )),
        "massive" if MASSIVE_KEYS.iter().any(|k| key_set(k)) => Ok(()),
        "massive" => Err(format!(
            "live from Massive needs {} (or {}): SPY and its options over WebSocket",
            MASSIVE_KEYS[0], MASSIVE_KEYS[1]
        )),
        other => Err(format!("unknown live feed `{other}` (databento, massive)")),
    }
}

/// The live feed to use when none is named: Databento when its key is set, else Massive.
pub fn live_feed_from_keys() -> Result<&'static str, String> {
    if key_set(DATABENTO_KEY) {
        Ok("databento")
    } else if MASSIVE_KEYS.iter().any(|k| key_set(k)) {
        Ok("massive")
    } else {
        Err(format!(
            "live data needs a key, and none is set: {DATABENTO_KEY} for Databento Live (ES \
             futures, SPY options and trades), or {} (or {}) for Massive's WebSocket (SPY and \
             its options). Set one in the environment and run `just up live` again.",
            MASSIVE_KEYS[0], MASSIVE_KEYS[1]
        ))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// When a component is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Always,
    /// A source that finished its files is done, not failed.
    OnFailure,
    /// Restarted only when killed by a signal; an exit with a code is final (a live feed that
    /// gave up on something a restart cannot fix).
    OnCrash,
}

/// What must hold before a component first starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    None,
    NatsHealthy,
    /// A client of this name is connected and subscribed.
    ClientListening(&'static str),
}

/// One supervised process.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub restart: Restart,
    pub after: Gate,
}

/// Where a component is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Not started yet: waiting for what it needs.
    Waiting,
    Running,
    /// Exited; restarting after a pause.
    Restarting,
    /// Finished its work (a source at the end of its files).
    Done,
    /// Exited with an error a restart cannot fix (a live feed refused our key): not restarted.
    Failed,
    Stopped,
}

/// A component as the supervisor last saw it; `{home}/stack.json` holds them all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentState {
    pub name: String,
    pub phase: Phase,
    pub pid: Option<u32>,
    /// The program, to tell the process from another that took its pid.
    pub program: PathBuf,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Unix ms of the last change of phase.
    pub since_ms: u64,
}

/// The supervisor's view of the stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackState {
    pub supervisor_pid: u32,
    pub supervisor_program: PathBuf,
    pub started_ms: u64,
    /// False once the supervisor has stopped everything.
    pub running: bool,
    pub config: StackConfig,
    pub components: Vec<ComponentState>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn state_path(home: &Path) -> PathBuf {
    home.join("stack.json")
}

fn config_path(home: &Path) -> PathBuf {
    home.join("config.json")
}

/// Writes `value` as JSON to `path` atomically (a reader never sees half a file).
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StackError> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).map_err(|e| StackError::Io {
        what: "encoding",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&tmp, text).map_err(io_err("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("writing", path))
}

/// The stack's state as last written, if any.
pub fn read_state(home: &Path) -> Option<StackState> {
    let text = std::fs::read(state_path(home)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The program `pid` runs, if it is alive (a rebuilt binary shows as `… (deleted)`).
fn process_program(pid: u32) -> Option<PathBuf> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let shown = link.to_string_lossy();
    Some(PathBuf::from(
        shown
            .strip_suffix(" (deleted)")
            .unwrap_or(&shown)
            .to_string(),
    ))
}

/// Whether `pid` is alive and runs `program` (not another process that took its pid).
fn runs(pid: u32, program: &Path) -> bool {
    let program = program
        .canonicalize()
        .unwrap_or_else(|_| program.to_path_buf());
    process_program(pid).is_some_and(|p| p == program)
}

fn supervisor_alive(state: &StackState) -> bool {
    state.running && runs(state.supervisor_pid, &state.supervisor_program)
}

fn signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with a pid we recorded and checked; no memory is involved.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// `spm-stack up`: starts the stack unless it runs already, and waits until it is healthy.
/// Returns the report to print.
pub fn up(cfg: &StackConfig, wait: Duration) -> Result<String, StackError> {
    if let Some(state) = read_state(&cfg.home).filter(supervisor_alive) {
        let report = status(&state);
        return Ok(format!(
            "the stack is already up (supervisor pid {}, home {}); `just down` stops it\n\n{}",
            state.supervisor_pid,
            cfg.home.display(),
            report.render()
        ));
    }
    cfg.preflight()?;
    std::fs::create_dir_all(cfg.logs_dir()).map_err(io_err("creating", &cfg.logs_dir()))?;
    let _ = std::fs::remove_file(state_path(&cfg.home));
    write_json(&config_path(&cfg.home), cfg)?;

    let me = std::env::current_exe().map_err(io_err("finding", Path::new("spm-stack")))?;
    let log_path = cfg.logs_dir().join("supervisor.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io_err("opening", &log_path))?;
    let log2 = log.try_clone().map_err(io_err("opening", &log_path))?;
    let mut cmd = std::process::Command::new(&me);
    cmd.arg("supervise")
        .arg("--home")
        .arg(&cfg.home)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid(2) is async-signal-safe; the supervisor gets a session of its own, so
        // the terminal's Ctrl-C and hang-up do not reach it or what it starts.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(io_err("starting", &me))?;

    let deadline = Instant::now() + wait;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(StackError::NotUp(format!(
                "the supervisor exited ({exit}):\n{}",
                tail(&log_path, 20)
            )));
        }
        let Some(state) = read_state(&cfg.home) else {
            if Instant::now() > deadline {
                let _ = down(&cfg.home);
                return Err(StackError::NotUp(format!(
                    "no state from the supervisor:\n{}",
                    tail(&log_path, 20)
                )));
            }
            continue;
        };
        let report = status(&state);
        if report.all_healthy() {
            let mut out = format!(
                "the stack is up (supervisor pid {}, home {})\n\n{}",
                state.supervisor_pid,
                cfg.home.display(),
                report.render()
            );
            let tap_env = if cfg.nats_port == 4222 {
                String::new()
            } else {
                format!("NATS_URL={} ", cfg.nats_url())
            };
            let _ = write!(
                out,
                "\nwatch:  {tap_env}{} levels.signals --format table\n\
                 logs:   just logs [nats|core|lake|gateway|{}]   ({})\n\
                 status: just status        stop: just down\n",
                cfg.bin_dir.join("spm-tap").display(),
                if cfg.live.is_some() {
                    "ingest"
                } else {
                    "replay"
                },
                cfg.logs_dir().display()
            );
            // The supervisor lives on by itself.
            drop(child);
            return Ok(out);
        }
        if Instant::now() > deadline {
            let mut why = report.render();
            for c in report.components.iter().filter(|c| !c.healthy) {
                let path = cfg.logs_dir().join(format!("{}.log", c.name));
                let _ = write!(
                    why,
                    "\n--- {} ({}) ---\n{}",
                    c.name,
                    path.display(),
                    tail(&path, 15)
                );
            }
            let _ = down(&cfg.home);
            return Err(StackError::NotUp(format!(
                "not healthy within {} s; stopped it again\n{why}",
                wait.as_secs()
            )));
        }
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `spm-stack down`: stops the supervisor (which stops everything in order, the lake flushing
/// what it holds) and makes sure no process it started is left. Returns the report to print.
pub fn down(home: &Path) -> Result<String, StackError> {
    let Some(state) = read_state(home) else {
        return Ok(format!("no stack in {} (nothing to stop)", home.display()));
    };
    let mut out = String::new();
    if supervisor_alive(&state) {
        signal(state.supervisor_pid, libc::SIGTERM);
        let deadline = Instant::now() + supervise::STOP_GRACE * 2 + Duration::from_secs(5);
        while runs(state.supervisor_pid, &state.supervisor_program) {
            if Instant::now() > deadline {
                signal(state.supervisor_pid, libc::SIGKILL);
                let _ = writeln!(
                    out,
                    "the supervisor (pid {}) did not stop in time: killed",
                    state.supervisor_pid
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    } else if state.running {
        let _ = writeln!(
            out,
            "the supervisor (pid {}) is gone; stopping what it started",
            state.supervisor_pid
        );
    }
    // Whatever the supervisor could not stop (it was killed, say): by recorded pid only, and
    // only while that pid still runs the recorded program.
    let mut left = Vec::new();
    for c in &state.components {
        if let Some(pid) = c.pid
            && runs(pid, &c.program)
        {
            signal(pid, libc::SIGTERM);
            left.push((c, pid));
        }
    }
    let deadline = Instant::now() + supervise::STOP_GRACE;
    while left.iter().any(|(c, pid)| runs(*pid, &c.program)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (c, pid) in &left {
        if runs(*pid, &c.program) {
            signal(*pid, libc::SIGKILL);
            let _ = writeln!(out, "{} (pid {pid}) did not stop in time: killed", c.name);
        }
    }
    let final_state = read_state(home).unwrap_or(state);
    let still: Vec<String> = final_state
        .components
        .iter()
        .filter_map(|c| {
            let pid = c.pid?;
            runs(pid, &c.program).then(|| format!("{} (pid {pid})", c.name))
        })
        .collect();
    if !still.is_empty() {
        return Err(StackError::NotDown(format!(
            "still running: {}",
            still.join(", ")
        )));
    }
    let mut stopped = final_state.clone();
    stopped.running = false;
    for c in &mut stopped.components {
        if !matches!(c.phase, Phase::Done | Phase::Failed) {
            c.phase = Phase::Stopped;
        }
    }
    write_json(&state_path(home), &stopped)?;
    let _ = writeln!(
        out,
        "the stack is down: {} stopped (logs in {})",
        final_state
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        final_state.config.logs_dir().display()
    );
    Ok(out)
}

/// One component's health and key figures.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    pub name: String,
    pub phase: Phase,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub healthy: bool,
    /// Why it is (not) healthy, in a few words.
    pub health: String,
    /// Its key figures, by name.
    pub figures: BTreeMap<String, Value>,
}

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub running: bool,
    pub supervisor_pid: u32,
    pub up_for_s: f64,
    pub home: PathBuf,
    pub nats_url: String,
    pub dashboard: String,
    pub lake: String,
    pub components: Vec<ComponentHealth>,
}

impl StatusReport {
    pub fn all_healthy(&self) -> bool {
        self.running && self.components.iter().all(|c| c.healthy)
    }

    /// A table a person reads.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:>8}  {:<10} {:>8}  {:<34} key figures",
            "name", "pid", "state", "restarts", "health"
        );
        for c in &self.components {
            let figures = c
                .figures
                .iter()
                .map(|(k, v)| match v {
                    Value::Number(n) => match n.as_u64() {
                        Some(u) => format!("{k} {}", crate::cli::thousands(u)),
                        None => format!("{k} {n}"),
                    },
                    Value::String(s) => format!("{k} {s}"),
                    other => format!("{k} {other}"),
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let phase = serde_json::to_value(c.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let health = format!(
                "{} {}",
                if c.healthy { "✓" } else { "✗" },
                truncate(&c.health, 32)
            );
            let _ = writeln!(
                out,
                "{:<8} {:>8}  {:<10} {:>8}  {:<34} {}",
                c.name,
                c.pid.map_or_else(|| "-".to_string(), |p| p.to_string()),
                phase,
                c.restarts,
                health,
                figures
            );
        }
        let _ = writeln!(
            out,
            "\ndashboard: {}\nnats:      {}\nlake:      {}",
            self.dashboard, self.nats_url, self.lake
        );
        out
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Asks every component how it is, through its own interface.
pub fn status(state: &StackState) -> StatusReport {
    let cfg = &state.config;
    let timeout = Duration::from_secs(2);
    let alive = supervisor_alive(state);
    let monitor = cfg.monitor_url();
    let nats_ok = alive
        && probe::get(&format!("{monitor}/healthz?js-enabled-only=true"), timeout)
            .is_ok_and(|a| a.ok());
    let clients = if nats_ok {
        probe::nats_clients(&monitor, timeout).unwrap_or_default()
    } else {
        Vec::new()
    };
    let streams = if nats_ok {
        probe::nats_streams(&monitor, timeout).unwrap_or_default()
    } else {
        Vec::new()
    };
    let stream = |name: &str| streams.iter().find(|s| s.name == name);
    let client = |name: &'static str| clients.iter().filter(move |c| c.name == name);
    let mut components = Vec::new();
    for c in &state.components {
        let running =
            alive && c.phase == Phase::Running && c.pid.is_some_and(|p| runs(p, &c.program));
        let mut figures = BTreeMap::new();
        let (healthy, health) = if !alive {
            (false, "stopped".to_string())
        } else {
            match c.name.as_str() {
                "nats" => {
                    let market = stream(MARKET_DATA).map_or(0, |s| s.messages);
                    let signals = stream(LEVEL_SIGNALS).map_or(0, |s| s.messages);
                    figures.insert("clients".into(), json!(clients.len()));
                    figures.insert("market msgs".into(), json!(market));
                    figures.insert("signal msgs".into(), json!(signals));
                    if nats_ok {
                        (true, "healthz ok".into())
                    } else {
                        (false, "healthz does not answer ok".into())
                    }
                }
                "core" => {
                    let conns: Vec<_> = client("spm-core").collect();
                    figures.insert(
                        "events in".into(),
                        json!(conns.iter().map(|c| c.delivered).sum::<u64>()),
                    );
                    figures.insert(
                        "snaps out".into(),
                        json!(stream(LEVEL_SIGNALS).map_or(0, |s| s.messages)),
                    );
                    if !running {
                        (false, "not running".into())
                    } else if conns.iter().any(|c| c.subscriptions > 0) {
                        (true, "subscribed to market.>".into())
                    } else {
                        (false, "not subscribed yet".into())
                    }
                }
                "lake" => {
                    let floor = |s: &str, consumer: &str| {
                        stream(s).and_then(|s| {
                            s.consumers
                                .iter()
                                .find(|(n, _, _)| n == consumer)
                                .map(|(_, floor, pending)| (*floor, *pending))
                        })
                    };
                    let bronze = floor(MARKET_DATA, BRONZE_CONSUMER);
                    let gold = floor(LEVEL_SIGNALS, GOLD_CONSUMER);
                    if let Some((stored, pending)) = bronze {
                        figures.insert("market stored".into(), json!(stored));
                        figures.insert("market pending".into(), json!(pending));
                    }
                    if let Some((stored, _)) = gold {
                        figures.insert("signals stored".into(), json!(stored));
                    }
                    if !running {
                        (false, "not running".into())
                    } else if client("spm-lake").next().is_none() {
                        (false, "not connected".into())
                    } else if bronze.is_none() || gold.is_none() {
                        (false, "consumers not made yet".into())
                    } else {
                        (true, "archiving (lake: below)".into())
                    }
                }
                "gateway" => {
                    let url = format!("http://127.0.0.1:{}/health", cfg.gateway_port);
                    match probe::get_json(&url, timeout) {
                        Ok((code, h)) => {
                            figures.insert("payloads".into(), h["payloads_received"].clone());
                            figures.insert("clients".into(), h["clients_connected"].clone());
                            let status = h["status"].as_str().unwrap_or("?").to_string();
                            // `degraded`: up, but its NATS link is down.
                            let healthy = running && code == 200 && status != "degraded";
                            (healthy, format!("/health {code} {status}"))
                        }
                        Err(e) => (false, format!("/health: {e}")),
                    }
                }
                "ingest" => {
                    figures.insert(
                        "published".into(),
                        json!(stream(MARKET_DATA).map_or(0, |s| s.messages)),
                    );
                    let feed = cfg.live.as_deref().unwrap_or("?");
                    match c.phase {
                        Phase::Failed => (
                            false,
                            format!(
                                "stopped: {} (not retried; `just logs ingest`)",
                                c.last_exit.as_deref().unwrap_or("exited")
                            ),
                        ),
                        _ if running => (
                            true,
                            format!("live from {feed} (feed health: spm-tap feeds.status)"),
                        ),
                        _ => (false, "not running".into()),
                    }
                }
                _ => {
                    figures.insert(
                        "published".into(),
                        json!(stream(MARKET_DATA).map_or(0, |s| s.messages)),
                    );
                    match c.phase {
                        Phase::Done => (true, "done: every file replayed".into()),
                        Phase::Waiting => (false, "waiting for the engine".into()),
                        _ if running => (true, "replaying".into()),
                        _ => (false, "not running".into()),
                    }
                }
            }
        };
        components.push(ComponentHealth {
            name: c.name.clone(),
            phase: c.phase,
            pid: c.pid.filter(|_| running),
            restarts: c.restarts,
            last_exit: c.last_exit.clone(),
            healthy,
            health,
            figures,
        });
    }
    StatusReport {
        running: alive,
        supervisor_pid: state.supervisor_pid,
        up_for_s: now_ms().saturating_sub(state.started_ms) as f64 / 1000.0,
        home: cfg.home.clone(),
        nats_url: cfg.nats_url(),
        dashboard: cfg.dashboard_url(),
        lake: cfg.lake_shown(),
        components,
    }
}

/// `spm-stack status`: the report, or `None` when no stack was ever started here.
pub fn status_of(home: &Path) -> Option<StatusReport> {
    read_state(home).map(|s| status(&s))
}
