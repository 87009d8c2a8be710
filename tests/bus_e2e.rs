//! End-to-end tests of the NATS bus against a real `nats-server` (skipped when not installed).

mod common;

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::nats::NatsServer;
use spymaster::bus::testing::synthetic_mbp10;
use spymaster::bus::{
    Bus, BusConfig, LEVEL_SIGNALS_STREAM, MARKET_DATA_STREAM, SinkSettings, SourceOptions,
};
use spymaster::event::{
    BarrierPayload, Event, FuelPayload, FuturesTrade, LevelSignal, LevelSignals, SpyQuote,
    StockQuote,
};
use spymaster::io::{EventSink, EventSource};

fn trade(i: u64) -> Event {
    Event::FuturesTrade(FuturesTrade {
        ts_event_ns: 1_764_000_000_000_000_000 + i * 100_000 + 50_000,
        ts_recv_ns: 1_764_000_000_000_000_000 + i * 100_000 + 51_000,
        source: "sim".into(),
        symbol: "ESZ5".into(),
        price: 6870.0 + (i % 17) as f64 * 0.25,
        size: 1 + (i % 9) as u32,
        aggressor: [1, -1, 0][(i % 3) as usize],
        exchange: None,
        seq: Some(i),
    })
}

fn quote(i: u64) -> Event {
    Event::StockQuote(StockQuote {
        ts_event_ns: 1_764_000_000_000_000_000 + i * 100_000 + 70_000,
        ts_recv_ns: 1_764_000_000_000_000_000 + i * 100_000 + 71_000,
        source: "sim".into(),
        symbol: "SPY".into(),
        bid_px: 687.01 + (i % 5) as f64 * 0.01,
        ask_px: 687.03 + (i % 5) as f64 * 0.01,
        bid_sz: 300,
        ask_sz: 200 + (i % 7) as u32,
        seq: None,
    })
}

/// A mixed market stream: book images, trades and SPY quotes in event-time order.
fn market_events(n: usize) -> Vec<Event> {
    (0..n as u64)
        .map(|i| match i % 3 {
            0 => synthetic_mbp10(i),
            1 => trade(i),
            _ => quote(i),
        })
        .collect()
}

fn signals(i: i64) -> Event {
    Event::LevelSignals(LevelSignals {
        ts: 1_764_000_000_000 + i * 250,
        spy: SpyQuote {
            spot: Some(687.02),
            bid: Some(687.01),
            ask: Some(687.03),
        },
        levels: vec![LevelSignal {
            id: "STRIKE_687".into(),
            price: 687.0,
            kind: "STRIKE".into(),
            direction: "SUPPORT".into(),
            distance: 0.02,
            break_score_raw: 84.0 + i as f64,
            break_score_smooth: 80.5,
            signal: "BREAK".into(),
            confidence: "HIGH".into(),
            barrier: BarrierPayload {
                state: "VACUUM".into(),
                ..Default::default()
            },
            fuel: FuelPayload {
                effect: "AMPLIFY".into(),
                ..Default::default()
            },
            ..Default::default()
        }],
    })
}

fn read_n(source: &mut impl EventSource, n: usize, limit: Duration) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "read only {} of {n} events",
            out.len()
        );
        match source.next_event() {
            Ok(Some(ev)) => out.push(ev),
            Ok(None) => break,
            Err(e) => panic!("source error: {e}"),
        }
    }
    out
}

/// Reads `market.>` from the start and asserts it holds `events`, byte for byte and in order.
fn assert_market_stream_reads_back(bus: &Bus, events: &[Event]) {
    let mut source = bus
        .source(
            &["market.>".to_string()],
            SourceOptions {
                from_start: true,
                ..Default::default()
            },
        )
        .unwrap();
    let back = read_n(&mut source, events.len(), Duration::from_secs(120));
    assert_eq!(back.len(), events.len());
    for (i, (a, b)) in events.iter().zip(&back).enumerate() {
        assert_eq!(a.to_json(), b.to_json(), "event {i} differs");
    }
}

