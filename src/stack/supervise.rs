//! The supervisor behind `spm-stack up`: starts each component once what it needs is there,
//! restarts one that fails with capped exponential backoff (reset once it has run a while),
//! records every change in `{home}/stack.json`, and on SIGTERM stops them in reverse order,
//! the source first and the server last, so the lake flushes and acknowledges what it holds
//! while the bus is still up.
//!
//! It runs as one thread that starts every child itself: each child is asked by the kernel to
//! receive SIGTERM if the supervisor dies (`PR_SET_PDEATHSIG`), so a killed supervisor does
//! not leave orphans running.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{
    Component, ComponentState, Gate, Phase, Restart, StackConfig, StackError, StackState,
    config_path, io_err, now_ms, probe, state_path, write_json,
};

/// How long a component has to stop after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(30);
/// The first pause before a restart; it doubles on each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A component that ran this long before failing starts its backoff afresh.
const STEADY: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(200);

struct Supervised {
    spec: Component,
    state: ComponentState,
    child: Option<Child>,
    started: Option<Instant>,
    backoff: Duration,
    restart_at: Option<Instant>,
}

fn log_line(msg: &str) {
    println!(
        "{} {msg}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
}

/// `spm-stack supervise --home H`: runs until SIGTERM or SIGINT.
pub fn supervise(home: &Path) -> Result<(), StackError> {
    let cfg_path = config_path(home);
    let text = std::fs::read(&cfg_path).map_err(io_err("reading", &cfg_path))?;
    let cfg: StackConfig = serde_json::from_slice(&text).map_err(|e| StackError::Io {
        what: "reading",
        path: cfg_path.clone(),
        source: std::io::Error::other(e),
    })?;
    let stop = crate::cli::stop_flag();
    let me = std::env::current_exe().map_err(io_err("finding", Path::new("spm-stack")))?;
    let mut comps: Vec<Supervised> = cfg
        .components()
        .into_iter()
        .map(|spec| Supervised {
            state: ComponentState {
                name: spec.name.clone(),
                phase: Phase::Waiting,
                pid: None,
                program: spec
                    .program
                    .canonicalize()
                    .unwrap_or_else(|_| spec.program.clone()),
                restarts: 0,
                last_exit: None,
                since_ms: now_ms(),
            },
            spec,
            child: None,
            started: None,
            backoff: FIRST_BACKOFF,
            restart_at: None,
        })
        .collect();
    let mut state = StackState {
        supervisor_pid: std::process::id(),
        supervisor_program: me.canonicalize().unwrap_or(me),
        started_ms: now_ms(),
        running: true,
        config: cfg.clone(),
        components: comps.iter().map(|c| c.state.clone()).collect(),
    };
    log_line(&format!(
        "supervisor {} up: home {}, nats {}, dashboard {}",
        state.supervisor_pid,
        cfg.home.display(),
        cfg.nats_url(),
        cfg.dashboard_url()
    ));
    write_json(&state_path(home), &state)?;

    while !stop.load(Ordering::SeqCst) {
        let mut changed = false;
        for i in 0..comps.len() {
            changed |= step(&cfg, &mut comps, i);
        }
        if changed {
            state.components = comps.iter().map(|c| c.state.clone()).collect();
            write_json(&state_path(home), &state)?;
        }
        std::thread::sleep(TICK);
    }

    log_line("stopping: the source first, the server last");
    for i in (0..comps.len()).rev() {
        stop_one(&mut comps[i]);
        state.components = comps.iter().map(|c| c.state.clone()).collect();
        write_json(&state_path(home), &state)?;
    }
    state.running = false;
    write_json(&state_path(home), &state)?;
    log_line("stopped");
    Ok(())
}

/// Moves component `i` along; true when its state changed.
fn step(cfg: &StackConfig, comps: &mut [Supervised], i: usize) -> bool {
    let c = &mut comps[i];
    match c.state.phase {
        Phase::Waiting => {
            if gate_open(cfg, c.spec.after) {
                start(cfg, c);
                true
            } else {
                false
            }
        }
        Phase::Running => {
            let Some(child) = c.child.as_mut() else {
                return false;
            };
            match child.try_wait() {
                Ok(None) => false,
                Ok(Some(exit)) => {
                    exited(c, exit);
                    true
                }
                Err(e) => {
                    log_line(&format!("{}: cannot wait for it: {e}", c.spec.name));
                    false
                }
            }
        }
        Phase::Restarting => {
            if c.restart_at.is_some_and(|t| Instant::now() >= t) {
                c.state.restarts += 1;
                start(cfg, c);
                true
            } else {
                false
            }
        }
        Phase::Done | Phase::Failed | Phase::Stopped => false,
    }
}

fn gate_open(cfg: &StackConfig, gate: Gate) -> bool {
    let timeout = Duration::from_millis(500);
    match gate {
        Gate::None => true,
        Gate::NatsHealthy => probe::get(
            &format!("{}/healthz?js-enabled-only=true", cfg.monitor_url()),
            timeout,
        )
        .is_ok_and(|a| a.ok()),
        Gate::ClientListening(name) => probe::nats_clients(&cfg.monitor_url(), timeout)
            .is_ok_and(|cs| cs.iter().any(|c| c.name == name && c.subscriptions > 0)),
    }
}

fn open_log(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

fn start(cfg: &StackConfig, c: &mut Supervised) {
    let log_path: PathBuf = cfg.logs_dir().join(format!("{}.log", c.spec.name));
    let spawned = (|| -> std::io::Result<Child> {
        let mut log = open_log(&log_path)?;
        writeln!(
            log,
            "=== {} spm-stack starts {}: {} {}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            c.spec.name,
            c.spec.program.display(),
            c.spec.args.join(" ")
        )?;
        let err = log.try_clone()?;
        let mut cmd = Command::new(&c.spec.program);
        cmd.args(&c.spec.args)
            .envs(cfg.env())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl(2) is async-signal-safe. The child gets SIGTERM when the supervisor's
        // thread that started it (its only thread doing so, the main one) ends.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd.spawn()
    })();
    c.state.since_ms = now_ms();
    match spawned {
        Ok(child) => {
            log_line(&format!(
                "{} started (pid {}): {} {}",
                c.spec.name,
                child.id(),
                c.spec.program.display(),
                c.spec.args.join(" ")
            ));
            c.state.pid = Some(child.id());
            c.state.phase = Phase::Running;
            c.child = Some(child);
            c.started = Some(Instant::now());
        }
        Err(e) => {
            log_line(&format!("{}: cannot start: {e}", c.spec.name));
            c.state.last_exit = Some(format!("cannot start: {e}"));
            schedule_restart(c);
        }
    }
}

fn describe(exit: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (exit.code(), exit.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => exit.to_string(),
    }
}

fn exited(c: &mut Supervised, exit: ExitStatus) {
    let ran = c.started.map(|t| t.elapsed()).unwrap_or_default();
    c.child = None;
    c.state.pid = None;
    c.state.since_ms = now_ms();
    c.state.last_exit = Some(describe(exit));
    if exit.success() && c.spec.restart == Restart::OnFailure {
        log_line(&format!(
            "{} finished (exit 0 after {:.1} s): done",
            c.spec.name,
            ran.as_secs_f64()
        ));
        c.state.phase = Phase::Done;
        return;
    }
    if c.spec.restart == Restart::OnCrash && exit.code().is_some() {
        log_line(&format!(
            "{} exited ({}) after {:.1} s: a fatal error, not retried (see its log)",
            c.spec.name,
            describe(exit),
            ran.as_secs_f64()
        ));
        c.state.phase = Phase::Failed;
        return;
    }
    if ran >= STEADY {
        c.backoff = FIRST_BACKOFF;
    }
    log_line(&format!(
        "{} exited ({}) after {:.1} s; restarting in {:.1} s (restart {})",
        c.spec.name,
        describe(exit),
        ran.as_secs_f64(),
        c.backoff.as_secs_f64(),
        c.state.restarts + 1
    ));
    schedule_restart(c);
}

fn schedule_restart(c: &mut Supervised) {
    c.state.phase = Phase::Restarting;
    c.restart_at = Some(Instant::now() + c.backoff);
    c.backoff = (c.backoff * 2).min(MAX_BACKOFF);
}

/// SIGTERM, then SIGKILL after [`STOP_GRACE`].
fn stop_one(c: &mut Supervised) {
    if let Some(mut child) = c.child.take() {
        let pid = child.id();
        super::signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        let exit = loop {
            match child.try_wait() {
                Ok(Some(exit)) => break Some(exit),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    log_line(&format!(
                        "{} (pid {pid}) did not stop within {} s: killing it",
                        c.spec.name,
                        STOP_GRACE.as_secs()
                    ));
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        let how = exit.map_or_else(|| "gone".to_string(), describe);
        log_line(&format!("{} (pid {pid}) stopped ({how})", c.spec.name));
        c.state.last_exit = Some(how);
    }
    c.state.pid = None;
    if !matches!(c.state.phase, Phase::Done | Phase::Failed) {
        c.state.phase = Phase::Stopped;
    }
    c.state.since_ms = now_ms();
}
