//! Remote enrichment against a real HTTP model server started in the test (axum on port 0)
//! that speaks the Hugging Face inference wire format and can be switched to be slow, fail
//! with 500, throttle with 429 and `Retry-After`, answer malformed JSON, refuse with 400, or
//! drop connections. In-process tests call `RemoteEnricher` directly; the broker tests run
//! the worker against both.

mod broker;
mod in_process;
mod server;