#[test]
fn published_events_read_back_identical_and_in_order_and_a_rerun_is_deduplicated() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let mut events = market_events(100_000);
    // Two identical events in one run are both kept (they differ by their index).
    let dup = events[10].clone();
    events.insert(11, dup);

    let mut sink = bus.sink(SinkSettings::default()).unwrap();
    for ev in &events {
        sink.send(ev).unwrap();
    }
    sink.finish().unwrap();
    assert_eq!(
        bus.stream_message_count(MARKET_DATA_STREAM).unwrap(),
        events.len() as u64
    );

    assert_market_stream_reads_back(&bus, &events);

    // The same run published again (a re-run replay) lands nowhere new.
    let mut again = bus.sink(SinkSettings::default()).unwrap();
    for ev in &events {
        again.send(ev).unwrap();
    }
    again.finish().unwrap();
    assert_eq!(
        bus.stream_message_count(MARKET_DATA_STREAM).unwrap(),
        events.len() as u64
    );
}

#[test]
fn signals_go_to_their_own_stream_and_a_source_sees_only_new_messages_by_default() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let mut sink = bus.sink(SinkSettings::default()).unwrap();
    sink.send(&signals(0)).unwrap();
    sink.finish().unwrap();
    assert_eq!(bus.stream_message_count(LEVEL_SIGNALS_STREAM).unwrap(), 1);

    let mut live = bus
        .source(&["levels.signals".to_string()], SourceOptions::default())
        .unwrap();
    sink.send(&signals(1)).unwrap();
    sink.finish().unwrap();
    let got = read_n(&mut live, 1, Duration::from_secs(20));
    assert_eq!(got, [signals(1)]);
}

#[test]
fn a_bad_payload_is_a_recoverable_error_with_its_subject_and_sequence() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    bus.ensure_streams().unwrap();
    let client = bus.client().clone();
    bus.runtime().block_on(async {
        let js = async_nats::jetstream::new(client);
        js.publish("market.futures.trades", "not json".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let mut sink = bus.sink(SinkSettings::default()).unwrap();
    sink.send(&trade(1)).unwrap();
    sink.finish().unwrap();

    let mut source = bus
        .source(
            &["market.futures.trades".to_string()],
            SourceOptions {
                from_start: true,
                ..Default::default()
            },
        )
        .unwrap();
    let err = source.next_event().unwrap_err();
    assert!(err.is_recoverable(), "{err}");
    assert!(
        err.to_string()
            .contains("message 1 on market.futures.trades"),
        "{err}"
    );
    assert_eq!(source.next_event().unwrap(), Some(trade(1)));
}

#[test]
fn killing_the_server_while_publishing_gives_an_error_in_bounded_time() {
    let mut server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let settings = SinkSettings {
        ack_timeout: Duration::from_millis(500),
        max_retries: 2,
        ..Default::default()
    };
    let mut sink = bus.sink(settings).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut i = 0u64;
        let result = loop {
            if i == 20_000 {
                let _ = started_tx.send(());
            }
            if let Err(e) = sink.send(&synthetic_mbp10(i)) {
                break Err(e);
            }
            i += 1;
            if i == 5_000_000 {
                break sink.finish();
            }
        };
        let _ = done_tx.send((i, result));
    });
    started_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("publisher started");
    server.kill();
    let killed = Instant::now();
    let (sent, result) = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the sink reports the lost server within a minute instead of hanging");
    // Three attempts of 500 ms each, every retry pass handing messages over for at most one
    // ack timeout: about 3 s; 15 s leaves room for a loaded machine.
    let waited = killed.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "the lost server was reported after {waited:?}"
    );
    let err = result.expect_err("publishing to a dead server must fail");
    assert!(
        matches!(err, spymaster::io::SinkError::Publish(_)),
        "{err:?}"
    );
    assert!(sent >= 20_000);
}

#[test]
fn spm_tap_from_start_prints_exactly_the_published_json_lines() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let events = market_events(3_000);
    let mut sink = bus.sink(SinkSettings::default()).unwrap();
    for ev in &events {
        sink.send(ev).unwrap();
    }
    sink.send(&signals(7)).unwrap();
    sink.finish().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args([
            "--from-start",
            "--count",
            &events.len().to_string(),
            "market.>",
        ])
        .env("NATS_URL", server.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: String = events.iter().map(|e| e.to_json() + "\n").collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    let out = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args([
            "--from-start",
            "--count",
            "1",
            "--format",
            "csv",
            "levels.signals",
        ])
        .env("NATS_URL", server.url())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(row[col("levels.id")], "STRIKE_687");
    assert_eq!(row[col("levels.barrier.state")], "VACUUM");
    assert_eq!(row[col("levels.fuel.effect")], "AMPLIFY");
}

