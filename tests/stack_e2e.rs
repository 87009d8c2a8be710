//! The full stack as a user runs it: `just up` (from this checkout, as CI's clean clone is),
//! then only the system's own interfaces: the gateway's `/health` and `/ws/stream`,
//! `spm-tap`, `spm-stack status`, `spm-lake ls` and DuckDB/pyarrow on what the lake stored;
//! `spm-core` and `spm-lake` killed with SIGKILL and restarted by the supervisor with every
//! event still stored once; `just down` leaving no process and no port behind. Once on a local
//! lake and once on a real S3-compatible server.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::dbn_gateway::{DbnGateway, GatewayConfig, bundled_sample};
use common::s3::S3Server;
use futures::StreamExt;
use serde_json::Value;
use spymaster::stack::probe;

/// One stack at a time: each replays, archives and serves on the test machine's two cores.
static ONE_STACK: Mutex<()> = Mutex::new(());

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_spm-stack"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `just` on PATH (installed by scripts/install-test-deps); outside CI a missing one skips.
fn have_just() -> bool {
    let found = Command::new("just")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`just` is not installed: scripts/install-test-deps installs it"
        );
        eprintln!("skipped: `just` is not installed (scripts/install-test-deps installs it)");
    }
    found
}

struct Stack {
    _dir: tempfile::TempDir,
    home: PathBuf,
    env: Vec<(String, String)>,
    gateway_port: u16,
    nats_port: u16,
    monitor_port: u16,
}

