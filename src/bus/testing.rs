//! A throw-away `nats-server` with JetStream on a free loopback port, for end-to-end tests and
//! benchmarks. The server and its store are removed when the handle is dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running `nats-server -js` bound to 127.0.0.1.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    bin: PathBuf,
}

/// Finds the `nats-server` binary on `PATH` or in `/usr/sbin`, `/usr/local/bin`.
pub fn find_nats_server() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl NatsServer {
    /// Starts a server, or prints "skipping: nats-server not installed" and returns `None`
    /// when the binary is missing. Panics if an installed server fails to start (a test bug
    /// or a broken machine, which the caller should see).
    pub fn start() -> Option<NatsServer> {
        let Some(bin) = find_nats_server() else {
            println!("skipping: nats-server not installed");
            return None;
        };
        let mut last_err = String::new();
        // A port picked free can be taken before the server binds it: try a few.
        for _ in 0..5 {
            match Self::start_with(&bin) {
                Ok(server) => return Some(server),
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
        };
        server.launch()?;
        Ok(server)
    }

    /// Spawns the server on its port and store, and waits until it accepts connections.
    fn launch(&mut self) -> Result<(), String> {
        let child = Command::new(&self.bin)
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
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
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
