//! The gateway's HTTP routes: `/` (the dashboard), `/ws/stream`, `/health`, `/metrics`,
//! `/api/history` and `/api/latest`, behind the bearer-token check (every route but `/health`
//! when a token is set) and, for WebSocket upgrades, the origin check.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::hub::{Hub, QUEUE_AGE_BUCKETS};
use super::input::NatsInput;
use super::session::{self, SessionSettings};

/// The dashboard, served from the binary.
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// Largest message a client may send (it has nothing to say but pongs and closes).
const MAX_CLIENT_MESSAGE: usize = 4096;

/// What the routes share.
pub struct AppState {
    pub hub: Arc<Hub>,
    pub nats: Option<NatsInput>,
    pub token: Option<String>,
    pub allowed_origins: Vec<String>,
    pub session: SessionSettings,
    pub stale_after: Duration,
}

/// The router with every route and check.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/ws/stream", get(ws_stream))
        .route("/metrics", get(metrics))
        .route("/api/history", get(history))
        .route("/api/latest", get(latest))
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(axum::extract::DefaultBodyLimit::max(1024))
        .with_state(state)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries: `Authorization: Bearer …` or `?token=…`.
fn presented_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim());
    }
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

async fn authorize(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token
        && req.uri().path() != "/health"
    {
        let ok = presented_token(req.headers(), req.uri().query())
            .map(percent_decode)
            .is_some_and(|t| same_secret(t.as_bytes(), token.as_bytes()));
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized\n",
            )
                .into_response();
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing outside this gateway may be reached from the page.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'",
            ),
        ],
        DASHBOARD_HTML,
    )
        .into_response()
}

/// Whether a browser's `Origin` is this gateway (same host and port) or explicitly allowed.
/// Clients that send no `Origin` (not browsers) are allowed.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

async fn ws_stream(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.allowed_origins) {
        tracing::warn!(%peer, origin = ?headers.get(header::ORIGIN), "WebSocket from a foreign origin refused");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let Some(reg) = state.hub.register() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "too many clients\n",
        )
            .into_response();
    };
    let hub = state.hub.clone();
    let settings = state.session;
    // Clients only send pongs and closes: a small read buffer (the default is 128 KiB per
    // client, 128 MB for 1 000 clients).
    ws.read_buffer_size(4096)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_failed_upgrade({
            let hub = hub.clone();
            let id = reg.id;
            move |e| {
                tracing::debug!("WebSocket upgrade failed: {e}");
                hub.unregister(id);
            }
        })
        .on_upgrade(move |socket| session::serve(socket, hub, reg, settings, peer))
}

async fn history(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.hub.history_json(),
    )
        .into_response()
}

