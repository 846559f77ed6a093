//! The connection loop in front of the router.
//!
//! Every open connection costs a file descriptor, and a client can hold one without ever
//! finishing a request: a request line sent a byte at a time (slowloris), nothing at all, or
//! an idle keep-alive connection left open. Enough of them exhaust the process's descriptors,
//! and then Stripe's deliveries cannot connect either. So:
//!
//! - whenever no request is being handled on a connection, it has a deadline: its request
//!   head must be complete within `header_read_timeout` of the connection opening (or of the
//!   first byte after an idle period), and an idle keep-alive connection is closed after
//!   `idle_timeout`. Once a head is in, the router's own request deadline takes over;
//! - at most `max_connections` are open at once (well below the descriptor limit, which
//!   start-up raises to the hard limit). At the cap, the connection that has waited longest
//!   without a request is closed to make room — one in the middle of a request never is — so
//!   a flood of idle connections cannot keep a real request out.
//!
//! hyper's own `header_read_timeout` is not used: it counts the idle time after a response
//! against the next head's deadline, so the two timeouts could not be set apart.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// File descriptors kept free of client connections for everything else the service opens:
/// database connections (up to 16 on PostgreSQL; three files for each of five SQLite
/// connections), the embedded emulator in dev mode, SMTP, NATS and Stripe connections, the
/// runtime's own descriptors. Each delivery worker adds one more (its outbound socket).
const RESERVED_FDS: u64 = 64;
/// The automatic cap never goes beyond this, however high the descriptor limit.
const AUTO_MAX_CONNECTIONS: u64 = 4096;
/// Nor below this, however low the limit (a warning says so).
const MIN_CONNECTIONS: u64 = 8;

/// How long a connection may go without a request, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Raise the soft limit on open files to the hard limit (the default soft limit, often 1024,
/// is far below what a server may use). Returns the soft limit now in force, `None` when it
/// is unlimited or unknown.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(error) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(%error, "cannot raise the open-file limit to the hard limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap: the configured one, or half of what the descriptor limit leaves after
/// the reserve (at most [`AUTO_MAX_CONNECTIONS`]). A configured cap the limit cannot hold is
/// lowered, with a warning.
pub fn max_connections(configured: Option<u64>, fd_limit: Option<u64>, workers: usize) -> usize {
    let reserve = RESERVED_FDS + workers as u64;
    let available = fd_limit.map(|limit| limit.saturating_sub(reserve));
    let cap = match (configured, available) {
        (Some(wanted), Some(available)) if wanted > available => {
            tracing::warn!(
                wanted,
                available,
                "max_connections is more than the open-file limit leaves; using what it leaves"
            );
            available.max(MIN_CONNECTIONS)
        }
        (Some(wanted), _) => wanted,
        (None, Some(available)) => (available / 2).clamp(MIN_CONNECTIONS, AUTO_MAX_CONNECTIONS),
        (None, None) => AUTO_MAX_CONNECTIONS,
    };
    if available.is_some_and(|a| a < cap) {
        tracing::warn!(
            fd_limit,
            cap,
            "the open-file limit is very low; raise it (ulimit -Hn) for more connections"
        );
    }
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Serve `router` on `listener` until `shutdown` resolves; then stop accepting, let every
/// request in progress finish (idle connections close at once) and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(slots as usize));
    let open = Arc::new(Registry::default());
    let (stopping_tx, stopping) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors (or another transient error): make room and pause
                    // instead of spinning on the error.
                    tracing::warn!(%error, "accepting a connection failed");
                    open.evict_longest_waiting();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = &mut shutdown => break,
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                open.evict_longest_waiting();
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let conn = open.add();
        let task = Connection {
            conn,
            registry: open.clone(),
            limits,
        };
        let router = router.clone();
        let builder = builder.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            task.run(stream, peer, router, &builder, stopping).await;
            drop(permit);
        });
    }

    drop(listener);
    let _ = stopping_tx.send(true);
    // Every connection holds a permit until it ends: all of them back means all closed.
    let _ = permits.acquire_many(slots).await;
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for (the rest of) a request head since `since`.
    Head { since: Instant },
    /// A response went out at `since`; nothing new has arrived.
    Idle { since: Instant },
    /// A request is being handled.
    Request,
}

