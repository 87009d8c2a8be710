//! Helpers shared by the end-to-end tests.
#![allow(dead_code, unused_imports)]

pub mod lake;
pub mod nats;
pub mod samples;
