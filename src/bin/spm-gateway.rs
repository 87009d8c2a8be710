//! `spm-gateway`: level signals → WebSocket clients and a live dashboard in the browser.

use std::process::ExitCode;

use clap::Parser;
use spymaster::cli;
use spymaster::gateway::{GatewayArgs, run};

fn main() -> ExitCode {
    cli::generate_docs::<GatewayArgs>();
    let args = GatewayArgs::parse();
    cli::init_logging();
    cli::raise_fd_limit();
    cli::finish(run(&args).map_err(Into::into))
}