impl Stack {
    fn new(extra_env: &[(&str, String)]) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let (nats_port, monitor_port, gateway_port) = (free_port(), free_port(), free_port());
        let mut env: Vec<(String, String)> = vec![
            ("SPM_HOME".into(), home.display().to_string()),
            ("SPM_BIN_DIR".into(), bin_dir().display().to_string()),
            ("NATS_PORT".into(), nats_port.to_string()),
            ("NATS_MONITOR_PORT".into(), monitor_port.to_string()),
            ("GATEWAY_PORT".into(), gateway_port.to_string()),
            // 15 minutes of the sample in about 45 s.
            ("REPLAY_SPEED".into(), "20".into()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        Stack {
            _dir: dir,
            home,
            env,
            gateway_port,
            nats_port,
            monitor_port,
        }
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(repo());
        for var in [
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_ACCESS_KEY",
            "S3_SECRET_KEY",
            "SPM_LAKE_ROOT",
            "SOURCE",
            "NATS_URL",
            "DATABENTO_API_KEY",
            "DATABENTO_GATEWAY",
            "MASSIVE_API_KEY",
            "POLYGON_API_KEY",
            "MASSIVE_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn just(&self, args: &[&str]) -> Output {
        let out = self.command("just").args(args).output().expect("run just");
        eprintln!(
            "$ just {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn status(&self) -> Value {
        let out = self
            .command(bin_dir().join("spm-stack"))
            .args(["status", "--format", "json"])
            .output()
            .expect("spm-stack status");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status is not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    fn wait_status(&self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not within {secs} s; status:\n{s:#}\nsupervisor log:\n{}",
                    std::fs::read_to_string(self.home.join("logs/supervisor.log"))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn health(&self) -> (u16, Value) {
        probe::get_json(
            &format!("http://127.0.0.1:{}/health", self.gateway_port),
            Duration::from_secs(5),
        )
        .expect("gateway /health")
    }

    /// `n` live payloads from `/ws/stream`, each a `level_signals` object.
    fn ws_payloads(&self, n: usize) -> Vec<Value> {
        let url = format!("ws://127.0.0.1:{}/ws/stream", self.gateway_port);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url)
                .await
                .unwrap_or_else(|e| panic!("connect {url}: {e}"));
            let mut got = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while got.len() < n {
                match tokio::time::timeout_at(deadline, ws.next()).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                        got.push(serde_json::from_str::<Value>(&t).expect("payload is JSON"));
                    }
                    Ok(Some(Ok(_))) => {}
                    other => panic!("{} of {n} payloads, then {other:?}", got.len()),
                }
            }
            got
        })
    }

    fn tap(&self, n: usize) -> Vec<Value> {
        let out = self
            .command(bin_dir().join("spm-tap"))
            .args(["levels.signals", "--count", &n.to_string()])
            .env("NATS_URL", format!("nats://127.0.0.1:{}", self.nats_port))
            .output()
            .expect("spm-tap");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    fn lake_ls(&self, extra_env: &[(&str, String)]) -> Vec<Value> {
        let mut cmd = self.command(bin_dir().join("spm-lake"));
        cmd.args(["ls", "--format", "json"]);
        if !extra_env.iter().any(|(k, _)| *k == "S3_ENDPOINT") {
            cmd.arg("--root").arg(self.home.join("lake"));
        }
        let out = cmd.output().expect("spm-lake ls");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("ls JSON")
    }

    fn component<'a>(status: &'a Value, name: &str) -> &'a Value {
        status["components"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    }

    fn figure(status: &Value, name: &str, figure: &str) -> u64 {
        Self::component(status, name)["figures"][figure]
            .as_u64()
            .unwrap_or(0)
    }

    /// The supervisor's and every running component's pid.
    fn pids(status: &Value) -> Vec<u32> {
        status["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["pid"].as_u64())
            .chain(status["supervisor_pid"].as_u64())
            .map(|p| p as u32)
            .collect()
    }

    /// Up, healthy, a payload over WebSocket and five snaps through spm-tap.
    fn up_and_check(&self) -> Value {
        let out = self.just(&["up"]);
        assert!(out.status.success(), "just up failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("the stack is up"), "{text}");
        assert!(
            text.contains(&format!("http://127.0.0.1:{}/", self.gateway_port)),
            "the dashboard URL is printed: {text}"
        );
        assert!(text.contains("spm-tap levels.signals"), "{text}");

        let again = self.just(&["up"]);
        assert!(again.status.success());
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("already up"),
            "a second `just up` says the stack is up"
        );

        let status = self.wait_status(60, "every component healthy", |s| {
            s["components"]
                .as_array()
                .is_some_and(|cs| cs.iter().all(|c| c["healthy"] == true))
        });
        let payloads = self.ws_payloads(3);
        assert!(payloads.iter().all(|p| p["type"] == "level_signals"));
        assert!(
            payloads
                .windows(2)
                .all(|w| w[0]["ts"].as_i64() < w[1]["ts"].as_i64()),
            "live payloads, newer each time"
        );
        let (code, h) = self.health();
        assert_eq!(code, 200, "{h}");
        assert_eq!(h["input"]["mode"], "nats");
        let snaps = self.tap(5);
        assert_eq!(snaps.len(), 5);
        assert!(
            snaps
                .iter()
                .all(|s| s["type"] == "level_signals" && s["levels"].is_array())
        );
        status
    }

    /// `just down`, then no process of the stack and no port left.
    fn down_and_check(&self, pids: &[u32]) {
        let out = self.just(&["down"]);
        assert!(out.status.success(), "just down failed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("the stack is down"));
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|s| s.contains(") Z ")),
                "pid {pid} still runs after `just down`"
            );
        }
        for port in [self.nats_port, self.monitor_port, self.gateway_port] {
            assert!(port_free(port), "port {port} still bound after `just down`");
        }
        let status = self.status();
        assert_eq!(status["running"], false);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self
            .command(bin_dir().join("spm-stack"))
            .arg("down")
            .output();
    }
}

fn duckdb_seq_stats(glob: &str) -> (u64, u64) {
    let script = format!(
        "import duckdb\nr = duckdb.sql(\"select count(*), count(distinct lake_seq) from read_parquet('{glob}', union_by_name=true)\").fetchall()[0]\nprint(r[0], r[1])"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("count"));
    (it.next().expect("count"), it.next().expect("distinct"))
}

fn rows(listing: &[Value], layer: &str, table: &str) -> u64 {
    listing
        .iter()
        .filter(|p| p["layer"] == layer && p["table"] == table)
        .filter_map(|p| p["rows"].as_u64())
        .sum()
}

