//! newsflow: a Kafka streaming worker that normalizes raw news articles, enriches them with
//! named entities and sentiment, and publishes one event per article.
//!
//! Data flow, one module per pipeline stage:
//! [`source`] (Kafka in) → [`parse`] (bytes → raw article) → [`normalize`] (raw → clean
//! article) → [`enrich`] (entities, sentiment) → [`event`] (output record) → [`sink`]
//! (Kafka out). [`pipeline`] chains the pure middle stages; [`worker`] runs them all as
//! concurrent tasks (read, order, ack).

// Pipeline stages, in data-flow order.
pub mod enrich;
pub mod event;
pub mod normalize;
pub mod parse;
pub mod pipeline;
pub mod sink;
pub mod source;

// Engines the stages call: the remote model client.
pub mod remote;

// The worker and what it runs on: Kafka clients, offsets, retries.
pub mod kafka;
pub mod offsets;
pub mod retry;
pub mod runtime;
pub mod worker;

// Operations: configuration, health, metrics, the HTTP server, logging, shutdown.
pub mod config;
pub mod events;
pub mod health;
pub mod http;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

// Entry points: start-up wiring, the command line and its commands.
pub mod app;
pub mod cli;
pub mod commands;
