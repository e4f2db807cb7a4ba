//! Integration tests. Tests that need a real Kafka-protocol broker read its address from
//! `NEWSFLOW_TEST_BROKERS` (set by `scripts/test.sh`, which installs and starts one).
//! Without it they skip, unless `NEWSFLOW_REQUIRE_BROKER=1`, in which case they fail.

mod exactly_once;
mod faults;
mod helpers;
mod mock;
mod prometheus;
mod remote;
mod replay;
mod worker;
