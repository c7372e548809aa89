//! The accept loop: one hyper HTTP/1 connection per client, with a deadline for the
//! request head.
//!
//! `axum::serve` offers no way to bound how long a client may take to send a request
//! line and headers, so a client sending a head byte by byte (or half a request line,
//! then nothing) would hold its connection and task for ever. Here hyper's header read
//! timeout ([`ServerOptions::header_deadline`](crate::ServerOptions)) closes such a
//! connection; the body deadline (`body_deadline`, a 408) covers what follows the head.
//! On shutdown the listener closes, every connection finishes the request it is
//! serving, and the loop returns once they are all gone.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long to wait after an accept error that is not about one connection (e.g. too
/// many open files) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves, then drains connections.
pub(crate) async fn run(
    app: Router,
    listener: TcpListener,
    header_deadline: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_deadline);
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Reap finished connections so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            builder.clone(),
            app.clone(),
            stream,
            closed.clone(),
        ));
    }
    drop(listener);
    closing.send_replace(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection until the client leaves, a deadline passes, or shutdown.
async fn serve_connection(
    builder: http1::Builder,
    app: Router,
    stream: TcpStream,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(app);
    let mut connection = pin!(builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades());
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!("connection ended: {error}");
            }
            return;
        }
        _ = closing.wait_for(|closing| *closing) => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!("connection ended during shutdown: {error}");
    }
}

/// Logs an accept error; waits a little when it is not about one connection.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection failed: {error}");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}
