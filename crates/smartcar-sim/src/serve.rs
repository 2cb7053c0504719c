//! The accept loop: every connection is served by hyper, as HTTP/1.1 or, when it opens with
//! HTTP/2's connection preface, as HTTP/2 over plain TCP (h2c with prior knowledge; no TLS and
//! no `Upgrade: h2c`), on the same port. The loop stops gracefully (requests in flight finish,
//! idle connections close) when the handle asks.
//!
//! - HTTP/1.1: a header-read timeout (a client that does not finish sending a request's line
//!   and headers in time, or leaves a kept-alive connection idle that long, is disconnected).
//!   `axum::serve` cannot set that timeout, hence this loop.
//! - Both: a client that connects and sends nothing for that long is disconnected (the first
//!   bytes, read to tell the protocols apart, are read under the same timeout; a client that
//!   sends them just before it may take up to twice the timeout in all for its headers).
//! - HTTP/2: up to [`H2_MAX_CONCURRENT_STREAMS`] requests in flight on one connection; a
//!   connection with no request in flight for the header-read timeout is closed gracefully
//!   (GOAWAY; a response still streaming is finished first).
//!
//! The request-body timeout is enforced by the observability middleware
//! (`observe::middleware`), which answers 408, whatever the protocol. The connection faults
//! were written for HTTP/1.1: over HTTP/2 a garbage fault breaks the whole connection (every
//! stream on it) and a reset fault's failing body ends only its own stream (hyper resets it).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::serve::Listener as _;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::faults::Peer;
use crate::observe::CountingListener;

/// Streams (requests) one HTTP/2 connection may have open at once. hyper's default is 200;
/// above 1 000 so that the fleet benchmark's 1 000 slow commands
/// (`crates/smartcar/benches/fleet_commands.rs`) share one connection instead of queueing in
/// the client (a client past the limit waits for a stream to end).
pub(crate) const H2_MAX_CONCURRENT_STREAMS: u32 = 1024;

/// What a client opening an HTTP/2 connection with prior knowledge sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `app` on `listener` until `stop` fires (or is dropped), then lets every open
/// connection finish its requests in flight and waits for them.
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
        let (mut io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let app = app.clone();
        let mut signal = signal_rx.clone();
        tokio::spawn(async move {
            // Which protocol: the first bytes, under the header-read timeout.
            let (http2, prefix) = tokio::select! {
                sniffed = tokio::time::timeout(header_read_timeout, sniff(&mut io)) => {
                    match sniffed {
                        Ok(Ok(sniffed)) => sniffed,
                        // Silent that long, or gone: closed without an answer.
                        Err(_) | Ok(Err(_)) => return,
                    }
                }
                _ = signal.changed() => return,
            };
            let io = TokioIo::new(Rewind { prefix, io });
            if http2 {
                serve_h2(io, app, peer, header_read_timeout, signal).await;
            } else {
                serve_h1(io, app, peer, header_read_timeout, signal).await;
            }
        });
    }
    drop(listener);
    let _ = signal_tx.send(());
    drop(signal_rx);
    signal_tx.closed().await;
}

/// One HTTP/1.1 connection: hyper's header-read timeout, graceful shutdown on `signal`.
async fn serve_h1<I>(
    io: TokioIo<I>,
    app: Router,
    peer: SocketAddr,
    header_read_timeout: Duration,
    mut signal: watch::Receiver<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder.serve_connection(io, service(app, peer, None));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // Errors (a client gone, a header timeout) end only this connection.
        _ = conn.as_mut() => return,
        _ = signal.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// One HTTP/2 connection: many streams at once, closed gracefully when idle for
/// `idle_timeout` or when `signal` asks.
async fn serve_h2<I>(
    io: TokioIo<I>,
    app: Router,
    peer: SocketAddr,
    idle_timeout: Duration,
    mut signal: watch::Receiver<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    let conn = builder.serve_connection(io, service(app, peer, Some(activity.clone())));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // Errors (a client gone, a protocol error) end only this connection.
        _ = conn.as_mut() => return,
        _ = signal.changed() => {}
        _ = activity.idle(idle_timeout) => {}
    }
    conn.as_mut().graceful_shutdown();
    // GOAWAY: the streams in flight finish, then the connection closes. A peer that never
    // completed the handshake is dropped once idle for `idle_timeout` more.
    activity.touch();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = activity.idle(idle_timeout) => {}
    }
}

/// The service of one connection: `app`, with the peer's address as axum's connect info;
/// with `activity`, every request counts as in flight until its response's body has been sent
/// (or dropped).
fn service(
    app: Router,
    peer: SocketAddr,
    activity: Option<Arc<Activity>>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = Response,
    Error = Infallible,
    Future: Send + 'static,
> {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(Peer(peer)));
        let mut router = app.clone();
        let in_flight = activity.as_ref().map(|a| InFlight::new(a.clone()));
        async move {
            let Ok(response): Result<Response, Infallible> =
                tower_service::Service::call(&mut router, req.map(Body::new)).await;
            Ok(match in_flight {
                Some(in_flight) => response.map(|body| {
                    Body::new(Tracked {
                        body,
                        _in_flight: in_flight,
                    })
                }),
                None => response,
            })
        }
    })
}

