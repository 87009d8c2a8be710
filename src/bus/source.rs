//! [`NatsSource`] and [`NatsRawSource`]: synchronous readers of NATS subjects.
//!
//! Each subject (wildcards allowed) is routed to the JetStream streams whose subjects overlap it;
//! each such stream is read through one ordered consumer (new messages by default, the retained
//! history with `from_start`), so the messages of one stream arrive in stream order. Messages of
//! different streams are interleaved in arrival order. A subject no stream holds (a typo, or a
//! subject outside `market.>` / `levels.>`) falls back to a core NATS subscription, with a
//! warning. Background tasks feed a bounded channel that `next_*` reads.

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::subject::{subject_covers, subject_matches, subjects_overlap};
use super::{Bus, BusError, StreamSpec};
use crate::event::Event;
use crate::io::{EventSource, Position, SourceError};

/// How a source reads.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Read the streams' retained history first, instead of only new messages.
    pub from_start: bool,
    /// Messages buffered between the NATS tasks and the reader.
    pub capacity: usize,
    /// Create the configured streams before subscribing (so a consumer started before the
    /// first publisher still reads through JetStream).
    pub ensure_streams: bool,
    /// End the source (`Ok(None)`) on SIGINT or SIGTERM, so the caller can flush and exit 0.
    pub stop_on_signal: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            from_start: false,
            capacity: 8192,
            ensure_streams: true,
            stop_on_signal: false,
        }
    }
}

/// One message as received: subject, stream sequence (None through core NATS) and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub subject: String,
    pub stream_seq: Option<u64>,
    pub payload: Bytes,
}

impl RawMessage {
    pub fn position(&self) -> Position {
        Position::Message {
            subject: self.subject.clone(),
            stream_seq: self.stream_seq.unwrap_or(0),
        }
    }
}

enum Item {
    Message(RawMessage),
    Error(SourceError),
    Stop,
}

/// Reads raw messages from NATS subjects; see the module documentation.
pub struct NatsRawSource {
    bus: Bus,
    input: String,
    rx: mpsc::Receiver<Item>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stopped: bool,
}

impl std::fmt::Debug for NatsRawSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsRawSource")
            .field("input", &self.input)
            .finish()
    }
}

/// Where one stream is read from: the consumer's filter and, when one filter cannot express
/// the wanted subjects, the subjects to keep on the client side.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamRoute {
    stream: String,
    filter: Option<String>,
    keep: Option<Vec<String>>,
}

/// Routes subjects to streams; returns the routes and the subjects no stream holds.
fn route(subjects: &[String], streams: &[StreamSpec]) -> (Vec<StreamRoute>, Vec<String>) {
    let mut routes = Vec::new();
    let mut orphans: Vec<String> = subjects
        .iter()
        .filter(|s| {
            !streams
                .iter()
                .any(|st| st.subjects.iter().any(|ss| subjects_overlap(s, ss)))
        })
        .cloned()
        .collect();
    orphans.dedup();
    for st in streams {
        let wanted: Vec<&String> = subjects
            .iter()
            .filter(|s| st.subjects.iter().any(|ss| subjects_overlap(s, ss)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let whole = wanted
            .iter()
            .any(|w| st.subjects.iter().all(|ss| subject_covers(w, ss)));
        let route = if whole {
            StreamRoute {
                stream: st.name.clone(),
                filter: None,
                keep: None,
            }
        } else if let [only] = wanted.as_slice()
            && st.subjects.iter().any(|ss| subject_covers(ss, only))
        {
            StreamRoute {
                stream: st.name.clone(),
                filter: Some((*only).clone()),
                keep: None,
            }
        } else {
            StreamRoute {
                stream: st.name.clone(),
                filter: None,
                keep: Some(wanted.into_iter().cloned().collect()),
            }
        };
        routes.push(route);
    }
    (routes, orphans)
}

impl NatsRawSource {
    pub fn new(bus: &Bus, subjects: &[String], opts: SourceOptions) -> Result<Self, BusError> {
        let (tx, rx) = mpsc::channel(opts.capacity.max(1));
        let input = format!("nats {}", bus.url());
        let tasks = bus
            .runtime()
            .block_on(start(bus, subjects, &opts, tx, input.clone()))?;
        Ok(NatsRawSource {
            bus: bus.clone(),
            input,
            rx,
            tasks,
            stopped: false,
        })
    }

    /// The next message; `Ok(None)` once every subscription has ended or a signal stopped it.
    pub fn next_raw(&mut self) -> Result<Option<RawMessage>, SourceError> {
        if self.stopped {
            return Ok(None);
        }
        match self.rx.blocking_recv() {
            Some(Item::Message(m)) => Ok(Some(m)),
            Some(Item::Error(e)) => Err(e),
            Some(Item::Stop) | None => {
                self.stopped = true;
                Ok(None)
            }
        }
    }

    /// Name of this input in error messages.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The bus this source reads from.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }
}

impl Drop for NatsRawSource {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn start(
    bus: &Bus,
    subjects: &[String],
    opts: &SourceOptions,
    tx: mpsc::Sender<Item>,
    input: String,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BusError> {
    for s in subjects {
        if s.is_empty() || s.split('.').any(str::is_empty) || s.contains(char::is_whitespace) {
            return Err(BusError::Subscribe {
                subject: s.clone(),
                message: "not a valid NATS subject".into(),
            });
        }
    }
    let js = jetstream::new(bus.client().clone());
    if opts.ensure_streams {
        super::ensure_streams(&js, bus.stream_settings()).await?;
    }
    let streams = super::list_streams(&js).await?;
    let (routes, orphans) = route(subjects, &streams);
    let mut tasks = Vec::new();
    for r in routes {
        let stream = js
            .get_stream(&r.stream)
            .await
            .map_err(|e| BusError::Stream {
                stream: r.stream.clone(),
                message: e.to_string(),
            })?;
        let config = OrderedConfig {
            filter_subject: r.filter.clone().unwrap_or_default(),
            deliver_policy: if opts.from_start {
                DeliverPolicy::All
            } else {
                DeliverPolicy::New
            },
            ..Default::default()
        };
        let subject_name = r.filter.clone().unwrap_or_else(|| r.stream.clone());
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| BusError::Subscribe {
                subject: subject_name.clone(),
                message: e.to_string(),
            })?;
        let mut messages = consumer.messages().await.map_err(|e| BusError::Subscribe {
            subject: subject_name.clone(),
            message: e.to_string(),
        })?;
        tracing::debug!(stream = %r.stream, filter = ?r.filter, keep = ?r.keep, "ordered consumer");
        let tx = tx.clone();
        let input = input.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(next) = messages.next().await {
                let item = match next {
                    Ok(msg) => {
                        let subject = msg.subject.to_string();
                        if let Some(keep) = &r.keep
                            && !keep.iter().any(|k| subject_matches(k, &subject))
                        {
                            continue;
                        }
                        let stream_seq = msg.info().ok().map(|i| i.stream_sequence);
                        Item::Message(RawMessage {
                            subject,
                            stream_seq,
                            payload: msg.message.payload.clone(),
                        })
                    }
                    Err(err) => {
                        // The ordered consumer recreates itself after gaps and missed
                        // heartbeats; report and keep reading.
                        tracing::warn!(stream = %r.stream, "ordered consumer: {err}");
                        continue;
                    }
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
            let _ = tx
                .send(Item::Error(SourceError::Fatal {
                    input,
                    message: format!("consumer on stream {} ended", r.stream),
                }))
                .await;
        }));
    }
    for subject in orphans {
        tracing::warn!(
            %subject,
            "no JetStream stream holds this subject; subscribing through core NATS (no history, no replay)"
        );
        let mut sub =
            bus.client()
                .subscribe(subject.clone())
                .await
                .map_err(|e| BusError::Subscribe {
                    subject: subject.clone(),
                    message: e.to_string(),
                })?;
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let item = Item::Message(RawMessage {
                    subject: msg.subject.to_string(),
                    stream_seq: None,
                    payload: msg.payload,
                });
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }));
    }
    if opts.stop_on_signal {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            wait_for_signal().await;
            let _ = tx.send(Item::Stop).await;
        }));
    }
    Ok(tasks)
}

