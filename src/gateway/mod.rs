//! `spm-gateway`: the `levels.signals` payloads served over WebSocket (`/ws/stream`) to any
//! number of clients, with `/health`, `/metrics` and a self-contained live dashboard at `/`
//! (DESIGN.md "Gateway").
//!
//! The input (stdin or NATS, see [`input`]) hands each payload to the [`hub::Hub`], which keeps
//! the latest and puts a shared reference to it in every client's newest-wins queue; each client
//! is served by its own task ([`session`]), so a slow one never delays the others.

pub mod http;
pub mod hub;
pub mod input;
pub mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::bus::{BusConfig, BusError};
use crate::wiring::InputSource;

/// `spm-gateway`'s settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "spm-gateway", version)]
pub struct GatewayArgs {
    /// Where payloads come from: `level_signals` events on stdin (NDJSON or the binary
    /// framing), or the `levels.signals` subject on NATS [default: stdin when it is a pipe or a
    /// file, else nats].
    #[arg(long, value_enum)]
    pub input: Option<InputSource>,
    /// Address to listen on (127.0.0.1: this machine only; 0.0.0.0 for every interface).
    #[arg(long, env = "GATEWAY_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Bearer token required on every route but /health (`Authorization: Bearer …`, or
    /// `?token=…` for browsers).
    #[arg(long, env = "GATEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A browser origin allowed to open /ws/stream besides the gateway's own (repeatable;
    /// `*` allows any).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Most WebSocket clients at once; more are refused with 503.
    #[arg(long, default_value_t = 2000)]
    pub max_clients: usize,
    /// Payloads a client's queue holds; when full, the oldest gives way to the newest.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub client_queue: usize,
    /// Evict a client (close 1008) that has not read for this long: a write that does not
    /// complete, or no pong to the pings.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub stall_timeout: f64,
    /// Interval of the keep-alive pings (shorter than --stall-timeout).
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub ping_interval: f64,
    /// /health answers 503 when no payload arrived for this long.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub stale_after: f64,
    /// Event time of spot and calls kept for a dashboard opened mid-session.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub history: u64,
    #[command(flatten)]
    pub bus: BusConfig,
}

/// Errors that stop `spm-gateway`.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Settings(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
}

fn secs(name: &str, v: f64) -> Result<Duration, GatewayError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            GatewayError::Settings(format!(
                "{name} must be a positive number of seconds, not {v}"
            ))
        })
}

/// Runs the gateway until SIGINT or SIGTERM.
pub fn run(args: &GatewayArgs) -> Result<(), GatewayError> {
    let stall = secs("--stall-timeout", args.stall_timeout)?;
    let ping = secs("--ping-interval", args.ping_interval)?;
    let stale_after = secs("--stale-after", args.stale_after)?;
    if ping >= stall {
        return Err(GatewayError::Settings(format!(
            "--ping-interval ({} s) must be shorter than --stall-timeout ({} s)",
            args.ping_interval, args.stall_timeout
        )));
    }
    if args.token.as_deref().is_some_and(str::is_empty) {
        return Err(GatewayError::Settings(
            "GATEWAY_TOKEN is set but empty".into(),
        ));
    }
    let mode = args.input.unwrap_or_else(InputSource::auto);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("spm-gateway")
        .enable_all()
        .build()
        .map_err(GatewayError::Runtime)?;
    runtime.block_on(serve(args, mode, stall, ping, stale_after))
}

async fn serve(
    args: &GatewayArgs,
    mode: InputSource,
    stall: Duration,
    ping: Duration,
    stale_after: Duration,
) -> Result<(), GatewayError> {
    let hub = Arc::new(hub::Hub::new(
        args.client_queue,
        args.max_clients,
        Duration::from_secs(args.history),
        match mode {
            InputSource::Stdin => "stdin",
            InputSource::Nats => "nats",
        },
    ));
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Listen { addr, source })?;
    let local = listener.local_addr().map_err(GatewayError::Serve)?;
    let nats = match mode {
        InputSource::Stdin => {
            let hub = hub.clone();
            std::thread::Builder::new()
                .name("spm-gateway-stdin".into())
                .spawn(move || input::read_stdin(&hub))
                .map_err(GatewayError::Runtime)?;
            None
        }
        InputSource::Nats => Some(input::NatsInput::start(&args.bus, hub.clone()).await?),
    };
    if !args.bind.is_loopback() && args.token.is_none() {
        tracing::warn!(
            "listening on {} without GATEWAY_TOKEN: anyone who can reach it can read the signals",
            args.bind
        );
    }
    let state = Arc::new(http::AppState {
        hub: hub.clone(),
        nats,
        token: args.token.clone(),
        allowed_origins: args.allow_origins.clone(),
        session: session::SessionSettings {
            stall_timeout: stall,
            ping_interval: ping,
        },
        stale_after,
    });
    let app = http::router(state);
    // One line on stderr a supervisor or a test can read the address from.
    eprintln!(
        "spm-gateway: listening on http://{local}/ (dashboard /, stream /ws/stream, /health, /metrics)"
    );
    tracing::info!(input = ?mode, %local, "spm-gateway serving");
    let shutdown_hub = hub.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        crate::bus::wait_for_signal().await;
        tracing::info!("stopping: closing client connections");
        shutdown_hub.close_all();
    })
    .await
    .map_err(GatewayError::Serve)
}
