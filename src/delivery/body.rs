//! The body of large file responses.
//!
//! - Speed: on a plain HTTP/1 connection the file goes with sendfile(2), from the page cache
//!   to the socket with no copy through the process, as nginx sends it; the vendored
//!   actix-http writes the head first and then lets the body write itself (`poll_write_direct`,
//!   a private-media patch), with `TCP_CORK` set while it goes (nginx's `tcp_nopush`: only
//!   full segments; without it one stream reached about 0.8 of nginx). Elsewhere (HTTP/2, a body collected in memory), 1 MiB positioned
//!   reads on the blocking pool handed to the connection in 32 KiB slices: NamedFile's own
//!   reader uses 64 KiB reads, one pool hop each, which caps a big download near 1.1 GB/s on
//!   these machines (the README's Performance section has the measurements).
//! - Memory per slow client: sendfile holds nothing but what the socket buffer takes. On the
//!   read path, actix copies every chunk it is given into the connection's write buffer and
//!   keeps it there until the socket takes it, so a client that stops reading holds one chunk.
//!   Slices keep that to 32 KiB; the rest of our 1 MiB read is dropped by the watchdog once
//!   the client has not asked for more for a second (and read again if it does), so a stalled
//!   download holds about 100 KiB, not 1 MiB.
//! - Time: a client that takes nothing for `SEND_TIMEOUT` (nginx's `send_timeout`) has its
//!   connection shut down by the watchdog, which frees the connection and its descriptor;
//!   when big downloads hold half the connections the server takes, after 5 s already.
//! - A page that is not in the page cache is read by sendfile on the worker thread, as nginx
//!   does without `aio threads`: at most `SENDFILE_MAX_CHUNK` per call, and the file is read
//!   ahead sequentially, so a cold file costs a disk read per chunk, not per page.

use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use tokio::io::Interest;
use tokio::task::JoinHandle;

/// Bytes read from the file per trip to the blocking pool.
const CHUNK: u64 = 1024 * 1024;
/// Bytes handed to the connection at a time.
const SLICE: usize = 32 * 1024;
/// Bytes one sendfile(2) call may send (nginx's `sendfile_max_chunk` default): a fast client
/// cannot keep the worker in one call for long, and a cold file is read this much at a time.
const SENDFILE_MAX_CHUNK: usize = 2 * 1024 * 1024;
/// All downloads together hold at most this much in 1 MiB reads; past it, reads are one
/// slice long. A flood of downloads that stall at once (each read ahead while their socket
/// buffers filled) then cannot grow the heap by a chunk each.
const READ_AHEAD_BUDGET: usize = 24 * 1024 * 1024;
static READ_AHEAD_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// A share of the read-ahead budget, returned when dropped.
struct BudgetShare(usize);

impl BudgetShare {
    fn take(bytes: usize) -> Option<Self> {
        READ_AHEAD_IN_USE
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + bytes <= READ_AHEAD_BUDGET).then_some(used + bytes)
            })
            .ok()
            .map(|_| Self(bytes))
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        READ_AHEAD_IN_USE.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// A client that asks for nothing this long loses the unsent rest of our read buffer.
const IDLE_RELEASE: Duration = Duration::from_secs(1);
/// A client that takes no byte this long loses its connection.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Under pressure (more big downloads in flight than half the connections the server takes),
/// a client that takes nothing for this long loses its connection instead, so stalled
/// downloads cannot hold every connection (and keep `/healthz` out) for a whole minute.
pub const PRESSED_SEND_TIMEOUT: Duration = Duration::from_secs(5);
static DOWNLOADS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static PRESSURE_AT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets the number of big downloads in flight past which `PRESSED_SEND_TIMEOUT` applies.
pub fn set_pressure_threshold(downloads: usize) {
    PRESSURE_AT.store(downloads.max(1), Ordering::Relaxed);
}

fn send_timeout() -> Duration {
    if DOWNLOADS_IN_FLIGHT.load(Ordering::Relaxed) > PRESSURE_AT.load(Ordering::Relaxed) {
        PRESSED_SEND_TIMEOUT
    } else {
        SEND_TIMEOUT
    }
}

