//! A fault-injecting TCP proxy, in process: one listener on loopback per
//! link, forwarding every connection to one upstream address, with a
//! [`Fault`] that can be changed at any time.
//!
//! - [`Fault::Pass`]: bytes go through as they come.
//! - [`Fault::Partition`]: open connections are closed, new ones are
//!   accepted and closed at once (a refused link).
//! - [`Fault::Delay`]: each chunk is delivered `fixed` plus a random part of
//!   `jitter` after it was read, in order.
//! - [`Fault::Hold`]: connections stay open, bytes are read and kept; when
//!   the fault changes they are released, late, in order.
//! - [`Fault::Blackhole`]: bytes going one way are read and thrown away;
//!   the other way passes.
//!
//! [`FaultProxy::reset`] closes every open connection with a TCP reset
//! (`SO_LINGER` 0). The proxy knows nothing of what it carries (TLS, HTTP,
//! websocket all pass through untouched); its counters say what it did.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::LabError;

/// Which way bytes travel through a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the side that connects) to the upstream server.
    Upstream,
    /// From the upstream server back to the client.
    Downstream,
}

/// What a link does to its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Forward everything.
    #[default]
    Pass,
    /// Close open connections and refuse new ones.
    Partition,
    /// Deliver each chunk `fixed` + a random part of `jitter` late, in order.
    Delay {
        /// The fixed part of the delay.
        fixed: Duration,
        /// The upper bound of the random part.
        jitter: Duration,
    },
    /// Keep every byte until the fault changes, then release it.
    Hold,
    /// Throw away what travels in one direction.
    Blackhole(Direction),
}

/// What a link has done so far.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    held: AtomicU64,
    open: AtomicU64,
}

/// A snapshot of a link's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Connections accepted and forwarded upstream.
    pub accepted: u64,
    /// Connections closed at once (partition, or upstream unreachable).
    pub refused: u64,
    /// Bytes delivered, both directions.
    pub forwarded: u64,
    /// Bytes thrown away (blackhole, or lost with a closed connection).
    pub dropped: u64,
    /// Bytes held right now.
    pub held: u64,
    /// Connections open right now.
    pub open: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct LinkState {
    fault: Fault,
    /// Bumped by each [`FaultProxy::reset`]: connections older than it die.
    resets: u64,
}

