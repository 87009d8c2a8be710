//! A real S3 server for end-to-end tests: `moto_server` (PyPI `moto[server]`, the version
//! `scripts/install-test-deps` pins) on a free loopback port, with buckets made on demand, and
//! two readers we did not write (pyarrow's `S3FileSystem`, polars) pointed at it.
//! `S3Server::start()` fails the test with a clear message when moto is not installed.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The moto version `scripts/install-test-deps` installs.
pub const MOTO_VERSION: &str = "5.2.1";
/// Credentials the tests sign with (moto accepts any).
pub const ACCESS_KEY: &str = "spm-test-access";
pub const SECRET_KEY: &str = "spm-test-secret";
pub const REGION: &str = "us-east-1";

/// A running `moto_server` bound to 127.0.0.1, killed (with its process group) on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `python3 -m moto.server` (the `moto_server` entry point, run by the same `python3` that
/// `scripts/install-test-deps` installs into), or why it cannot run.
fn check_installed() -> Result<(), String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import moto, moto.server, flask, flask_cors; print(moto.__version__)",
        ])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "the S3 tests need moto_server (PyPI moto[server]=={MOTO_VERSION}): run \
         scripts/install-test-deps, or `python3 -m pip install 'moto[server]=={MOTO_VERSION}'`\n{}",
        String::from_utf8_lossy(&out.stderr)
    ))
}

impl S3Server {
    /// Starts moto on a free loopback port and waits until it answers. Panics with a clear
    /// message when moto is not installed or does not start.
    pub fn start() -> S3Server {
        check_installed().unwrap_or_else(|e| panic!("{e}"));
        let mut last_err = String::new();
        // moto cannot bind port 0: pick a free port, release it, and retry if it got taken.
        for _ in 0..5 {
            match Self::start_on(free_port()) {
                Ok(server) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("cannot start moto_server: {last_err}");
    }

    fn start_on(port: u16) -> Result<S3Server, String> {
        use std::os::unix::process::CommandExt;
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn python3 -m moto.server: {e}"))?;
        let mut server = S3Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
                let mut stderr = String::new();
                if let Some(mut e) = server.child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                return Err(format!("moto_server exited ({status}): {stderr}"));
            }
            if let Ok((200, _)) = server.request("GET", "/") {
                // Nothing reads moto's log: let it go nowhere rather than fill a pipe.
                drop(server.child.stderr.take());
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("moto_server did not answer on port {port} in 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP/1.1 request (moto takes unsigned requests): status and body.
    pub fn request(&self, method: &str, path_and_query: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:.200}")))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Creates a bucket (an empty `PUT /bucket`).
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self
            .request("PUT", &format!("/{bucket}"))
            .expect("PUT bucket");
        assert_eq!(status, 200, "creating bucket {bucket}: {body}");
    }

    /// The names of the buckets on the server.
    pub fn buckets(&self) -> Vec<String> {
        let (status, body) = self.request("GET", "/").expect("list buckets");
        assert_eq!(status, 200, "{body}");
        tags(&body, "Name")
    }

    /// Every key under `prefix` in `bucket`, in key order (ListObjectsV2, page by page).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = format!("/{bucket}?list-type=2&prefix={}", encode(prefix));
            if let Some(t) = &token {
                query.push_str(&format!("&continuation-token={}", encode(t)));
            }
            let (status, body) = self.request("GET", &query).expect("list objects");
            assert_eq!(status, 200, "listing {bucket}/{prefix}: {body}");
            keys.extend(tags(&body, "Key"));
            token = tags(&body, "NextContinuationToken").into_iter().next();
            if token.is_none() || !body.contains("<IsTruncated>true</IsTruncated>") {
                return keys;
            }
        }
    }

    /// Sets the `S3_*` variables of `spm-lake` for this server (and clears `S3_BUCKET` and
    /// `SPM_LAKE_ROOT`, so the test's `--root` alone names the lake).
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("S3_ENDPOINT", self.endpoint())
            .env("S3_ACCESS_KEY", ACCESS_KEY)
            .env("S3_SECRET_KEY", SECRET_KEY)
            .env("S3_REGION", REGION)
            .env_remove("S3_BUCKET")
            .env_remove("SPM_LAKE_ROOT");
    }

    /// Runs `tests/py/lake_s3_readers.py` against `bucket/prefix` on this server.
    pub fn readers(&self, args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/lake_s3_readers.py");
        let out = Command::new("python3")
            .arg(&script)
            .args(args)
            .env("S3_ENDPOINT", self.endpoint())
            .env("S3_ACCESS_KEY", ACCESS_KEY)
            .env("S3_SECRET_KEY", SECRET_KEY)
            .env("S3_REGION", REGION)
            .output()
            .expect("python3");
        let report = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("ModuleNotFoundError"),
            "pyarrow and polars are needed: run scripts/install-test-deps\n{stderr}"
        );
        assert!(out.status.success(), "{report}{stderr}");
        report.into_owned()
    }

    /// Reads every table of the lake at `bucket/prefix` with pyarrow's `S3FileSystem` and with
    /// polars, and asserts they see exactly the events of `ndjson` (by event time, to the
    /// nanosecond) and one gold row per level of each snap in `signals`. Returns the report.
    pub fn check_with_readers(
        &self,
        location: &str,
        scratch: &Path,
        ndjson: &[u8],
        signals: &[u8],
    ) -> String {
        let expected = scratch.join("expected-s3.json");
        std::fs::write(
            &expected,
            super::lake::expected_rows(ndjson, signals).to_string(),
        )
        .unwrap();
        self.readers(&["check", location, &expected.to_string_lossy()])
    }

    /// `count distinct min max` of `lake_seq` over every object of a layer at
    /// `bucket/prefix`, read by pyarrow.
    pub fn seq_stats(&self, location: &str, layer: &str) -> String {
        self.readers(&["seq", location, layer]).trim().to_string()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // The whole group: python3 may have been started through a wrapper.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the process group this handle spawned.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The texts of every `<tag>…</tag>` in `xml`, unescaped.
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v))
        .map(|v| {
            v.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