struct Conn {
    id: u64,
    phase: Mutex<Phase>,
    /// The phase changed: the deadline must be worked out again.
    changed: Notify,
    /// Close now to make room, unless a request is in progress.
    evict: Notify,
}

impl Conn {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: after an idle period they start the next request head.
    fn on_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// Since when the connection has been waiting without a request (`None` during one).
    fn waiting_since(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Head { since } | Phase::Idle { since } => Some(since),
            Phase::Request => None,
        }
    }

    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match self.phase() {
            Phase::Head { since } => Some(since + limits.header_read_timeout),
            Phase::Idle { since } => Some(since + limits.idle_timeout),
            Phase::Request => None,
        }
    }

    /// Resolves when the connection's deadline has passed.
    async fn expired(&self, limits: &Limits) {
        loop {
            // Registered before the phase is read, so a change in between is not missed.
            let changed = self.changed.notified();
            match self.deadline(limits) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Resolves when asked to make room while no request is in progress.
    async fn evicted(&self) {
        loop {
            self.evict.notified().await;
            if self.waiting_since().is_some() {
                return;
            }
        }
    }
}

/// Marks a request as in progress on its connection until dropped.
struct InRequest(Arc<Conn>);

impl InRequest {
    fn begin(conn: &Arc<Conn>) -> InRequest {
        conn.set(Phase::Request);
        InRequest(conn.clone())
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0.set(Phase::Idle {
            since: Instant::now(),
        });
    }
}

/// The open connections, to choose one to close at the cap.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn add(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
            changed: Notify::new(),
            evict: Notify::new(),
        });
        self.lock().insert(conn.id, conn.clone());
        conn
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Close the connection that has waited longest without a request, if there is one.
    fn evict_longest_waiting(&self) {
        let longest = self
            .lock()
            .values()
            .filter_map(|c| Some((c.waiting_since()?, c.clone())))
            .min_by_key(|(since, _)| *since);
        if let Some((_, conn)) = longest {
            tracing::debug!("at the connection limit: closing the connection idle the longest");
            conn.evict.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One accepted connection, served until it closes, times out or is asked to make room.
struct Connection {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    limits: Limits,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        peer: std::net::SocketAddr,
        router: Router,
        builder: &hyper::server::conn::http1::Builder,
        mut stopping: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Watched {
            inner: stream,
            conn: self.conn.clone(),
        });
        let conn = self.conn.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_request = InRequest::begin(&conn);
            let router = router.clone();
            async move {
                // The peer address reaches handlers as axum's `ConnectInfo` (the console's
                // login throttle and audit log use it).
                let mut request = request.map(axum::body::Body::new);
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let response = router.oneshot(request).await;
                drop(in_request);
                response
            }
        });
        let served = builder.serve_connection(io, service);
        tokio::pin!(served);
        let mut draining = *stopping.borrow();
        if draining {
            served.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                _ = self.conn.expired(&self.limits) => {
                    tracing::debug!("closing a connection that sent no complete request in time");
                    break;
                }
                _ = self.conn.evicted() => break,
                _ = stopping.changed(), if !draining => {
                    draining = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        }
        self.registry.remove(self.conn.id);
    }
}

/// The socket, noting when bytes arrive (they start a request head after an idle period).
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.on_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_cap_leaves_room_below_the_descriptor_limit() {
        // 128 descriptors, 16 delivery workers: (128 - 80) / 2.
        assert_eq!(max_connections(None, Some(128), 16), 24);
        assert_eq!(max_connections(None, Some(1_048_576), 16), 4096);
        assert_eq!(max_connections(None, Some(40), 16), 8);
        assert_eq!(max_connections(None, None, 16), 4096);
    }

    #[test]
    fn a_configured_cap_is_kept_unless_the_limit_cannot_hold_it() {
        assert_eq!(max_connections(Some(100), Some(100_000), 16), 100);
        assert_eq!(max_connections(Some(1000), Some(128), 16), 48);
        assert_eq!(max_connections(Some(1000), None, 16), 1000);
    }
}
