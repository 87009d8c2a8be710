//! Child processes of end-to-end tests: killed when dropped, read as they print, waited for
//! with a bound.

use std::time::{Duration, Instant};

/// Polls `done` until it holds; false after `within`.
pub fn wait_for(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A child process killed when dropped (a failing test leaves nothing running).
pub struct Killed(pub std::process::Child);

/// A child whose stdout is read on a thread as it comes.
pub struct Reading {
    child: Killed,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

impl Killed {
    /// Waits for the child to exit; a failure after `within`.
    pub fn wait_within(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Reads the child's stdout on a thread, so its pipe never fills.
    pub fn read_in_background(mut self) -> Reading {
        use std::io::Read;
        let mut stdout = self.0.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        Reading {
            child: self,
            reader,
        }
    }
}

impl Reading {
    /// Everything the child prints on stdout until it exits, or a failure after `within`.
    pub fn output_within(mut self, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        while self.child.0.try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "no end of output within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.reader.join().expect("reader")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
