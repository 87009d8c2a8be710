//! Helpers shared by the end-to-end tests.
#![allow(dead_code, unused_imports)]

pub mod dbn_gateway;
pub mod gateway;
pub mod lake;
pub mod lake_crash;
pub mod nats;
pub mod process;
pub mod s3;
pub mod samples;