/// Resolves on SIGINT or SIGTERM (for async services that stop cleanly on either).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Reads events from NATS subjects; a payload that is not an event is a recoverable error.
#[derive(Debug)]
pub struct NatsSource {
    raw: NatsRawSource,
}

impl NatsSource {
    pub fn new(bus: &Bus, subjects: &[String], opts: SourceOptions) -> Result<Self, BusError> {
        Ok(NatsSource {
            raw: NatsRawSource::new(bus, subjects, opts)?,
        })
    }

    /// The next event with the message it came from.
    pub fn next_with_message(&mut self) -> Result<Option<(Event, RawMessage)>, SourceError> {
        let Some(msg) = self.raw.next_raw()? else {
            return Ok(None);
        };
        match Event::from_json(&msg.payload, Some(&msg.subject)) {
            Ok(ev) => Ok(Some((ev, msg))),
            Err(err) => Err(SourceError::Bad {
                input: self.raw.input.clone(),
                position: msg.position(),
                message: err.to_string(),
            }),
        }
    }
}

impl EventSource for NatsSource {
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        Ok(self.next_with_message()?.map(|(ev, _)| ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Vec<StreamSpec> {
        super::super::default_streams()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_whole_stream_wildcard_reads_the_stream_unfiltered() {
        let (routes, orphans) = route(&s(&["market.>"]), &streams());
        assert_eq!(
            routes,
            [StreamRoute {
                stream: "MARKET_DATA".into(),
                filter: None,
                keep: None
            }]
        );
        assert!(orphans.is_empty());
    }

    #[test]
    fn one_subject_inside_a_stream_becomes_the_consumer_filter() {
        let (routes, _) = route(&s(&["levels.signals"]), &streams());
        assert_eq!(routes[0].stream, "LEVEL_SIGNALS");
        assert_eq!(routes[0].filter.as_deref(), Some("levels.signals"));
    }

    #[test]
    fn several_subjects_of_one_stream_are_filtered_on_the_client() {
        let (routes, _) = route(
            &s(&["market.futures.trades", "market.futures.mbp10"]),
            &streams(),
        );
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].filter, None);
        assert_eq!(
            routes[0].keep.as_deref(),
            Some(&s(&["market.futures.trades", "market.futures.mbp10"])[..])
        );
    }

    #[test]
    fn subjects_spanning_streams_get_one_consumer_per_stream() {
        let (routes, orphans) = route(&s(&[">"]), &streams());
        assert_eq!(routes.len(), 3);
        assert!(
            routes
                .iter()
                .all(|r| r.filter.is_none() && r.keep.is_none())
        );
        assert!(orphans.is_empty());
    }

    #[test]
    fn a_subject_outside_every_stream_falls_back_to_core_nats() {
        let (routes, orphans) = route(&s(&["level.signals", "levels.signals"]), &streams());
        assert_eq!(orphans, ["level.signals"]);
        assert_eq!(routes.len(), 1);
    }
}
