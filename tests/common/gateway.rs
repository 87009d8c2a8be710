//! A running `spm-gateway` for end-to-end tests: started on a free port (`--port 0`, read back
//! from its start-up line), its stderr kept, plain HTTP GETs and WebSocket clients against it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Gateway {
    child: Child,
    pub port: u16,
    pub stdin: Option<ChildStdin>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// Starts `spm-gateway ARGS --port 0` with `stdin` as its standard input.
    pub fn start(args: &[&str], stdin: Stdio, envs: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spm-gateway"));
        cmd.args(args)
            .args(["--port", "0"])
            .env_remove("GATEWAY_TOKEN")
            .env_remove("GATEWAY_PORT")
            .env("RUST_LOG", "info")
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn spm-gateway");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        let _ = tx.send(port.parse::<u16>().unwrap_or(0));
                    }
                    log.lock().expect("log").push(line);
                }
            });
        }
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!("spm-gateway did not start: {:?}", log.lock().expect("log"))
            });
        let stdin = child.stdin.take();
        Gateway {
            child,
            port,
            stdin,
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// Writes lines to the gateway's stdin.
    pub fn feed(&mut self, lines: &[&[u8]]) {
        let stdin = self.stdin.as_mut().expect("stdin piped");
        for l in lines {
            stdin.write_all(l).expect("write");
            stdin.write_all(b"\n").expect("write");
        }
        stdin.flush().expect("flush");
    }

    /// A GET with optional extra headers: (status, headers, body).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let a = spymaster::stack::probe::get_with(&url, headers, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        (
            a.code,
            a.head,
            String::from_utf8_lossy(&a.body).into_owned(),
        )
    }

    /// `/health` as JSON, with its status code.
    pub fn health(&self) -> (u16, Value) {
        let (code, _, body) = self.get("/health", &[]);
        (
            code,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("health {body:?}: {e}")),
        )
    }

    /// Polls `/health` until `pred` holds, or panics after `secs` with the last report.
    pub fn wait_health(&self, secs: u64, what: &str, pred: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (code, h) = self.health();
            if pred(code, &h) {
                return h;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not within {secs} s; last /health {code}: {h}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/stream{query}", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bundled sample's signals (replay → core), one payload per line.
pub fn sample_signals() -> Vec<Vec<u8>> {
    let replay = super::lake::replay("ndjson");
    super::lake::core(&replay)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}