#[test]
fn spm_tap_rejects_bad_usage_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args(["--format", "xml", "levels.signals"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn spm_tap_exits_0_on_sigint_and_sigterm() {
    let server = NatsServer::start();
    for signal in ["-INT", "-TERM"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
            .args(["--format", "table", "levels.signals"])
            .env("NATS_URL", server.url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("spm-tap still running 10 s after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(code, Some(0), "after {signal}");
    }
}

#[test]
fn an_existing_stream_with_other_settings_is_used_as_it_is() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let client = bus.client().clone();
    bus.runtime().block_on(async {
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: MARKET_DATA_STREAM.into(),
            subjects: vec!["market.>".into()],
            storage: async_nats::jetstream::stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let mut sink = bus.sink(SinkSettings::default()).unwrap();
    sink.send(&trade(1)).unwrap();
    sink.finish().unwrap();
    assert_eq!(bus.stream_message_count(MARKET_DATA_STREAM).unwrap(), 1);
    let client = bus.client().clone();
    let storage = bus.runtime().block_on(async {
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(MARKET_DATA_STREAM).await.unwrap();
        stream.get_info().await.unwrap().config.storage
    });
    assert_eq!(
        storage,
        async_nats::jetstream::stream::StorageType::Memory,
        "left as it was"
    );
}

#[test]
fn a_subject_outside_the_streams_is_read_through_core_nats() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let mut source = bus
        .raw_source(&["sandbox.events".to_string()], SourceOptions::default())
        .unwrap();
    let client = bus.client().clone();
    let line = trade(3).to_json();
    let payload = line.clone();
    bus.runtime().block_on(async move {
        client
            .publish("sandbox.events", payload.into())
            .await
            .unwrap();
        client.flush().await.unwrap();
    });
    let msg = source.next_raw().unwrap().unwrap();
    assert_eq!(msg.subject, "sandbox.events");
    assert_eq!(msg.stream_seq, None);
    assert_eq!(&msg.payload[..], line.as_bytes());
}

#[test]
fn publishing_where_no_stream_captures_the_subject_fails_after_the_retries() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let mut sink = bus
        .sink(SinkSettings {
            ensure_streams: false,
            ack_timeout: Duration::from_millis(500),
            max_retries: 2,
            ..Default::default()
        })
        .unwrap();
    let start = Instant::now();
    let result = sink.send(&trade(1)).and_then(|()| sink.finish());
    let err = result.expect_err("no stream, no ack").to_string();
    assert!(err.contains("no JetStream stream captures"), "{err}");
    assert!(err.contains("after 3 attempts"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn bulk_publishing_resumes_after_what_the_stream_holds_of_the_same_input() {
    use spymaster::bus::BatchSettings;
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let events = market_events(25_000);

    // A first run of 10 003 events: one full batch and three more.
    let mut first = bus.batch_sink(BatchSettings::new("day1")).unwrap();
    assert_eq!(first.resume_point(), 0);
    for ev in &events[..10_003] {
        first.send(ev).unwrap();
    }
    first.finish().unwrap();
    drop(first);
    assert_eq!(
        bus.stream_message_count(MARKET_DATA_STREAM).unwrap(),
        10_003
    );

    // The same input resumes after them; the caller sends from there on.
    let mut again = bus.batch_sink(BatchSettings::new("day1")).unwrap();
    assert_eq!(again.resume_point(), 10_003);
    for ev in &events[10_003..] {
        again.send(ev).unwrap();
    }
    again.finish().unwrap();
    drop(again);
    assert_eq!(
        bus.stream_message_count(MARKET_DATA_STREAM).unwrap(),
        events.len() as u64
    );

    // Another input starts from its beginning; `resume: false` does too.
    let other = bus.batch_sink(BatchSettings::new("day2")).unwrap();
    assert_eq!(other.resume_point(), 0);
    drop(other);
    let republish = bus
        .batch_sink(BatchSettings {
            resume: false,
            ..BatchSettings::new("day1")
        })
        .unwrap();
    assert_eq!(republish.resume_point(), 0);
    drop(republish);

    // What was stored reads back as it was sent, and carries its positions.
    assert_market_stream_reads_back(&bus, &events);
    common::nats::assert_exactly_once_in_order(
        &common::nats::stored_positions(&server.url(), MARKET_DATA_STREAM),
        events.len() as u64,
    );
}

#[test]
fn a_stream_without_batched_publishing_is_used_event_by_event_with_a_warning() {
    use spymaster::io::PipeFormat;
    use spymaster::wiring::{OutputTarget, Publishing, open_sink};
    let server = NatsServer::start();
    let mut cfg = BusConfig::new(server.url());
    cfg.streams.allow_batched = false;
    let bus = Bus::connect(&cfg).unwrap();
    bus.ensure_streams().unwrap();
    assert!(matches!(
        bus.batch_sink(spymaster::bus::BatchSettings::new("x")),
        Err(spymaster::bus::BusError::BatchDisabled { .. })
    ));
    // The default settings would create it with batches on, but it exists: used as it is.
    let mut sink = open_sink(
        OutputTarget::Nats,
        PipeFormat::Ndjson,
        &BusConfig::new(server.url()),
        false,
        Publishing::Bulk {
            input: "x".into(),
            resume: true,
        },
    )
    .unwrap();
    for ev in market_events(1_000) {
        sink.send(&ev).unwrap();
    }
    sink.finish().unwrap();
    assert_eq!(bus.stream_message_count(MARKET_DATA_STREAM).unwrap(), 1_000);
}

/// Writer A of input "same-files" has sent `sent` in the middle of a batch (of 10 000), paused,
/// and will not commit it by itself; returns its settings and A.
fn writer_paused_mid_batch(
    bus: &Bus,
    sent: &[Event],
) -> (spymaster::bus::BatchSettings, spymaster::bus::BatchSink) {
    let settings = spymaster::bus::BatchSettings {
        idle_commit: Duration::from_secs(60),
        ..spymaster::bus::BatchSettings::new("same-files")
    };
    let mut a = bus.batch_sink(settings.clone()).unwrap();
    for ev in sent {
        a.send(ev).unwrap();
    }
    a.flush().unwrap();
    (settings, a)
}

#[test]
fn a_second_bulk_writer_is_refused_while_the_first_holds_the_stream_and_resumes_after_it() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let events = market_events(6_000);
    let (settings, mut a) = writer_paused_mid_batch(&bus, &events[..5_000]);

    // B, the same input, is refused while A runs, and says who holds the stream.
    let err = bus
        .batch_sink(settings.clone())
        .expect_err("B must be refused while A holds the stream");
    let text = err.to_string();
    assert!(
        text.contains("another publisher")
            && text.contains("refusing to interleave")
            && text.contains(&format!("pid {}", std::process::id()))
            && text.contains("same-files"),
        "{text}"
    );

    // Once A is done, B resumes after A's last event.
    a.finish().unwrap();
    drop(a);
    let mut b = bus.batch_sink(settings).unwrap();
    assert_eq!(b.resume_point(), 5_000);
    for ev in &events[5_000..] {
        b.send(ev).unwrap();
    }
    b.finish().unwrap();
    common::nats::assert_exactly_once_in_order(
        &common::nats::stored_positions(&server.url(), MARKET_DATA_STREAM),
        6_000,
    );
}

#[test]
fn a_writer_that_ignores_the_lock_and_writes_mid_batch_stops_the_publisher_with_a_clear_error() {
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
    let events = market_events(6_000);
    let (_, mut a) = writer_paused_mid_batch(&bus, &events[..5_000]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while bus.stream_message_count(MARKET_DATA_STREAM).unwrap() < 5_000 {
        assert!(Instant::now() < deadline, "the stream never held 5 000");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A plain JetStream publish, which knows nothing of the lock, lands mid-batch.
    let client = bus.client().clone();
    bus.runtime()
        .block_on(async move {
            async_nats::jetstream::new(client)
                .publish("market.stocks.trades", "{}".into())
                .await?
                .await
        })
        .unwrap();
    for ev in &events[5_000..] {
        if a.send(ev).is_err() {
            break;
        }
    }
    let err = a.finish().expect_err("A must stop");
    let text = err.to_string();
    assert!(
        text.contains("another publisher") && text.contains("stopping"),
        "{text}"
    );
}