#[test]
fn just_up_runs_the_stack_survives_killed_components_and_just_down_leaves_nothing() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    if !have_just() {
        return;
    }
    let stack = Stack::new(&[]);
    let status = stack.up_and_check();

    // Kill the engine and the lake: the supervisor restarts them and the dashboard goes on.
    let pid_of = |s: &Value, name: &str| {
        Stack::component(s, name)["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} has a pid: {s}")) as i32
    };
    let (core, lake) = (pid_of(&status, "core"), pid_of(&status, "lake"));
    for pid in [core, lake] {
        // SAFETY: kill(2) on a pid the stack reports as its own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    }
    let status = stack.wait_status(60, "core and lake restarted and healthy", |s| {
        ["core", "lake"].iter().all(|n| {
            let c = Stack::component(s, n);
            c["restarts"].as_u64() >= Some(1) && c["healthy"] == true
        }) && s["components"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["healthy"] == true))
    });
    assert_ne!(pid_of(&status, "core"), core);
    assert_ne!(pid_of(&status, "lake"), lake);
    let before = stack.health().1["payloads_received"].as_u64().unwrap_or(0);
    let payloads = stack.ws_payloads(2);
    assert!(payloads.iter().all(|p| p["type"] == "level_signals"));
    let after = stack.health().1["payloads_received"].as_u64().unwrap_or(0);
    assert!(
        after > before,
        "new payloads after the restart: {before} → {after}"
    );

    // The whole sample played and stored.
    let status = stack.wait_status(240, "the sample replayed and all of it stored", |s| {
        let published = Stack::figure(s, "replay", "published");
        Stack::component(s, "replay")["phase"] == "done"
            && published > 0
            && Stack::figure(s, "lake", "market stored") == published
            && Stack::figure(s, "lake", "signals stored") == Stack::figure(s, "core", "snaps out")
    });
    let published = Stack::figure(&status, "replay", "published");
    let snaps = Stack::figure(&status, "core", "snaps out");
    let out = stack.just(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["nats", "core", "lake", "gateway", "replay"] {
        assert!(text.contains(name), "just status shows {name}: {text}");
    }
    let pids = Stack::pids(&status);
    stack.down_and_check(&pids);

    let listing = stack.lake_ls(&[]);
    let bronze: u64 = [
        "futures/trades",
        "futures/mbp10",
        "options/trades",
        "stocks/trades",
    ]
    .iter()
    .map(|t| rows(&listing, "bronze", t))
    .sum();
    assert_eq!(
        bronze, published,
        "bronze rows = events published: {listing:?}"
    );
    assert!(rows(&listing, "gold", "levels/signals") >= snaps);
    let lake = stack.home.join("lake");
    let (count, distinct) = duckdb_seq_stats(&format!("{}/bronze/**/*.parquet", lake.display()));
    assert_eq!(
        (count, distinct),
        (published, published),
        "DuckDB: every published event stored exactly once"
    );
    let (_, distinct_snaps) = duckdb_seq_stats(&format!("{}/gold/**/*.parquet", lake.display()));
    assert_eq!(distinct_snaps, snaps, "every snap in gold");
}

#[test]
fn just_up_with_an_s3_lake_archives_to_the_s3_server() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    if !have_just() {
        return;
    }
    let server = S3Server::start();
    server.create_bucket("spm-stack");
    let s3_env = vec![
        ("S3_ENDPOINT", server.endpoint()),
        ("S3_BUCKET", "spm-stack".to_string()),
        ("S3_ACCESS_KEY", common::s3::ACCESS_KEY.to_string()),
        ("S3_SECRET_KEY", common::s3::SECRET_KEY.to_string()),
        ("S3_REGION", common::s3::REGION.to_string()),
    ];
    let stack = Stack::new(&s3_env);
    let status = stack.up_and_check();
    assert_eq!(
        status["lake"], "s3://spm-stack",
        "the lake is on S3: {status}"
    );
    // Events and snaps flowing; `just down` then has the lake flush them to S3.
    let status = stack.wait_status(120, "events and snaps on the bus", |s| {
        Stack::figure(s, "replay", "published") > 20_000
            && Stack::figure(s, "core", "snaps out") > 50
    });
    stack.down_and_check(&Stack::pids(&status));

    let listing = stack.lake_ls(&s3_env);
    let bronze: u64 = listing
        .iter()
        .filter(|p| p["layer"] == "bronze")
        .filter_map(|p| p["rows"].as_u64())
        .sum();
    assert!(bronze > 0, "bronze on S3: {listing:?}");
    assert!(rows(&listing, "gold", "levels/signals") > 0, "gold on S3");
    let stats = server.seq_stats("spm-stack", "bronze");
    let mut it = stats.split_whitespace();
    let (count, distinct) = (it.next(), it.next());
    assert_eq!(count, distinct, "pyarrow on S3: each event once ({stats})");
    assert_eq!(
        count.and_then(|c| c.parse::<u64>().ok()),
        Some(bronze),
        "pyarrow reads what spm-lake ls lists ({stats})"
    );
}

