//! A real `nats-server` for end-to-end tests: `NatsServer::start()` fails the test with a clear
//! message when the pinned version is not installed (`scripts/install-test-deps` installs it).

pub use spymaster::bus::testing::NatsServer;

use std::time::{Duration, Instant};

use futures::StreamExt;
use spymaster::bus::{Bus, BusConfig, POSITION_HEADER, Position};

/// One stored message's position header, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub position: Option<Position>,
}

/// One stored message: its stream sequence, headers and payload.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub seq: u64,
    pub headers: async_nats::HeaderMap,
    pub payload: Vec<u8>,
}

impl StoredMessage {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default()
    }
}

/// Every message of `stream` in stream order, read through an ordered consumer.
pub fn stored_messages(url: &str, stream: &str) -> Vec<StoredMessage> {
    let bus = Bus::connect(&BusConfig::new(url)).expect("connect");
    let client = bus.client().clone();
    let stream = stream.to_string();
    bus.runtime().block_on(async move {
        use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
        let js = jetstream::new(client);
        let s = js.get_stream(&stream).await.expect("stream");
        let total = s.cached_info().state.messages;
        let mut out = Vec::with_capacity(total as usize);
        if total == 0 {
            return out;
        }
        let consumer = s
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let deadline = Instant::now() + Duration::from_secs(300);
        while (out.len() as u64) < total {
            assert!(
                Instant::now() < deadline,
                "read only {} of {total}",
                out.len()
            );
            let Ok(Some(next)) =
                tokio::time::timeout(Duration::from_secs(30), messages.next()).await
            else {
                panic!("stream ended after {} of {total} messages", out.len());
            };
            let msg = next.expect("message");
            out.push(StoredMessage {
                seq: msg.info().expect("info").stream_sequence,
                headers: msg.message.headers.clone().unwrap_or_default(),
                payload: msg.message.payload.to_vec(),
            });
        }
        out
    })
}

/// Every message of `stream` with its position headers, in stream order.
pub fn stored_positions(url: &str, stream: &str) -> Vec<Stored> {
    stored_messages(url, stream)
        .into_iter()
        .map(|m| Stored {
            seq: m.seq,
            position: m
                .headers
                .get(POSITION_HEADER)
                .and_then(|v| Position::parse(v.as_str())),
        })
        .collect()
}

/// Asserts that `stored` holds positions 0..n of one input, each exactly once and in order.
pub fn assert_exactly_once_in_order(stored: &[Stored], n: u64) {
    assert_eq!(
        stored.len() as u64,
        n,
        "the stream holds {} messages, expected {n}",
        stored.len()
    );
    let input = stored[0]
        .position
        .as_ref()
        .expect("position header")
        .input
        .clone();
    for (i, m) in stored.iter().enumerate() {
        let p = m
            .position
            .as_ref()
            .unwrap_or_else(|| panic!("message {} has no position header", m.seq));
        assert_eq!(p.input, input, "message {} is from another input", m.seq);
        assert_eq!(
            p.index, i as u64,
            "message {} holds event {}, expected {i} (a hole or a duplicate)",
            m.seq, p.index
        );
    }
}