async fn latest(State(state): State<Arc<AppState>>) -> Response {
    match state.hub.latest() {
        Some(p) => (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(bytes::Bytes::from(p.text.clone())),
        )
            .into_response(),
        None => (StatusCode::NO_CONTENT, "").into_response(),
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn secs_since(t: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The health report and whether it is healthy.
pub fn health_report(state: &AppState) -> (bool, serde_json::Value) {
    let hub = &state.hub;
    let c = &hub.counters;
    let input = hub.input_status();
    let latest = hub.latest();
    let wall_age = latest
        .as_ref()
        .map(|p| p.received.elapsed())
        .unwrap_or_else(|| hub.started.elapsed());
    let stale = wall_age > state.stale_after;
    let nats = state.nats.as_ref().map(|n| {
        let link = n.link.state();
        let info = n.client.server_info();
        json!({
            "connected": link.connected,
            "since": rfc3339(link.since),
            "for_s": secs_since(link.since),
            "url": n.url,
            "server": link.connected.then(|| format!("{}:{}", info.host, info.port)),
            "server_name": link.connected.then_some(info.server_name),
            "disconnects": link.disconnects,
            "last_notice": link.last_notice,
        })
    });
    let nats_down = state
        .nats
        .as_ref()
        .is_some_and(|n| !n.link.state().connected);
    let status = if stale {
        "stale"
    } else if nats_down {
        "degraded"
    } else if latest.is_none() {
        // Up, but nothing to show yet: healthy until `--stale-after` has passed since start.
        "waiting"
    } else {
        "ok"
    };
    let last = latest.as_ref().map(|p| {
        let event_time =
            SystemTime::UNIX_EPOCH + Duration::from_millis(p.event_ts_ms.max(0) as u64);
        json!({
            "event_ts": rfc3339(event_time),
            "event_ts_ms": p.event_ts_ms,
            "event_lag_s": secs_since(event_time),
            "received": rfc3339(p.received_wall),
            "wall_age_s": p.received.elapsed().as_secs_f64(),
        })
    });
    let report = json!({
        "status": status,
        "input": {
            "mode": input.mode,
            "state": input.state,
            "last_error": input.last_error,
        },
        "nats": nats,
        "last_payload": last,
        "stale_after_s": state.stale_after.as_secs_f64(),
        "payloads_received": c.payloads_in.load(Ordering::Relaxed),
        "bad_inputs": c.bad_inputs.load(Ordering::Relaxed),
        "clients_connected": hub.clients_connected(),
        "clients_evicted": c.evictions.load(Ordering::Relaxed),
        "clients_refused": c.clients_refused.load(Ordering::Relaxed),
        "frames_sent": c.frames_out.load(Ordering::Relaxed),
        "drops": c.drops.load(Ordering::Relaxed),
        "uptime_s": hub.started.elapsed().as_secs_f64(),
        "started": rfc3339(hub.started_wall),
    });
    (!stale, report)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let (healthy, report) = health_report(&state);
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        report.to_string() + "\n",
    )
        .into_response()
}

/// The Prometheus text exposition of the counters.
pub fn metrics_text(state: &AppState) -> String {
    let hub = &state.hub;
    let c = &hub.counters;
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    metric(
        "spm_gateway_payloads_in_total",
        "counter",
        "Payloads received from the input.",
        load(&c.payloads_in),
    );
    metric(
        "spm_gateway_frames_out_total",
        "counter",
        "WebSocket text frames written to clients.",
        load(&c.frames_out),
    );
    metric(
        "spm_gateway_bytes_out_total",
        "counter",
        "Payload bytes written to clients.",
        load(&c.bytes_out),
    );
    metric(
        "spm_gateway_drops_total",
        "counter",
        "Payloads a client never got because a newer one replaced it in its queue.",
        load(&c.drops),
    );
    metric(
        "spm_gateway_evictions_total",
        "counter",
        "Clients disconnected for not reading.",
        load(&c.evictions),
    );
    metric(
        "spm_gateway_clients_refused_total",
        "counter",
        "Connections refused at --max-clients.",
        load(&c.clients_refused),
    );
    metric(
        "spm_gateway_clients_total",
        "counter",
        "WebSocket clients accepted.",
        load(&c.clients_total),
    );
    metric(
        "spm_gateway_bad_inputs_total",
        "counter",
        "Input items that were not readable payloads.",
        load(&c.bad_inputs),
    );
    metric(
        "spm_gateway_clients_connected",
        "gauge",
        "WebSocket clients connected now.",
        hub.clients_connected() as f64,
    );
    let age = hub
        .latest()
        .map(|p| p.received.elapsed())
        .unwrap_or_else(|| hub.started.elapsed());
    metric(
        "spm_gateway_last_payload_age_seconds",
        "gauge",
        "Wall time since the last payload (since start before the first).",
        age.as_secs_f64(),
    );
    if let Some(n) = &state.nats {
        metric(
            "spm_gateway_nats_connected",
            "gauge",
            "1 when connected to NATS.",
            f64::from(u8::from(n.link.state().connected)),
        );
    }
    let (buckets, count, sum) = c.queue_age.snapshot();
    let name = "spm_gateway_client_queue_age_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} How long a payload waited in a client's queue before being written.\n# TYPE {name} histogram"
    );
    for (le, n) in QUEUE_AGE_BUCKETS.iter().zip(&buckets) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
    );
    out
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics_text(&state),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comes_from_the_bearer_header_or_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(
            presented_token(&h, Some("a=1&token=s3cret")),
            Some("s3cret")
        );
        assert_eq!(presented_token(&h, None), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(presented_token(&h, None), Some("abc"));
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert_eq!(percent_decode("a%2Bb+c%"), "a+b c%");
    }

    #[test]
    fn browsers_from_other_origins_are_refused() {
        let mut h = HeaderMap::new();
        assert!(origin_allowed(&h, &[]), "no Origin: not a browser");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8000"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8000"),
        );
        assert!(origin_allowed(&h, &[]));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_allowed(&h, &[]));
        assert!(origin_allowed(&h, &["http://evil.example".into()]));
    }
}
