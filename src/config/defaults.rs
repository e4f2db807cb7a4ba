//! Every default in one place.

use super::{DeliveryGuarantee, EnricherKind, LogFormat};
use std::net::SocketAddr;

pub fn assignor() -> String {
    "cooperative-sticky".into()
}
pub fn unassigned_timeout_ms() -> u64 {
    120_000
}

pub fn session_timeout_ms() -> u64 {
    45_000
}
pub fn statistics_interval_ms() -> u64 {
    5_000
}
pub fn listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 9464))
}
pub fn max_in_flight() -> usize {
    512
}
pub fn max_message_bytes() -> usize {
    1 << 20
}
pub fn max_in_flight_bytes() -> usize {
    64 << 20
}
pub fn record_timeout_ms() -> u64 {
    10_000
}
pub fn stall_timeout_ms() -> u64 {
    300_000
}
pub fn enricher() -> EnricherKind {
    EnricherKind::Local
}
pub fn retry_backoff_initial_ms() -> u64 {
    100
}
pub fn retry_backoff_max_ms() -> u64 {
    10_000
}
pub fn drain_timeout_ms() -> u64 {
    10_000
}
pub fn log_format() -> LogFormat {
    LogFormat::Text
}
pub fn log_level() -> String {
    "info".into()
}
pub fn guarantee() -> DeliveryGuarantee {
    DeliveryGuarantee::AtLeastOnce
}
pub fn transaction_interval_ms() -> u64 {
    100
}
pub fn transaction_timeout_ms() -> u64 {
    60_000
}
