//! Where the gateway's payloads come from: `level_signals` events on stdin (either pipe format,
//! read by [`PipeSource`] on a thread of its own) or the `levels.signals` subject through a core
//! NATS subscription (only the latest payload matters, so nothing is replayed), primed with
//! the last message the `LEVEL_SIGNALS` stream holds.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use futures::StreamExt;

use super::hub::Hub;
use crate::bus::{self, BusConfig, BusError, LEVEL_SIGNALS_STREAM, LinkWatch};
use crate::event::{Event, LevelSignals};
use crate::io::EventSource;
use crate::io::pipe::PipeSource;

/// The subject the gateway serves.
pub const SIGNALS_SUBJECT: &str = crate::event::subject::LEVEL_SIGNALS;

/// Parses and validates one payload; the text is the bytes as they came.
pub fn parse_payload(
    bytes: Bytes,
    subject: Option<&str>,
) -> Result<(Utf8Bytes, LevelSignals), String> {
    match Event::from_json(&bytes, subject) {
        Ok(Event::LevelSignals(snap)) => {
            // serde_json has checked the bytes are UTF-8.
            let text = Utf8Bytes::try_from(bytes).map_err(|e| e.to_string())?;
            Ok((text, snap))
        }
        Ok(other) => Err(format!(
            "not a level_signals payload but {}",
            other.kind().type_name()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads stdin to its end on the calling thread, handing each snap to the hub. Other event
/// kinds are counted and skipped; a bad line is reported with its line number and skipped.
pub fn read_stdin(hub: &Hub) {
    read_pipe(hub, PipeSource::stdin());
}

/// [`read_stdin`] over any reader (tests).
pub fn read_pipe<R: std::io::Read>(hub: &Hub, mut source: PipeSource<R>) {
    let mut warned_kind = false;
    loop {
        match source.next_event() {
            Ok(Some(Event::LevelSignals(snap))) => {
                let text = match source.last_line() {
                    Some(line) => std::str::from_utf8(line).map(Utf8Bytes::from),
                    // The binary framing: serialised once, here.
                    None => Ok(Utf8Bytes::from(Event::LevelSignals(snap.clone()).to_json())),
                };
                match text {
                    Ok(text) => hub.publish(text, &snap),
                    Err(e) => hub.bad_input(format!("stdin: not UTF-8: {e}")),
                }
            }
            Ok(Some(other)) => {
                hub.counters
                    .ignored_inputs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if !warned_kind {
                    warned_kind = true;
                    tracing::warn!(
                        "stdin carries {} events: only level_signals are served (pipe spm-core --stdout into the gateway); others are skipped",
                        other.kind().type_name()
                    );
                }
            }
            Ok(None) => {
                tracing::info!("stdin ended; serving the last payload until stopped");
                hub.set_input_state("ended", None);
                return;
            }
            Err(e) if e.is_recoverable() => {
                tracing::warn!("{e}; skipped");
                hub.bad_input(e.to_string());
            }
            Err(e) => {
                tracing::error!("{e}; no more input, serving the last payload until stopped");
                hub.set_input_state("failed", Some(e.to_string()));
                return;
            }
        }
    }
}

/// A NATS input: the connection (kept up by the client) and what it reports.
pub struct NatsInput {
    pub client: async_nats::Client,
    pub link: LinkWatch,
    pub url: String,
}

impl NatsInput {
    /// Connects in the background (the gateway comes up without NATS and says so) and starts
    /// the subscription task.
    pub async fn start(cfg: &BusConfig, hub: Arc<Hub>) -> Result<NatsInput, BusError> {
        let (client, link) = bus::connect_in_background(cfg).await?;
        let mut sub = client
            .subscribe(SIGNALS_SUBJECT)
            .await
            .map_err(|e| BusError::Connect {
                url: bus::redact_url(&cfg.nats_url),
                message: format!("cannot subscribe to {SIGNALS_SUBJECT}: {e}"),
            })?;
        // Prime with the stream's last snap, so a gateway started between snaps (or after the
        // engine stopped) has something to show.
        let primer = {
            let client = client.clone();
            let stream = cfg
                .streams
                .streams
                .iter()
                .find(|s| {
                    s.subjects
                        .iter()
                        .any(|p| bus::subject_matches(p, SIGNALS_SUBJECT))
                })
                .map(|s| s.name.clone())
                .unwrap_or_else(|| LEVEL_SIGNALS_STREAM.to_string());
            let hub = hub.clone();
            tokio::spawn(async move {
                let js = async_nats::jetstream::new(client);
                let Ok(mut s) = js.get_stream(&stream).await else {
                    return;
                };
                if s.info().await.is_err() {
                    return;
                }
                if let Ok(m) = s.get_last_raw_message_by_subject(SIGNALS_SUBJECT).await
                    && hub.latest().is_none()
                    && let Ok((text, snap)) = parse_payload(m.payload, Some(SIGNALS_SUBJECT))
                {
                    hub.publish(text, &snap);
                    tracing::info!(stream, "primed with the stream's last snap");
                }
            })
        };
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                match parse_payload(m.payload, Some(m.subject.as_str())) {
                    Ok((text, snap)) => {
                        if !primer.is_finished() {
                            primer.abort();
                        }
                        hub.publish(text, &snap);
                    }
                    Err(e) => {
                        tracing::warn!(subject = %m.subject, "bad payload skipped: {e}");
                        hub.bad_input(format!("{}: {e}", m.subject));
                    }
                }
            }
            hub.set_input_state("ended", Some("the NATS subscription ended".into()));
        });
        Ok(NatsInput {
            client,
            link,
            url: bus::redact_url(&cfg.nats_url),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_pipe_payload_is_served_as_the_exact_bytes_it_came_as() {
        // Spacing and key order of a foreign producer are kept, not re-serialised.
        let line = r#"{"type":"level_signals", "ts":5,"spy":{"spot":687.5,"bid":null,"ask":null},"levels":[]}"#;
        let input = format!(
            "{line}\nnot json\n{{\"type\":\"stock_trade\",\"ts_event_ns\":1,\"ts_recv_ns\":2,\"source\":\"x\",\"symbol\":\"SPY\",\"price\":1.5,\"size\":3}}\n"
        );
        let hub = Hub::new(4, 10, Duration::from_secs(60), "stdin");
        read_pipe(&hub, PipeSource::new(input.as_bytes(), "stdin"));
        let latest = hub.latest().expect("a payload");
        assert_eq!(latest.text.as_str(), line);
        assert_eq!(latest.event_ts_ms, 5);
        let c = &hub.counters;
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!(c.payloads_in.load(Relaxed), 1);
        assert_eq!(c.bad_inputs.load(Relaxed), 1);
        assert_eq!(c.ignored_inputs.load(Relaxed), 1);
        let status = hub.input_status();
        assert_eq!(status.state, "ended");
        assert!(status.last_error.expect("error").contains("line 2"));
    }
}