/// The socket a request came on, recorded at connect (see `startup.rs`), so the watchdog can
/// shut a stalled connection down and a body can send with sendfile(2). A duplicate of the
/// connection's descriptor: shutdown(2) acts on the socket, whichever descriptor names it,
/// and owning one makes the call safe (a raw number could name another file once the
/// connection is gone). One per connection, whatever it downloads (the connection limit
/// counts on it: `limits`).
#[derive(Debug, Clone)]
pub struct ConnectionSocket(Rc<RefCell<Duplicate>>);

#[derive(Debug)]
enum Duplicate {
    /// As made at connect.
    Plain(OwnedFd),
    /// Registered with the runtime for write readiness by the connection's first big
    /// download, and kept so for the connection's later ones.
    Registered(tokio::net::TcpStream),
    /// The runtime refused it (the descriptor went with the refusal).
    Gone,
}

impl ConnectionSocket {
    /// Duplicates `socket`'s descriptor; `None` when the process has none to spare (the
    /// connection is then served without a send timeout, as it was before one existed).
    pub fn of(socket: &impl std::os::fd::AsFd) -> Option<Self> {
        rustix::io::fcntl_dupfd_cloexec(socket, 0)
            .ok()
            .map(|fd| Self(Rc::new(RefCell::new(Duplicate::Plain(fd)))))
    }

    /// Whether the socket is registered for write readiness (registering it if not), so a
    /// body can send with sendfile(2) and wait while the socket's buffer is full.
    fn for_direct_writes(&self) -> bool {
        let mut duplicate = self.0.borrow_mut();
        if let Duplicate::Plain(_) = &*duplicate
            && let Duplicate::Plain(fd) = std::mem::replace(&mut *duplicate, Duplicate::Gone)
            && let Ok(registered) = tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd))
        {
            *duplicate = Duplicate::Registered(registered);
        }
        matches!(&*duplicate, Duplicate::Registered(_))
    }

    /// `f` with the registered socket; `None` if it is not registered.
    fn registered<T>(&self, f: impl FnOnce(&tokio::net::TcpStream) -> T) -> Option<T> {
        match &*self.0.borrow() {
            Duplicate::Registered(socket) => Some(f(socket)),
            _ => None,
        }
    }

    fn shut_down(&self) {
        // An error means the connection is already gone: there is nothing left to end.
        let _ = match &*self.0.borrow() {
            Duplicate::Plain(fd) => rustix::net::shutdown(fd, rustix::net::Shutdown::Both),
            Duplicate::Registered(socket) => {
                rustix::net::shutdown(socket, rustix::net::Shutdown::Both)
            }
            Duplicate::Gone => Ok(()),
        };
    }
}

/// Where the body of a 200 or 206 answer starts in the file and how long it is.
pub fn span_of(response: &HttpResponse) -> Option<(u64, u64)> {
    if let Some(range) = response.headers().get(header::CONTENT_RANGE) {
        // NamedFile writes `bytes START-END/TOTAL`.
        let spec = range.to_str().ok()?.strip_prefix("bytes ")?;
        let (span, _) = spec.split_once('/')?;
        let (start, end) = span.split_once('-')?;
        let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
        return (end >= start).then(|| (start, end - start + 1));
    }
    match response.body().size() {
        BodySize::Sized(length) => Some((0, length)),
        _ => None,
    }
}

/// What the body and its watchdog share (one worker thread: `Rc`, no locks).
struct Shared {
    /// Read from the file, not yet handed over.
    buffered: Bytes,
    /// The budget `buffered` was read under, if it was a big read.
    share: Option<BudgetShare>,
    /// When the connection last asked for more.
    last_asked: Instant,
    /// The read on the blocking pool, if one was started. While it runs, a slow disk is not
    /// a slow client; once it has finished, its bytes wait for a client that may never ask.
    read: Option<JoinHandle<std::io::Result<Bytes>>>,
    /// The budget the read in flight was started under.
    pending_share: Option<BudgetShare>,
    /// The watchdog shut the connection down.
    timed_out: bool,
    /// Counted in `DOWNLOADS_IN_FLIGHT`: until the body ends or the watchdog cuts it, so the
    /// watchdogs of other stalled downloads, ticking at the same moment, see the cut at once
    /// (and cut only as many as the pressure asks for, not every one of them).
    in_flight: bool,
    /// The watchdog released a buffer: this client is slow, read for it a slice at a time.
    slow: bool,
}

