//! The accept loop: every connection is served as HTTP/1.1 by hyper with a header-read
//! timeout (a client that does not finish sending a request's line and headers in time, or
//! leaves a kept-alive connection idle that long, is disconnected), and stops gracefully
//! (requests in flight finish, idle connections close) when the handle asks. `axum::serve`
//! cannot set that timeout, hence this loop; the request-body timeout is enforced by the
//! observability middleware (`observe::middleware`), which answers 408.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::serve::Listener as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, watch};

use crate::faults::Peer;
use crate::observe::CountingListener;

/// Serves `app` on `listener` until `stop` fires (or is dropped), then lets every open
/// connection finish its request in flight and waits for them.
pub(crate) async fn serve(
    mut listener: CountingListener,
    app: Router,
    header_read_timeout: Duration,
    stop: oneshot::Receiver<()>,
) {
    // Every connection task holds a receiver: a change (or the sender's drop) asks it to shut
    // down gracefully; the sender's `closed` tells when the last one ended.
    let (signal_tx, signal_rx) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(Peer(peer)));
            let mut router = router.clone();
            async move {
                let response: Result<Response, Infallible> =
                    tower_service::Service::call(&mut router, req.map(Body::new)).await;
                response
            }
        });
        let mut signal = signal_rx.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                // Errors (a client gone, a header timeout) end only this connection.
                _ = conn.as_mut() => return,
                _ = signal.changed() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
            drop(signal);
        });
    }
    drop(listener);
    let _ = signal_tx.send(());
    drop(signal_rx);
    signal_tx.closed().await;
}
