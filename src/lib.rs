//! Spymaster: market data to live BREAK / REJECT calls at the price levels SPY 0DTE traders watch.
//!
//! The library holds all logic; the `spm-*` binaries only wire a source to a stage to a sink.

pub mod bus;
pub mod cli;
pub mod core;
pub mod dbn;
pub mod eval;
pub mod event;
pub mod gateway;
pub mod hash;
pub mod ingest;
pub mod io;
pub mod lake;
pub mod replay;
pub mod stack;
pub mod synth;
pub mod tap;
pub mod wiring;
