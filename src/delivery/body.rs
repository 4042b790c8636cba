//! The body of large file responses: 1 MiB positioned reads on the blocking pool, handed to
//! the connection in 32 KiB slices, with a watchdog per response.
//!
//! - Speed: NamedFile's own reader uses 64 KiB reads, one pool hop each, which caps a big
//!   download near 1.1 GB/s on these machines; 1 MiB reads reach the socket's speed
//!   (the README's Performance section has the measurements).
//! - Memory per slow client: actix copies every chunk it is given into the connection's write
//!   buffer and keeps it there until the socket takes it, so a client that stops reading
//!   holds one chunk. Slices keep that to 32 KiB; the rest of our 1 MiB read is dropped by the
//!   watchdog once the client has not asked for more for a second (and read again if it
//!   does), so a stalled download holds about 100 KiB, not 1 MiB.
//! - Time: a client that takes nothing for `SEND_TIMEOUT` (nginx's `send_timeout`) has its
//!   connection shut down by the watchdog, which frees the connection and its descriptor;
//!   when big downloads hold half the connections the server takes, after 5 s already.

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
use actix_web::body::{BodySize, MessageBody, SizedStream};
use actix_web::http::header;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::task::JoinHandle;

/// Bytes read from the file per trip to the blocking pool.
const CHUNK: u64 = 1024 * 1024;
/// Bytes handed to the connection at a time.
const SLICE: usize = 32 * 1024;
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
/// shut a stalled connection down. A duplicate of the connection's descriptor: shutdown(2)
/// acts on the socket, whichever descriptor names it, and owning one makes the call safe
/// (a raw number could name another file once the connection is gone).
#[derive(Debug, Clone)]
pub struct ConnectionSocket(Rc<OwnedFd>);

impl ConnectionSocket {
    /// Duplicates `socket`'s descriptor; `None` when the process has none to spare (the
    /// connection is then served without a send timeout, as it was before one existed).
    pub fn of(socket: &impl std::os::fd::AsFd) -> Option<Self> {
        rustix::io::fcntl_dupfd_cloexec(socket, 0)
            .ok()
            .map(|fd| Self(Rc::new(fd)))
    }

    fn shut_down(&self) {
        // An error means the connection is already gone: there is nothing left to end.
        let _ = rustix::net::shutdown(&*self.0, rustix::net::Shutdown::Both);
    }
}

pub type FileChunks = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>>>>;

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
    /// The watchdog released a buffer: this client is slow, read for it a slice at a time.
    slow: bool,
}

/// `length` bytes of `file` from `offset`, as described at the top of this module.
/// `socket` is the connection's, when known (without it, no watchdog).
pub fn sized_file_body(
    file: File,
    offset: u64,
    length: u64,
    socket: Option<ConnectionSocket>,
) -> SizedStream<FileChunks> {
    let shared = Rc::new(RefCell::new(Shared {
        buffered: Bytes::new(),
        share: None,
        last_asked: Instant::now(),
        read: None,
        pending_share: None,
        timed_out: false,
        slow: false,
    }));
    // Only a real connection has a socket, and it is served on an actix worker, where local
    // tasks can be spawned.
    let watchdog = socket.map(|socket| actix_web::rt::spawn(watch(Rc::clone(&shared), socket)));
    DOWNLOADS_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    let body = FileBody {
        file: Arc::new(file),
        next_unsent: offset,
        end: offset + length,
        shared,
        read_inline: length <= CHUNK,
        watchdog,
    };
    SizedStream::new(length, Box::pin(body))
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

struct FileBody {
    file: Arc<File>,
    /// File offset of the next byte to hand over.
    next_unsent: u64,
    end: u64,
    shared: Rc<RefCell<Shared>>,
    /// The whole body fits one read: read it right here, which is cheaper than a hop to the
    /// blocking pool when the page cache has the file (it usually does); in slices too, when
    /// the read-ahead budget is spent.
    read_inline: bool,
    watchdog: Option<actix_web::rt::task::JoinHandle<()>>,
}

impl Drop for FileBody {
    fn drop(&mut self) {
        DOWNLOADS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.abort();
        }
    }
}

impl Stream for FileBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            {
                let mut shared = this.shared.borrow_mut();
                shared.last_asked = Instant::now();
                if shared.timed_out {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))));
                }
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

fn read_exact_at(file: &File, position: u64, want: u64) -> std::io::Result<Bytes> {
    let mut buffer = vec![0u8; want as usize];
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], position + filled as u64) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file became shorter while it was sent",
                ));
            }
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

    #[tokio::test]
    async fn a_file_that_shrinks_ends_the_stream_with_an_error() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(&[1u8; 100]).unwrap();
        let body = sized_file_body(tmp, 0, 200, None);
        assert!(actix_web::body::to_bytes(body).await.is_err());
    }
}