/// `length` bytes of `file` from `offset`, as described at the top of this module.
/// `socket` is the connection's, when known (without it, no watchdog and no sendfile).
pub fn sized_file_body(
    file: File,
    offset: u64,
    length: u64,
    socket: Option<ConnectionSocket>,
) -> FileBody {
    let shared = Rc::new(RefCell::new(Shared {
        buffered: Bytes::new(),
        share: None,
        last_asked: Instant::now(),
        read: None,
        pending_share: None,
        timed_out: false,
        in_flight: true,
        slow: false,
    }));
    let direct = socket.clone().filter(ConnectionSocket::for_direct_writes);
    if direct.is_some() {
        // Doubles the kernel's read-ahead window for the file; advice only, so a refusal
        // changes nothing but speed.
        let _ = rustix::fs::fadvise(
            &file,
            offset,
            std::num::NonZeroU64::new(length),
            rustix::fs::Advice::Sequential,
        );
    }
    // Only a real connection has a socket, and it is served on an actix worker, where local
    // tasks can be spawned.
    let watchdog = socket.map(|socket| actix_web::rt::spawn(watch(Rc::clone(&shared), socket)));
    DOWNLOADS_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    FileBody {
        file: Arc::new(file),
        next_unsent: offset,
        end: offset + length,
        length,
        shared,
        read_inline: length <= CHUNK,
        watchdog,
        direct,
        corked: false,
    }
}

async fn watch(shared: Rc<RefCell<Shared>>, socket: ConnectionSocket) {
    loop {
        actix_web::rt::time::sleep(IDLE_RELEASE).await;
        let mut state = shared.borrow_mut();
        if state.read.as_ref().is_some_and(|read| !read.is_finished()) {
            continue;
        }
        let idle = state.last_asked.elapsed();
        // A finished read counts as buffered: nobody polls for its bytes while the client
        // takes nothing (dropping the handle drops them).
        if idle >= IDLE_RELEASE && (!state.buffered.is_empty() || state.read.is_some()) {
            state.buffered = Bytes::new();
            state.share = None;
            state.read = None;
            state.pending_share = None;
            state.slow = true;
        }
        if idle >= send_timeout() {
            state.timed_out = true;
            if std::mem::take(&mut state.in_flight) {
                DOWNLOADS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
            }
            // The connection's owner then sees a failed write and drops the connection.
            socket.shut_down();
            tracing::info!(
                idle_secs = idle.as_secs(),
                "closed a download the client stopped reading"
            );
            return;
        }
    }
}

/// A span of a file as a response body; see the top of this module.
pub struct FileBody {
    file: Arc<File>,
    /// File offset of the next byte to hand over.
    next_unsent: u64,
    end: u64,
    length: u64,
    shared: Rc<RefCell<Shared>>,
    /// The whole body fits one read: read it right here, which is cheaper than a hop to the
    /// blocking pool when the page cache has the file (it usually does); in slices too, when
    /// the read-ahead budget is spent.
    read_inline: bool,
    watchdog: Option<actix_web::rt::task::JoinHandle<()>>,
    /// The connection's socket, for sendfile(2).
    direct: Option<ConnectionSocket>,
    /// `TCP_CORK` is set on the socket (and must be cleared when the body ends).
    corked: bool,
}

impl Drop for FileBody {
    fn drop(&mut self) {
        self.uncork();
        if std::mem::take(&mut self.shared.borrow_mut().in_flight) {
            DOWNLOADS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.abort();
        }
    }
}

