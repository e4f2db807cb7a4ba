//! Liveness and readiness state, set by the Kafka clients and the worker, read by the
//! operations HTTP server.

use std::sync::atomic::{AtomicBool, Ordering};

/// Liveness and readiness, shared by the clients and the HTTP server.
#[derive(Debug, Default)]
pub struct Health {
    connected: AtomicBool,
    shutting_down: AtomicBool,
}

impl Health {
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
    /// Ready while connected to the broker and not shutting down (assigned or waiting for
    /// an assignment both count).
    pub fn is_ready(&self) -> bool {
        self.connected.load(Ordering::Relaxed) && !self.shutting_down.load(Ordering::Relaxed)
    }
}
