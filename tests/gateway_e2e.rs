//! `spm-gateway` end to end: the latest payload on connect and every new one as the exact
//! bytes, a stalled client evicted without delaying the others, the token and origin checks,
//! `--max-clients`, and `/health` telling the truth when payloads stop and when a real
//! nats-server goes away and comes back.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::gateway::{Gateway, sample_signals};
use futures::{SinkExt, StreamExt};
use spymaster::bus::testing::NatsServer;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
        .0
}

/// The next text frame, within `secs`.
async fn next_text(ws: &mut Ws, secs: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no text frame within {secs} s: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gets_the_latest_payload_on_connect_then_every_new_one_as_the_exact_bytes() {
    let signals = sample_signals();
    assert!(signals.len() > 100, "the sample gives snaps");
    let mut gw = Gateway::start(&["--input", "stdin"], Stdio::piped(), &[]);
    let first: Vec<&[u8]> = signals[..50].iter().map(Vec::as_slice).collect();
    gw.feed(&first);
    gw.wait_health(10, "50 payloads in", |_, h| h["payloads_received"] == 50);

    let mut ws = connect(&gw.ws_url("")).await;
    let got = next_text(&mut ws, 5).await;
    assert_eq!(
        got.as_bytes(),
        signals[49].as_slice(),
        "the latest payload first, byte for byte"
    );

    for (i, line) in signals[50..60].iter().enumerate() {
        gw.feed(&[line]);
        let got = next_text(&mut ws, 5).await;
        assert_eq!(
            got.as_bytes(),
            line.as_slice(),
            "payload {} as it came",
            50 + i
        );
    }
    let h = gw.health().1;
    assert_eq!(h["clients_connected"], 1);
    assert_eq!(h["frames_sent"], 11);
    assert_eq!(h["input"]["mode"], "stdin");
    let (code, _, metrics) = gw.get("/metrics", &[]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("spm_gateway_payloads_in_total 60"),
        "{metrics}"
    );
    assert!(
        metrics.contains("spm_gateway_frames_out_total 11"),
        "{metrics}"
    );
    assert!(
        metrics.contains("spm_gateway_client_queue_age_seconds_count 11"),
        "{metrics}"
    );
    // The history the dashboard draws on load.
    let (code, _, history) = gw.get("/api/history", &[]);
    assert_eq!(code, 200);
    let history: serde_json::Value = serde_json::from_str(&history).expect("history JSON");
    assert_eq!(history["spot"].as_array().map(Vec::len), Some(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_evicted_and_never_delays_the_others() {
    let signals = sample_signals();
    let mut gw = Gateway::start(
        &[
            "--input",
            "stdin",
            "--stall-timeout",
            "1.5",
            "--ping-interval",
            "0.25",
            "--client-queue",
            "2",
        ],
        Stdio::piped(),
        &[],
    );
    gw.feed(&[&signals[0]]);
    gw.wait_health(10, "first payload", |_, h| h["payloads_received"] == 1);
    // The stalled client: shakes hands, then never reads again (so it never answers a ping).
    let stalled = connect(&gw.ws_url("")).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(&gw.ws_url("")).await;
        next_text(&mut ws, 5).await; // the latest
        readers.push(ws);
    }
    // 4 s of payloads at 20 per second; each reader must get each within 250 ms.
    let mut worst = Duration::ZERO;
    let t0 = Instant::now();
    for line in &signals[1..81] {
        let sent = Instant::now();
        gw.feed(&[line]);
        for ws in readers.iter_mut() {
            let got = next_text(ws, 5).await;
            assert_eq!(got.as_bytes(), line.as_slice());
        }
        worst = worst.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(50).saturating_sub(sent.elapsed())).await;
    }
    assert!(t0.elapsed() >= Duration::from_secs(3));
    assert!(
        worst < Duration::from_millis(250),
        "a reader waited {worst:?} for a payload"
    );
    let h = gw.wait_health(10, "the stalled client evicted", |_, h| {
        h["clients_evicted"] == 1
    });
    assert_eq!(h["clients_connected"], 3, "{h}");
    assert!(gw.log().contains("client evicted: stalled"), "{}", gw.log());
    // What the stalled client finds when it reads at last: its queue's last payloads, then
    // the close frame with the reason (or the connection already gone).
    let mut stalled = stalled;
    let mut close = None;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
        match msg {
            Ok(Message::Close(frame)) => {
                close = frame;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if let Some(frame) = close {
        assert_eq!(u16::from(frame.code), 1008);
        assert!(frame.reason.contains("stalled"), "{frame:?}");
    }
    let (_, _, metrics) = gw.get("/metrics", &[]);
    assert!(
        metrics.contains("spm_gateway_evictions_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_required_on_every_route_but_health_and_leaks_nothing() {
    let signals = sample_signals();
    let secret = "s3cret-t0ken";
    let mut gw = Gateway::start(
        &["--input", "stdin"],
        Stdio::piped(),
        &[("GATEWAY_TOKEN", secret)],
    );
    gw.feed(&[&signals[0]]);
    gw.wait_health(10, "payload in (health needs no token)", |c, h| {
        c == 200 && h["payloads_received"] == 1
    });
    for path in ["/", "/metrics", "/api/history", "/api/latest", "/ws/stream"] {
        let (code, head, body) = gw.get(path, &[]);
        assert_eq!(code, 401, "{path} without a token");
        let (code, head2, body2) = gw.get(path, &[("Authorization", "Bearer wrong")]);
        assert_eq!(code, 401, "{path} with a wrong token");
        for text in [&head, &body, &head2, &body2] {
            assert!(!text.contains(secret), "{path} leaked the token");
            assert!(!text.contains("level_signals"), "{path} leaked data");
        }
    }
    let (code, _, page) = gw.get("/", &[("Authorization", &format!("Bearer {secret}"))]);
    assert_eq!(code, 200);
    assert!(page.contains("<canvas"), "the dashboard");
    let (code, _, _) = gw.get(&format!("/api/latest?token={secret}"), &[]);
    assert_eq!(code, 200);
    // Browsers pass the token as a query parameter on the WebSocket.
    match tokio_tungstenite::connect_async(gw.ws_url("")).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("a WebSocket without the token must get 401: {other:?}"),
    }
    let mut ws = connect(&gw.ws_url(&format!("?token={secret}"))).await;
    assert_eq!(
        next_text(&mut ws, 5).await.as_bytes(),
        signals[0].as_slice()
    );
    // Another site's page may not open the stream, even with the token.
    let mut req = gw
        .ws_url(&format!("?token={secret}"))
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("a foreign origin must get 403: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_refuses_one_more_with_503() {
    let gw = Gateway::start(
        &["--input", "stdin", "--max-clients", "2"],
        Stdio::piped(),
        &[],
    );
    let _a = connect(&gw.ws_url("")).await;
    let _b = connect(&gw.ws_url("")).await;
    match tokio_tungstenite::connect_async(gw.ws_url("")).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("a third client must get 503: {other:?}"),
    }
    let h = gw.wait_health(5, "counted", |_, h| h["clients_refused"] == 1);
    assert_eq!(h["clients_connected"], 2);
}

#[test]
fn health_turns_503_when_payloads_stop_and_200_when_they_resume() {
    let signals = sample_signals();
    let mut gw = Gateway::start(
        &["--input", "stdin", "--stale-after", "1"],
        Stdio::piped(),
        &[],
    );
    let (code, h) = gw.health();
    assert!(
        (code == 200 && h["status"] == "waiting") || (code == 503 && h["status"] == "stale"),
        "no payload yet is not ok: {code} {h}"
    );
    gw.feed(&[&signals[0]]);
    let h = gw.wait_health(5, "fresh", |c, h| {
        c == 200 && h["status"] == "ok" && h["payloads_received"] == 1
    });
    assert_eq!(h["last_payload"]["event_ts_ms"], 1763737200250_i64, "{h}");
    let h = gw.wait_health(5, "stale after 1 s", |c, _| c == 503);
    assert_eq!(h["status"], "stale");
    assert!(h["last_payload"]["wall_age_s"].as_f64().expect("age") > 1.0);
    gw.feed(&[&signals[1]]);
    gw.wait_health(5, "fresh again", |c, h| {
        c == 200 && h["payloads_received"] == 2
    });
    drop(gw.stdin.take());
    gw.wait_health(5, "stdin ended", |_, h| h["input"]["state"] == "ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_tells_the_truth_when_nats_goes_away_and_comes_back() {
    let signals = sample_signals();
    let mut nats = NatsServer::start();
    let gw = Gateway::start(
        &[
            "--input",
            "nats",
            "--nats-url",
            &nats.url(),
            "--stale-after",
            "2",
        ],
        Stdio::null(),
        &[],
    );
    let h = gw.wait_health(10, "connected", |_, h| h["nats"]["connected"] == true);
    assert_eq!(h["input"]["mode"], "nats");
    assert!(
        h["nats"]["server"]
            .as_str()
            .expect("server")
            .ends_with(&nats.port().to_string())
    );
    let client = async_nats::connect(nats.url()).await.expect("publisher");
    let publish = async |client: &async_nats::Client, i: usize| {
        client
            .publish("levels.signals", signals[i].clone().into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
    };
    let mut ws = connect(&gw.ws_url("")).await;
    publish(&client, 0).await;
    assert_eq!(
        next_text(&mut ws, 5).await.as_bytes(),
        signals[0].as_slice()
    );

    nats.stop();
    let h = gw.wait_health(15, "disconnected", |_, h| h["nats"]["connected"] == false);
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["nats"]["disconnects"], 1);
    // Payloads stop while NATS is away: stale, 503.
    gw.wait_health(10, "stale while NATS is away", |c, h| {
        c == 503 && h["status"] == "stale"
    });

    nats.start_again().expect("restart nats-server");
    let h = gw.wait_health(20, "reconnected", |_, h| h["nats"]["connected"] == true);
    assert!(h["nats"]["for_s"].as_f64().expect("for_s") < 20.0);
    // The subscription is back: a new payload reaches the same WebSocket client.
    let client = async_nats::connect(nats.url())
        .await
        .expect("publisher again");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        publish(&client, 1).await;
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(500), ws.next()).await
        {
            assert_eq!(t.as_bytes(), signals[1].as_slice());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no payload after NATS came back\n{}",
            gw.log()
        );
    }
    gw.wait_health(5, "fresh again", |c, h| c == 200 && h["status"] == "ok");
    let _ = ws.send(Message::Close(None)).await;
}
