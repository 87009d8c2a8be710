//! [`LinkWatch`]: whether a NATS connection is up and since when, fed by the client's
//! connection events, for services that report their own health.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The connection's state as last reported by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// Connected to a server now.
    pub connected: bool,
    /// When the connection last went up or down (or the watch was created, before either).
    pub since: SystemTime,
    /// Connections lost since the watch was created.
    pub disconnects: u64,
    /// Connections established, the first one included.
    pub connects: u64,
    /// The last error or notice the client reported (slow consumer, server error, …).
    pub last_notice: Option<String>,
}

/// Shared view of a connection's state; clones see the same state.
#[derive(Debug, Clone)]
pub struct LinkWatch(Arc<Mutex<LinkState>>);

impl Default for LinkWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl LinkWatch {
    /// Not connected yet.
    pub fn new() -> Self {
        LinkWatch(Arc::new(Mutex::new(LinkState {
            connected: false,
            since: SystemTime::now(),
            disconnects: 0,
            connects: 0,
            last_notice: None,
        })))
    }

    /// The current state.
    pub fn state(&self) -> LinkState {
        self.lock().clone()
    }

    /// Applies one client event.
    pub fn record(&self, event: &async_nats::Event) {
        let mut s = self.lock();
        match event {
            async_nats::Event::Connected => {
                if !s.connected {
                    s.connected = true;
                    s.since = SystemTime::now();
                }
                s.connects += 1;
            }
            async_nats::Event::Disconnected | async_nats::Event::Closed => {
                if s.connected {
                    s.connected = false;
                    s.since = SystemTime::now();
                    s.disconnects += 1;
                }
            }
            other => s.last_notice = Some(other.to_string()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        // The state is plain data: a panic while holding the lock cannot leave it torn.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_watch_follows_connects_and_losses() {
        let w = LinkWatch::new();
        assert!(!w.state().connected);
        w.record(&async_nats::Event::Connected);
        let up = w.state();
        assert!(up.connected);
        assert_eq!((up.connects, up.disconnects), (1, 0));
        w.record(&async_nats::Event::Disconnected);
        w.record(&async_nats::Event::Disconnected);
        let down = w.state();
        assert!(!down.connected);
        assert_eq!(down.disconnects, 1, "a repeated loss is one loss");
        assert!(down.since >= up.since);
        w.record(&async_nats::Event::Connected);
        assert!(w.state().connected);
        assert_eq!(w.state().connects, 2);
    }
}
