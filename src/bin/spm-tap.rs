//! `spm-tap SUBJECT...`: print the events on NATS subjects (or `--stdin`) for inspection.

use std::process::ExitCode;

use clap::Parser;
use spymaster::cli;
use spymaster::tap::{TapArgs, run};

fn main() -> ExitCode {
    spymaster::cli::generate_docs::<TapArgs>();
    let args = TapArgs::parse();
    cli::init_logging();
    cli::finish(run(&args).map_err(Into::into))
}