/// One link: a loopback listener forwarding to `upstream`. Stops (and
/// closes every connection) when dropped.
pub struct FaultProxy {
    name: String,
    addr: SocketAddr,
    upstream: SocketAddr,
    state: watch::Sender<LinkState>,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`, passing
    /// everything until told otherwise. Runs on the caller's runtime.
    pub async fn start(name: &str, upstream: SocketAddr) -> Result<Self, LabError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| LabError::Proxy {
                link: name.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| LabError::Proxy {
            link: name.to_string(),
            source,
        })?;
        let (state, watched) = watch::channel(LinkState::default());
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, upstream, watched, counters.clone()));
        Ok(Self {
            name: name.to_string(),
            addr,
            upstream,
            state,
            counters,
            task,
        })
    }

    /// The link's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where clients connect (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the link forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Sets what the link does from now on (open connections included).
    pub fn set(&self, fault: Fault) {
        self.state.send_modify(|state| state.fault = fault);
    }

    /// What the link does now.
    pub fn fault(&self) -> Fault {
        self.state.borrow().fault
    }

    /// Back to [`Fault::Pass`]; held bytes are released.
    pub fn heal(&self) {
        self.set(Fault::Pass);
    }

    /// Closes every open connection with a TCP reset; the fault stays.
    pub fn reset(&self) {
        self.state.send_modify(|state| state.resets += 1);
    }

    /// What the link has done so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            held: c.held.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: watch::Receiver<LinkState>,
    counters: Arc<Counters>,
) {
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if state.borrow().fault == Fault::Partition {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                connections.spawn(connection(client, upstream, state.clone(), counters.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Forwards one connection until both sides close, the link is
/// partitioned, or reset.
async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<LinkState>,
    counters: Arc<Counters>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    };
    counters.accepted.fetch_add(1, Ordering::Relaxed);
    counters.open.fetch_add(1, Ordering::Relaxed);
    let born = state.borrow().resets;
    let fds = [client.as_raw_fd(), server.as_raw_fd()];
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Not `into_split`: its write half half-closes when dropped, and a
    // reset must not be preceded by a FIN.
    let (client_read, client_write) = tokio::io::split(client);
    let (server_read, server_write) = tokio::io::split(server);
    let mut pumps = JoinSet::new();
    let up = Pipe::new(Direction::Upstream, &state, &counters);
    let down = Pipe::new(Direction::Downstream, &state, &counters);
    pumps.spawn(up.run(client_read, server_write));
    pumps.spawn(down.run(server_read, client_write));
    let reset = loop {
        tokio::select! {
            done = pumps.join_next() => match done {
                Some(_) => continue,
                None => break None,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    break None;
                }
                let now = *state.borrow_and_update();
                if now.resets != born {
                    break Some(true);
                }
                if now.fault == Fault::Partition {
                    break Some(false);
                }
            }
        }
    };
    if reset == Some(true) {
        // Both sockets are still open: the pumps own their halves.
        fds.into_iter().for_each(linger_zero);
    }
    // Aborting the pumps drops both halves of both sockets.
    pumps.abort_all();
    while pumps.join_next().await.is_some() {}
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// One direction of one connection: a reader stamping chunks with their
/// delivery time, and a writer delivering them when the fault allows.
struct Pipe {
    direction: Direction,
    state: watch::Receiver<LinkState>,
    counters: Arc<Counters>,
}

/// Bytes read and not yet delivered: `held` while alive, `dropped` if
/// dropped undelivered (a closed, partitioned or reset connection).
struct Chunk {
    bytes: Vec<u8>,
    deliver_at: Instant,
    counters: Arc<Counters>,
    delivered: bool,
}

impl Chunk {
    fn new(bytes: &[u8], deliver_at: Instant, counters: &Arc<Counters>) -> Self {
        counters
            .held
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Self {
            bytes: bytes.to_vec(),
            deliver_at,
            counters: counters.clone(),
            delivered: false,
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let n = self.bytes.len() as u64;
        self.counters.held.fetch_sub(n, Ordering::Relaxed);
        let counter = if self.delivered {
            &self.counters.forwarded
        } else {
            &self.counters.dropped
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl Pipe {
    fn new(
        direction: Direction,
        state: &watch::Receiver<LinkState>,
        counters: &Arc<Counters>,
    ) -> Self {
        Self {
            direction,
            state: state.clone(),
            counters: counters.clone(),
        }
    }

    /// When a chunk read now is to be delivered (`last`: the previous
    /// chunk's time, so that order is kept).
    fn deliver_at(fault: Fault, last: Instant) -> Instant {
        match fault {
            Fault::Delay { fixed, jitter } => {
                let bound = u64::try_from(jitter.as_micros()).unwrap_or(u64::MAX);
                let random = rand::thread_rng().gen_range(0..=bound);
                (Instant::now() + fixed + Duration::from_micros(random)).max(last)
            }
            _ => Instant::now().max(last),
        }
    }

    async fn run(self, mut from: ReadHalf<TcpStream>, to: WriteHalf<TcpStream>) {
        let (tx, rx) = mpsc::unbounded_channel::<Chunk>();
        let writer = Writer {
            direction: self.direction,
            state: self.state.clone(),
            to,
            rx,
        };
        // Aborted with this pipe, so that a reset or a partition never
        // lets the writer half-close gracefully.
        let mut writer = AbortOnDrop(tokio::spawn(writer.run()));
        let mut last = Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let fault = self.state.borrow().fault;
            if fault == Fault::Blackhole(self.direction) {
                self.counters.dropped.fetch_add(n as u64, Ordering::Relaxed);
                continue;
            }
            last = Self::deliver_at(fault, last);
            if tx
                .send(Chunk::new(&buf[..n], last, &self.counters))
                .is_err()
            {
                break;
            }
        }
        drop(tx);
        // The writer ends (and half-closes) once it delivered the rest.
        let _ = (&mut writer.0).await;
    }
}

/// A task aborted when its handle drops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The delivering half of a [`Pipe`].
struct Writer {
    direction: Direction,
    state: watch::Receiver<LinkState>,
    to: WriteHalf<TcpStream>,
    rx: mpsc::UnboundedReceiver<Chunk>,
}

impl Writer {
    async fn run(mut self) {
        while let Some(mut chunk) = self.rx.recv().await {
            if !self.deliver(&mut chunk).await {
                return;
            }
        }
        let _ = self.to.shutdown().await;
    }

    /// Waits out a hold and the chunk's delay, then writes it (or throws
    /// it away if the link now blackholes this direction). False when the
    /// connection is gone.
    async fn deliver(&mut self, chunk: &mut Chunk) -> bool {
        while self.state.borrow_and_update().fault == Fault::Hold {
            if self.state.changed().await.is_err() {
                return false;
            }
        }
        tokio::time::sleep_until(chunk.deliver_at).await;
        if self.state.borrow().fault == Fault::Blackhole(self.direction) {
            return true;
        }
        let written = self.to.write_all(&chunk.bytes).await.is_ok();
        chunk.delivered = written;
        written
    }
}

/// Sets `SO_LINGER` to zero on `fd`, so that closing it sends a reset.
fn linger_zero(fd: std::os::fd::RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a plain setsockopt on a socket this connection still owns,
    // with a pointer to a live, correctly sized value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait_until;

    const WAIT: Duration = Duration::from_secs(10);

    /// An echo server on loopback; stops when dropped.
    struct Echo {
        addr: SocketAddr,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn echo() -> Echo {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut set = JoinSet::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                set.spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Echo { addr, task }
    }

    async fn linked() -> (Echo, FaultProxy) {
        let echo = echo().await;
        let proxy = FaultProxy::start("test", echo.addr).await.unwrap();
        (echo, proxy)
    }

    async fn roundtrip(stream: &mut TcpStream, text: &[u8]) -> Vec<u8> {
        stream.write_all(text).await.unwrap();
        let mut back = vec![0; text.len()];
        tokio::time::timeout(WAIT, stream.read_exact(&mut back))
            .await
            .expect("the echo came back")
            .unwrap();
        back
    }

    /// Whether the peer closed or reset `stream` (read gives 0 or an error).
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(WAIT, stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    async fn wait_stats(proxy: &FaultProxy, what: &str, ok: impl Fn(ProxyStats) -> bool) {
        wait_until(WAIT, what, async || Ok(ok(proxy.stats()).then_some(())))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn passes_bytes_both_ways() {
        let (_echo, proxy) = linked().await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut stream, b"hello").await, b"hello");
        assert_eq!(proxy.stats().forwarded, 10);
        assert_eq!(proxy.stats().accepted, 1);
    }

    #[tokio::test]
    async fn a_partition_closes_and_refuses_until_healed() {
        let (_echo, proxy) = linked().await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut open, b"x").await;
        proxy.set(Fault::Partition);
        assert!(closed(&mut open).await, "the open connection is closed");
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(closed(&mut refused).await, "a new connection is refused");
        assert!(proxy.stats().refused >= 1);
        proxy.heal();
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut again, b"back").await, b"back");
    }

    #[tokio::test]
    async fn a_delay_delivers_late_and_in_order() {
        let (_echo, proxy) = linked().await;
        let fixed = Duration::from_millis(150);
        let jitter = Duration::from_millis(50);
        proxy.set(Fault::Delay { fixed, jitter });
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let begun = std::time::Instant::now();
        for part in [b"ab", b"cd", b"ef"] {
            stream.write_all(part).await.unwrap();
        }
        let mut back = [0u8; 6];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"abcdef");
        // Each way is delayed by at least `fixed`.
        assert!(begun.elapsed() >= 2 * fixed, "{:?}", begun.elapsed());
    }

    #[tokio::test]
    async fn a_hold_keeps_bytes_and_releases_them_late() {
        let (_echo, proxy) = linked().await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut stream, b"x").await;
        proxy.set(Fault::Hold);
        stream.write_all(b"held").await.unwrap();
        wait_stats(&proxy, "4 bytes held", |s| s.held == 4).await;
        let mut buf = [0u8; 4];
        assert!(stream.try_read(&mut buf).is_err(), "nothing came back yet");
        proxy.heal();
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held");
        wait_stats(&proxy, "nothing held", |s| s.held == 0).await;
    }

    #[tokio::test]
    async fn a_blackhole_drops_one_way_only() {
        let (_echo, proxy) = linked().await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut stream, b"x").await;
        proxy.set(Fault::Blackhole(Direction::Downstream));
        stream.write_all(b"lost").await.unwrap();
        // The request went up; its echo was thrown away on the way back.
        wait_stats(&proxy, "4 bytes dropped", |s| s.dropped == 4).await;
        assert_eq!(proxy.stats().forwarded, 2 + 4);
        proxy.set(Fault::Blackhole(Direction::Upstream));
        stream.write_all(b"gone").await.unwrap();
        wait_stats(&proxy, "8 bytes dropped", |s| s.dropped == 8).await;
        proxy.heal();
        assert_eq!(roundtrip(&mut stream, b"ok").await, b"ok");
    }

    #[tokio::test]
    async fn a_reset_kills_open_connections_only() {
        let (_echo, proxy) = linked().await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut stream, b"x").await;
        proxy.reset();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(WAIT, stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Err(ref e)) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        wait_stats(&proxy, "no open connection", |s| s.open == 0).await;
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut again, b"new").await, b"new");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_refused() {
        let port = crate::free_port().unwrap();
        let proxy = FaultProxy::start("nowhere", SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(closed(&mut stream).await);
        assert_eq!(proxy.stats().refused, 1);
    }
}