impl MessageBody for FileBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.length)
    }

    fn writes_direct(&self) -> bool {
        self.direct.is_some()
    }

    fn poll_write_direct(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<u64>>> {
        let this = &mut *self;
        if this.next_unsent >= this.end {
            this.uncork();
            return Poll::Ready(None);
        }
        if let Err(e) = this.asked() {
            return Poll::Ready(Some(Err(e)));
        }
        if !this.corked {
            // Full segments only while the file goes (nginx's `tcp_nopush`); the last
            // partial one leaves when the body ends.
            this.corked = this
                .direct
                .as_ref()
                .and_then(|socket| {
                    socket.registered(|s| rustix::net::sockopt::set_tcp_cork(s, true).is_ok())
                })
                .unwrap_or(false);
        }
        let Some(socket) = this.direct.as_ref() else {
            return Poll::Ready(Some(Err(std::io::Error::other(
                "this body has no socket to write to",
            ))));
        };
        loop {
            let count = (this.end - this.next_unsent).min(SENDFILE_MAX_CHUNK as u64) as usize;
            let mut offset = this.next_unsent;
            let file = &this.file;
            let sent = socket.registered(|socket| {
                match socket.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
                // On a full socket buffer `try_io` clears the readiness, and the next poll
                // waits.
                Poll::Ready(socket.try_io(Interest::WRITABLE, || {
                    rustix::fs::sendfile(socket, &**file, Some(&mut offset), count)
                        .map_err(std::io::Error::from)
                }))
            });
            let sent = match sent {
                Some(Poll::Ready(sent)) => sent,
                Some(Poll::Pending) => return Poll::Pending,
                None => Err(std::io::Error::other("the socket is not registered")),
            };
            match sent {
                Ok(0) => {
                    this.end = this.next_unsent;
                    return Poll::Ready(Some(Err(shrank())));
                }
                Ok(sent) => {
                    this.next_unsent += sent as u64;
                    return Poll::Ready(Some(Ok(sent as u64)));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    this.end = this.next_unsent;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<Bytes>>> {
        let this = &mut *self;
        loop {
            if let Err(e) = this.asked() {
                return Poll::Ready(Some(Err(e)));
            }
            {
                let mut shared = this.shared.borrow_mut();
                if !shared.buffered.is_empty() {
                    let take = shared.buffered.len().min(SLICE);
                    let slice = shared.buffered.split_to(take);
                    if shared.buffered.is_empty() {
                        shared.share = None;
                    }
                    this.next_unsent += slice.len() as u64;
                    return Poll::Ready(Some(Ok(slice)));
                }
            }
            let mut shared = this.shared.borrow_mut();
            if let Some(read) = shared.read.as_mut() {
                let result = match Pin::new(read).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(joined) => joined
                        .map_err(|e| std::io::Error::other(e.to_string()))
                        .and_then(|r| r),
                };
                shared.read = None;
                shared.share = shared.pending_share.take();
                match result {
                    Ok(bytes) => shared.buffered = bytes,
                    Err(e) => {
                        // End the stream after the error: the client sees a cut-off body.
                        this.end = this.next_unsent;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                continue;
            }
            if this.next_unsent >= this.end {
                return Poll::Ready(None);
            }
            let (file, position) = (Arc::clone(&this.file), this.next_unsent);
            let left = this.end - position;
            let big = (left.min(CHUNK) as usize).max(SLICE);
            let share = if shared.slow {
                None
            } else {
                BudgetShare::take(big)
            };
            let want = match share {
                Some(_) => left.min(CHUNK),
                None => left.min(SLICE as u64),
            };
            if this.read_inline {
                match read_exact_at(&file, position, want) {
                    Ok(bytes) => {
                        shared.buffered = bytes;
                        shared.share = share;
                    }
                    Err(e) => {
                        this.end = this.next_unsent;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                continue;
            }
            shared.pending_share = share;
            shared.read = Some(tokio::task::spawn_blocking(move || {
                read_exact_at(&file, position, want)
            }));
        }
    }
}

impl FileBody {
    fn uncork(&mut self) {
        if std::mem::take(&mut self.corked)
            && let Some(socket) = self.direct.as_ref()
        {
            // Sends what is held back; an error means the connection is gone.
            let _ = socket.registered(|s| rustix::net::sockopt::set_tcp_cork(s, false));
        }
    }

    /// The connection asked for more: the watchdog's clock restarts, unless it already
    /// shut the connection down.
    fn asked(&self) -> std::io::Result<()> {
        let mut shared = self.shared.borrow_mut();
        shared.last_asked = Instant::now();
        if shared.timed_out {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ));
        }
        Ok(())
    }
}

fn shrank() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the file became shorter while it was sent",
    )
}

fn read_exact_at(file: &File, position: u64, want: u64) -> std::io::Result<Bytes> {
    let mut buffer = vec![0u8; want as usize];
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], position + filled as u64) {
            Ok(0) => return Err(shrank()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn reads_exactly_the_span() {
        let mut tmp = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        tmp.write_all(&data).unwrap();
        let offset = CHUNK - 5;
        let length = CHUNK * 2 + 9;
        let body = sized_file_body(tmp, offset, length, None);
        assert_eq!(body.size(), BodySize::Sized(length));
        let read = actix_web::body::to_bytes(body).await.unwrap();
        assert_eq!(read, &data[offset as usize..(offset + length) as usize]);
    }

    /// A connected pair on loopback: the server's end as a request's `ConnectionSocket`,
    /// and the client's end to read from.
    async fn connection() -> (tokio::net::TcpStream, ConnectionSocket, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let server = tokio::net::TcpStream::from_std(server).unwrap();
        let socket = ConnectionSocket::of(&server).unwrap();
        (server, socket, client)
    }

    /// Writes the body as the HTTP/1 dispatcher does when it writes direct.
    async fn write_direct(mut body: FileBody) -> std::io::Result<u64> {
        assert!(body.writes_direct());
        let mut total = 0;
        while let Some(written) =
            std::future::poll_fn(|cx| Pin::new(&mut body).poll_write_direct(cx)).await
        {
            total += written?;
        }
        Ok(total)
    }

    #[actix_web::test]
    async fn sendfile_writes_exactly_the_span_to_the_socket() {
        let mut tmp = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(9 * SENDFILE_MAX_CHUNK + 3))
            .map(|i| (i % 253) as u8)
            .collect();
        tmp.write_all(&data).unwrap();
        let (offset, length) = (
            SENDFILE_MAX_CHUNK as u64 + 7,
            7 * SENDFILE_MAX_CHUNK as u64 + 5,
        );
        let (_server, socket, mut client) = connection().await;
        // The client reads while the body writes: more than a socket buffer goes through.
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; length as usize];
            std::io::Read::read_exact(&mut client, &mut got).unwrap();
            got
        });
        let body = sized_file_body(tmp, offset, length, Some(socket));
        assert_eq!(body.size(), BodySize::Sized(length));
        assert_eq!(write_direct(body).await.unwrap(), length);
        let got = reader.join().unwrap();
        assert!(got == data[offset as usize..(offset + length) as usize]);
    }

    #[actix_web::test]
    async fn the_socket_is_corked_while_the_file_goes_and_uncorked_at_its_end() {
        let mut tmp = tempfile::tempfile().unwrap();
        let length = 3 * SENDFILE_MAX_CHUNK + 1001;
        tmp.write_all(&vec![7u8; length]).unwrap();
        let (server, socket, mut client) = connection().await;
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; length];
            std::io::Read::read_exact(&mut client, &mut got).unwrap();
            got
        });
        let mut body = sized_file_body(tmp, 0, length as u64, Some(socket));
        let corked = || rustix::net::sockopt::tcp_cork(&server).unwrap();
        assert!(!corked());
        let mut sent = 0;
        while let Some(written) =
            std::future::poll_fn(|cx| Pin::new(&mut body).poll_write_direct(cx)).await
        {
            sent += written.unwrap();
            if sent < length as u64 {
                assert!(corked(), "only full segments while the file goes");
            }
        }
        // The body has ended but is not dropped yet: the last partial segment must go now.
        assert!(!corked(), "the end of the body uncorks the socket");
        assert_eq!(reader.join().unwrap().len(), length);
        drop(body);
    }

    #[actix_web::test]
    async fn sendfile_of_a_file_that_shrinks_ends_with_an_error() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(&[1u8; 100]).unwrap();
        let (_server, socket, _client) = connection().await;
        let body = sized_file_body(tmp, 0, 200, Some(socket));
        let error = write_direct(body).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[actix_web::test]
    async fn sendfile_to_a_closed_connection_ends_with_an_error() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(&vec![1u8; 16 * 1024 * 1024]).unwrap();
        let (_server, socket, client) = connection().await;
        drop(client);
        let body = sized_file_body(tmp, 0, 16 * 1024 * 1024, Some(socket));
        assert!(write_direct(body).await.is_err());
    }

    #[tokio::test]
    async fn a_file_that_shrinks_ends_the_stream_with_an_error() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(&[1u8; 100]).unwrap();
        let body = sized_file_body(tmp, 0, 200, None);
        assert!(actix_web::body::to_bytes(body).await.is_err());
    }
}
