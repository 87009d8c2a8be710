//! Helpers shared by the benchmark programs: timing child processes and their peak memory.
#![allow(dead_code)]

pub mod bare;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What one measured command did.
pub struct Measured {
    pub wall: Duration,
    /// Peak resident set size (VmHWM) in bytes, sampled from /proc while the process ran.
    pub peak_rss: u64,
    pub status: std::process::ExitStatus,
}

/// Runs `cmd` as configured by the caller, sampling its peak memory.
pub fn measure(cmd: &mut Command) -> Measured {
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Measured {
        wall: start.elapsed(),
        peak_rss: peak,
        status,
    }
}

/// Where benchmarks keep generated inputs between runs.
pub fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-data");
    std::fs::create_dir_all(&dir).expect("create bench data dir");
    dir
}

/// Reads `files` once so every measured run finds them in the page cache (the first run
/// would otherwise also measure the disk).
pub fn warm_page_cache(files: &[PathBuf]) {
    for f in files {
        let mut file = std::fs::File::open(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        std::io::copy(&mut file, &mut std::io::sink())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

pub fn rate(n: u64, wall: Duration) -> f64 {
    n as f64 / wall.as_secs_f64()
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The files of a synthetic regular session of `hours` from `spm-synth` (seed 7, from 09:30),
/// generated once into the benchmark data folder.
pub fn session(hours: f64) -> Vec<PathBuf> {
    let dir = data_dir().join(format!("session-{hours}h"));
    let done = dir.join(".complete");
    if !done.exists() {
        println!(
            "generating a {hours} h synthetic session into {}",
            dir.display()
        );
        let status = Command::new(env!("CARGO_BIN_EXE_spm-synth"))
            .args(["--seed", "7", "--start", "09:30", "--duration"])
            .arg(format!("{}", (hours * 3600.0).round() as u64))
            .arg("--out-dir")
            .arg(&dir)
            .status()
            .expect("spm-synth");
        assert!(status.success(), "spm-synth failed");
        std::fs::write(&done, b"").expect("marker");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("session dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains(".dbn"))
        .collect();
    files.sort();
    files
}

/// The session as `spm-replay` prints it (`format`: `ndjson` or `bin`), made once into the
/// benchmark data folder.
pub fn session_pipe(files: &[PathBuf], hours: f64, format: &str) -> PathBuf {
    let path = data_dir().join(format!("session-{hours}h.{format}"));
    if !path.exists() {
        println!("writing the session as {format} to {}", path.display());
        let tmp = path.with_extension("tmp");
        let ok = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
            .args(["--speed", "0", "--output", "stdout", "--format", format])
            .args(files)
            .stdout(std::fs::File::create(&tmp).expect("create the session file"))
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "spm-replay to {format} failed");
        std::fs::rename(&tmp, &path).expect("rename the session file");
    }
    path
}
