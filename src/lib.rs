//! newsflow: a Kafka streaming worker that normalizes raw news articles, enriches them with
//! named entities and sentiment, and publishes one event per article.
//!
//! Data flow, one module per stage:
//! [`source`] (Kafka in) → [`parse`] (bytes → raw article) → [`normalize`] (raw → clean
//! article) → [`enrich`] (entities, sentiment) → [`event`] (output record) → [`sink`]
//! (Kafka out). [`pipeline`] chains the pure middle stages; [`worker`] runs them all.

pub mod batch;
pub mod cli;
pub mod config;
pub mod demo;
pub mod enrich;
pub mod event;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod normalize;
pub mod offsets;
pub mod parse;
pub mod pipeline;
pub mod remote;
pub mod replay;
pub mod runtime;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod worker;