/// Reads until the bytes read are HTTP/2's preface (`true`) or cannot begin it (`false`, as
/// soon as one byte differs: one byte for most HTTP/1 requests), or the peer closed. Returns
/// the bytes read, which the connection's protocol reads again first ([`Rewind`]).
async fn sniff<I: AsyncRead + Unpin>(io: &mut I) -> std::io::Result<(bool, Vec<u8>)> {
    let mut read = Vec::with_capacity(H2_PREFACE.len());
    let mut chunk = [0u8; H2_PREFACE.len()];
    while read.len() < H2_PREFACE.len() {
        let n = io.read(&mut chunk[..H2_PREFACE.len() - read.len()]).await?;
        if n == 0 {
            return Ok((false, read));
        }
        read.extend_from_slice(&chunk[..n]);
        if !H2_PREFACE.starts_with(&read) {
            return Ok((false, read));
        }
    }
    Ok((true, read))
}

/// A connection whose first bytes, already read by [`sniff`], are read again.
struct Rewind<I> {
    prefix: Vec<u8>,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() && buf.remaining() > 0 {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.drain(..n);
            if this.prefix.is_empty() {
                this.prefix = Vec::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Requests in flight on one HTTP/2 connection and when that number last changed.
struct Activity(Mutex<(usize, Instant)>);

impl Activity {
    fn new() -> Self {
        Activity(Mutex::new((0, Instant::now())))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Restarts the idle clock.
    fn touch(&self) {
        self.state().1 = Instant::now();
    }

    /// Ends once no request has been in flight for `timeout`.
    async fn idle(&self, timeout: Duration) {
        loop {
            let (in_flight, since) = *self.state();
            let now = Instant::now();
            let until = if in_flight == 0 {
                if now >= since + timeout {
                    return;
                }
                since + timeout
            } else {
                now + timeout
            };
            tokio::time::sleep_until(until).await;
        }
    }
}

/// A response body that keeps its request in flight until it ends or is dropped.
struct Tracked {
    body: Body,
    /// Held for its `Drop`.
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// One request in flight on an HTTP/2 connection, until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        let mut state = activity.state();
        *state = (state.0 + 1, Instant::now());
        drop(state);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        *state = (state.0.saturating_sub(1), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::H2_PREFACE;
    use crate::{Fault, Simulator};

    fn h2() -> reqwest::Client {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn http1_and_h2c_share_the_port_and_h2_takes_more_than_200_streams() {
        let sim = Simulator::start().await.unwrap();
        let url = format!("{}/healthz", sim.base_url());
        let accepted = sim.connections_accepted();
        let r = reqwest::Client::new().get(&url).send().await.unwrap();
        assert_eq!(
            (r.status().as_u16(), r.version()),
            (200, reqwest::Version::HTTP_11)
        );

        // 300 slow requests at once (hyper's default would be 200 streams): all reach the
        // handler long before the first can be answered, on one connection.
        let delay = Duration::from_secs(3);
        sim.faults()
            .inject(Fault::delay(delay))
            .on("/healthz")
            .always();
        let client = h2();
        let before = sim.total_requests();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..300 {
            let (client, url) = (client.clone(), url.clone());
            tasks.spawn(async move {
                let r = client.get(url).send().await.unwrap();
                (r.status().as_u16(), r.version())
            });
        }
        while sim.total_requests() < before + 300 {
            assert!(
                started.elapsed() < delay,
                "only {} of 300 requests in flight at once",
                sim.total_requests() - before
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while let Some(answer) = tasks.join_next().await {
            assert_eq!(answer.unwrap(), (200, reqwest::Version::HTTP_2));
        }
        assert_eq!(sim.connections_accepted(), accepted + 2, "one per protocol");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn silent_and_idle_h2_connections_are_closed_busy_ones_are_not() {
        let sim = Simulator::builder()
            .header_read_timeout(Duration::from_secs(1))
            .start()
            .await
            .unwrap();

        // The preface, then nothing: closed.
        let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
        stream.write_all(H2_PREFACE).await.unwrap();
        let started = Instant::now();
        let mut received = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
            .await
            .expect("the server kept a silent HTTP/2 connection open")
            .ok();
        assert!(started.elapsed() >= Duration::from_millis(900));

        // A request slower than the idle timeout is not cut; the connection, idle afterwards,
        // is closed, and the next request opens another one.
        sim.faults()
            .inject(Fault::delay(Duration::from_millis(1500)))
            .on("/healthz")
            .once();
        let client = h2();
        let url = format!("{}/healthz", sim.base_url());
        let accepted = sim.connections_accepted();
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(sim.connections_accepted(), accepted + 1);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
        assert_eq!(sim.connections_accepted(), accepted + 2);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn graceful_shutdown_finishes_h2_streams_in_flight() {
        let sim = Simulator::start().await.unwrap();
        let base = sim.base_url();
        sim.faults()
            .inject(Fault::delay(Duration::from_millis(300)))
            .on("/healthz")
            .always();
        let client = h2();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (client, url) = (client.clone(), format!("{base}/healthz"));
            tasks.spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) });
        }
        for _ in 0..500 {
            if sim.total_requests() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(sim.total_requests(), 3);
        sim.shutdown().await;
        while let Some(status) = tasks.join_next().await {
            assert_eq!(status.unwrap().unwrap(), 200);
        }
        assert!(
            client.get(format!("{base}/healthz")).send().await.is_err(),
            "nothing listens any more"
        );
    }
}
