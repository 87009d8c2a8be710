//! `spm-tap SUBJECT...`: print the events on NATS subjects (or `--stdin`) for inspection.

use std::io::IsTerminal;

use clap::Parser;
use spymaster::tap::{TapArgs, run};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = TapArgs::parse();
    run(&args)?;
    Ok(())
}
