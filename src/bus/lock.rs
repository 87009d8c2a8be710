//! [`WriterLock`]: one bulk writer per stream at a time.
//!
//! A fast-ingest batch is not atomic: the server stores its messages as they come, so a second
//! writer's messages could land between a batch's. Rather than make the server check
//! `Nats-Expected-Last-Sequence` on every message (about a tenth of its throughput), a bulk
//! writer holds a lock for the whole run: a key named after the stream in the key-value bucket
//! [`WRITERS_BUCKET`], created only if absent, holding who writes ([`Holder`]).
//!
//! **A dead holder is detected at once.** While it holds the lock a writer answers requests on
//! [`alive_subject`] of its id. A newcomer that finds the key taken asks the holder; NATS says
//! "no responders" as soon as the holder's connection is gone (a SIGKILL closes its socket), and
//! the newcomer takes the key over with a compare-and-set on its revision. A live holder answers
//! and the newcomer is refused with the holder's description — no lease to wait out, no clock.
//!
//! **A lost lock is noticed.** The holder reads the key every second; if someone else holds it
//! (taken over while this holder's connection was down), [`WriterLock::lost`] says so and the
//! writer stops. The first message of each batch still carries the expected last sequence and
//! each commit's sequence is checked, so even a writer that ignores the lock is caught.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// Key-value bucket holding the writer of each stream.
pub const WRITERS_BUCKET: &str = "SPM_WRITERS";

/// How long a newcomer waits for a holder to answer before taking it as alive.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a holder reads the key to check that it still holds it.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Attempts at creating or taking over the key before giving up (each lost to a race).
const ATTEMPTS: u32 = 5;
/// How long errors that may pass (a new bucket, a cluster electing) are retried.
const TRANSIENT_WAIT: Duration = Duration::from_secs(15);

/// Subject a writer answers on while it holds a lock.
pub fn alive_subject(writer: &str) -> String {
    format!("_SPM.writer.{writer}")
}

/// Who holds a stream's lock, as stored in its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The writer's id (also in each message's position header).
    pub writer: String,
    /// Identity of what it publishes.
    pub input: String,
    pub pid: u32,
    pub host: String,
    /// Wall time it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl Holder {
    /// This process as a writer of `input`.
    pub fn this_process(writer: &str, input: &str) -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "?".into());
        Holder {
            writer: writer.to_string(),
            input: input.to_string(),
            pid: std::process::id(),
            host,
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writer {} (pid {} on {}, input {}, since {})",
            self.writer, self.pid, self.host, self.input, self.since
        )
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another publisher is writing to stream {stream}: {holder}; refusing to interleave. Run again once it is done: the replay resumes where the stream stands"
    )]
    Held { stream: String, holder: Box<Holder> },
    #[error("writer lock of stream {stream}: {message}")]
    Bus { stream: String, message: String },
}

/// A held lock; released by [`WriterLock::release`] (or, if the process dies, taken over by the
/// next writer).
pub struct WriterLock {
    kv: kv::Store,
    key: String,
    revision: u64,
    lost: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterLock")
            .field("key", &self.key)
            .field("revision", &self.revision)
            .finish()
    }
}

async fn bucket(
    js: &jetstream::Context,
    stream: &str,
    replicas: usize,
) -> Result<kv::Store, LockError> {
    let err = |message: String| LockError::Bus {
        stream: stream.to_string(),
        message,
    };
    match js.get_key_value(WRITERS_BUCKET).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: WRITERS_BUCKET.into(),
                description: "spymaster: the bulk writer of each stream".into(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                err(format!(
                    "cannot create key-value bucket {WRITERS_BUCKET}: {e}"
                ))
            }),
    }
}

