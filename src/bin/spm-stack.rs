//! `spm-stack`: the whole system on this machine (`just up`, `just status`, `just down`), and
//! the health probes the container images use.

use std::process::ExitCode;

use clap::Parser;
use spymaster::cli;
use spymaster::stack::cli::{StackArgs, run};

fn main() -> ExitCode {
    cli::generate_docs::<StackArgs>();
    let args = StackArgs::parse();
    cli::init_logging();
    match run(args) {
        Ok(code) => code,
        Err(e) => cli::finish(Err(anyhow::Error::new(e).context("spm-stack"))),
    }
}
