//! # flywheel-server: the HTTP API and nothing else
//!
//! This crate translates HTTP to engine calls and back. It owns the wire types,
//! the one table from errors to statuses ([`ApiError`]), the edge (body, URI and
//! header limits, strict JSON), and the
//! Prometheus exposition. Engine calls that block (durable appends, ranking) run
//! on tokio's blocking pool so the event loop never stalls.
//!
//! Batches of events are **all or nothing**: if any event of a batch is invalid the
//! whole batch is rejected with a 400 that lists the bad events by index (the first
//! 100, then how many more in `details_omitted`), and nothing is stored. An accepted batch is durable (fsynced) before the response.

mod access;
mod bodies;
mod body;
mod controller;
mod dashboard;
mod edge;
mod error;
mod experiments;
mod json;
pub mod keys;
mod listen;
mod metrics;
mod models;
mod monitoring;
mod openapi;
mod overview;
mod routes;
mod snapshots;
mod wire;

pub use access::RateLimit;
pub use bodies::{parse_event_body, parse_item_body, parse_user_body};
pub use error::{ApiError, MAX_DETAILS, MAX_ERROR_BODY_BYTES};
pub use openapi::document as openapi_document;
pub use routes::{router, ServerOptions};

use flywheel_engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves the API on `addr` until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    options: ServerOptions,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(engine, options, listener, shutdown).await
}

/// Serves the API on an already bound listener (tests bind port 0).
pub async fn serve_on(
    engine: Arc<Engine>,
    options: ServerOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_deadline = options.header_deadline;
    let app = router(engine, options);
    listen::run(app, listener, header_deadline, shutdown).await
}