impl WriterLock {
    /// Takes the lock of `stream` for `holder`, taking it over from a holder that is gone.
    /// `replicas`: copies of the lock bucket, when this call creates it (those of the stream,
    /// so that the lock survives what the stream survives).
    pub async fn acquire(
        client: &async_nats::Client,
        stream: &str,
        holder: Holder,
        replicas: usize,
    ) -> Result<WriterLock, LockError> {
        let js = jetstream::new(client.clone());
        let err = |message: String| LockError::Bus {
            stream: stream.to_string(),
            message,
        };
        // A bucket just made, or a cluster still electing, answers "no responders" or times
        // out for a moment: such errors are retried for a while.
        let transient_until = tokio::time::Instant::now() + TRANSIENT_WAIT;
        let kv = loop {
            let found = match bucket(&js, stream, replicas).await {
                Ok(kv) => Ok(kv),
                // Lost a race to create it: it exists now.
                Err(first) => js.get_key_value(WRITERS_BUCKET).await.map_err(|_| first),
            };
            match found {
                Ok(kv) => break kv,
                Err(e) if tokio::time::Instant::now() < transient_until => {
                    tracing::debug!("{e}; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let key = stream.to_string();
        let value: bytes::Bytes = serde_json::to_vec(&holder)
            .map_err(|e| err(e.to_string()))?
            .into();
        // Answer "alive" before the key names us, so nobody takes us for dead in between.
        let responder = client
            .subscribe(alive_subject(&holder.writer))
            .await
            .map_err(|e| {
                err(format!(
                    "cannot subscribe to {}: {e}",
                    alive_subject(&holder.writer)
                ))
            })?;
        let mut revision = None;
        let mut races = 0;
        while races < ATTEMPTS {
            races += 1;
            match kv.create(&key, value.clone()).await {
                Ok(rev) => {
                    revision = Some(rev);
                    break;
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) if tokio::time::Instant::now() < transient_until => {
                    tracing::debug!("cannot create key {key} yet: {e}; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    races -= 1; // not a race lost
                    continue;
                }
                Err(e) => return Err(err(format!("cannot create key {key}: {e}"))),
            }
            let Some(entry) = kv
                .entry(&key)
                .await
                .map_err(|e| err(format!("cannot read key {key}: {e}")))?
            else {
                continue; // released meanwhile
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let Ok(other) = serde_json::from_slice::<Holder>(&entry.value) else {
                return Err(err(format!(
                    "key {key} of bucket {WRITERS_BUCKET} holds {:?}, not a writer; delete it if no replay runs",
                    String::from_utf8_lossy(&entry.value)
                )));
            };
            match tokio::time::timeout(
                ASK_TIMEOUT,
                client.request(alive_subject(&other.writer), bytes::Bytes::new()),
            )
            .await
            {
                Err(_) | Ok(Ok(_)) => {
                    return Err(LockError::Held {
                        stream: stream.to_string(),
                        holder: Box::new(other),
                    });
                }
                Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                    match kv.update(&key, value.clone(), entry.revision).await {
                        Ok(rev) => {
                            tracing::info!(
                                %stream,
                                "the stream's previous writer is gone ({other}); taking its place"
                            );
                            revision = Some(rev);
                            break;
                        }
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                        Err(e) => return Err(err(format!("cannot take over key {key}: {e}"))),
                    }
                }
                Ok(Err(e)) => {
                    return Err(err(format!("cannot ask {other} whether it runs: {e}")));
                }
            }
        }
        let Some(revision) = revision else {
            return Err(err(format!(
                "key {key} changed {ATTEMPTS} times while taking it; other writers keep racing for it"
            )));
        };
        let lost = Arc::new(Mutex::new(None));
        let task = tokio::spawn(hold(
            client.clone(),
            kv.clone(),
            key.clone(),
            revision,
            value,
            responder,
            Arc::clone(&lost),
        ));
        Ok(WriterLock {
            kv,
            key,
            revision,
            lost,
            task,
        })
    }

    /// Why the lock is no longer this writer's, once someone else holds it.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Gives the lock up (deletes the key if it is still this writer's).
    pub async fn release(self) {
        self.task.abort();
        // The key is deleted from here on; dropping `self` afterwards changes nothing more.
        if let Err(e) = self
            .kv
            .delete_expect_revision(&self.key, Some(self.revision))
            .await
        {
            tracing::debug!(key = %self.key, "releasing the writer lock: {e}");
        }
    }
}

impl Drop for WriterLock {
    /// Without a release (the publisher was aborted) the lock stops answering, so the next
    /// writer finds it gone and takes it over.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// While the lock is held: answers "alive" requests with the holder, and checks every second
/// that the key still names this writer.
async fn hold(
    client: async_nats::Client,
    kv: kv::Store,
    key: String,
    revision: u64,
    value: bytes::Bytes,
    mut responder: async_nats::Subscriber,
    lost: Arc<Mutex<Option<String>>>,
) {
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = responder.next() => {
                let Some(request) = request else { return };
                if let Some(reply) = request.reply {
                    let _ = client.publish(reply, value.clone()).await;
                }
            }
            _ = check.tick() => {
                // A read that fails (server away) says nothing; only another holder counts.
                let Ok(entry) = kv.entry(&key).await else { continue };
                let taken = match &entry {
                    Some(e) if e.revision == revision => None,
                    Some(e) if e.operation == kv::Operation::Put => Some(
                        serde_json::from_slice::<Holder>(&e.value)
                            .map_or_else(|_| "an unknown writer".to_string(), |h| h.to_string()),
                    ),
                    _ => Some("nobody (the key was deleted)".to_string()),
                };
                if let Some(by) = taken {
                    if let Ok(mut l) = lost.lock() {
                        *l = Some(format!(
                            "this publisher lost the writer lock of stream {key}, now held by {by}; stopping rather than interleave"
                        ));
                    }
                    return;
                }
            }
        }
    }
}
