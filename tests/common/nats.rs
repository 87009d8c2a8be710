//! A real `nats-server` for end-to-end tests: `NatsServer::start()` returns `None` (after
//! printing "skipping: nats-server not installed") when the binary is missing.

pub use spymaster::bus::testing::NatsServer;