#[test]
fn just_up_live_without_a_key_says_which_keys_it_needs_and_starts_nothing() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    if !have_just() {
        return;
    }
    let stack = Stack::new(&[]);
    let out = stack.just(&["up", "live"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    for key in ["DATABENTO_API_KEY", "MASSIVE_API_KEY", "POLYGON_API_KEY"] {
        assert!(text.contains(key), "names {key}: {text}");
    }
    assert!(
        !stack.home.join("stack.json").exists(),
        "nothing was started: {text}"
    );
    for port in [stack.nats_port, stack.monitor_port, stack.gateway_port] {
        assert!(port_free(port), "port {port} bound");
    }
    // Naming a feed whose key is missing says exactly that key.
    let out = stack.just(&["up", "live", "massive"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("MASSIVE_API_KEY"), "{text}");
    assert!(!text.contains("DATABENTO_API_KEY"), "{text}");
}

#[test]
fn just_up_live_runs_spm_ingest_on_databento_live_and_signals_flow() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    if !have_just() {
        return;
    }
    // The fake Databento gateway (the real protocol on loopback) serving the bundled sample.
    const KEY: &str = "db-StackLiveTestKey0123456789abc";
    // On one clock at 60× (the 15-minute sample in 15 s), as live feeds are: as fast as
    // possible, each dataset's session ran on its own, and whichever ran ahead moved the
    // engine's event time past the others' events (876 snaps instead of ~3 600 in one fresh-clone rehearsal of .ci/run).
    let mut config = GatewayConfig::new(KEY, bundled_sample().expect("sample"));
    config.speed = Some(60.0);
    let gateway = DbnGateway::start_in_background(config).expect("fake gateway");
    let stack = Stack::new(&[
        ("DATABENTO_API_KEY", KEY.to_string()),
        ("DATABENTO_GATEWAY", gateway.addr().to_string()),
    ]);
    let out = stack.just(&["up", "live"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "just up live failed: {text}");
    assert!(text.contains("the stack is up"), "{text}");
    assert!(
        text.contains("just logs [nats|core|lake|gateway|ingest]"),
        "{text}"
    );
    assert!(
        !text.contains(KEY) && !String::from_utf8_lossy(&out.stderr).contains(KEY),
        "the key is never printed"
    );

    // The whole sample arrives live: every event published, the engine snapping on it.
    let published = 393_088;
    let status = stack.wait_status(90, "the sample published live and snapped", |s| {
        Stack::figure(s, "ingest", "published") == published
            && Stack::figure(s, "core", "snaps out") > 1000
            && s["components"]
                .as_array()
                .is_some_and(|cs| cs.iter().all(|c| c["healthy"] == true))
    });
    let names: Vec<&str> = status["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["nats", "core", "lake", "gateway", "ingest"]);
    assert!(
        Stack::component(&status, "ingest")["health"]
            .as_str()
            .is_some_and(|h| h.contains("live from databento")),
        "{status}"
    );
    let mut datasets: Vec<String> = gateway
        .sessions()
        .into_iter()
        .filter(|s| s.authenticated)
        .filter_map(|s| s.dataset)
        .collect();
    datasets.sort();
    assert_eq!(datasets, ["GLBX.MDP3", "OPRA.PILLAR", "XNAS.ITCH"]);
    // The sample is over by now: read what the bus retained.
    let tap_from_start = |subject: &str, n: usize| {
        let out = stack
            .command(bin_dir().join("spm-tap"))
            .args([subject, "--from-start", "--count", &n.to_string()])
            .env("NATS_URL", format!("nats://127.0.0.1:{}", stack.nats_port))
            .output()
            .expect("spm-tap");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let snaps = tap_from_start("levels.signals", 3);
    assert_eq!(
        snaps
            .lines()
            .filter(|l| l.starts_with("{\"type\":\"level_signals\""))
            .count(),
        3,
        "{snaps}"
    );
    // Each session reported itself connected on feeds.status.
    let feeds = tap_from_start("feeds.status", 3);
    for dataset in ["GLBX.MDP3", "OPRA.PILLAR", "XNAS.ITCH"] {
        assert!(
            feeds
                .lines()
                .any(|l| l.contains(dataset) && l.contains("\"connected\"")),
            "{dataset} connected: {feeds}"
        );
    }
    stack.down_and_check(&Stack::pids(&status));
}
