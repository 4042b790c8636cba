//! A request body that can be read twice: what `Reader` hands out is recorded (up to a bound),
//! and `Tee::replay` gives the request a payload that starts with those bytes again and goes on
//! with the unread rest of the original. The CSRF check reads a multipart form up to its token
//! this way, and the handler still gets the whole body, streamed, never held in memory.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

/// The most the reader hands out per poll. actix-multipart pulls up to 16 ready chunks per poll
/// and a socket chunk can be tens of KiB, so handing out whole chunks would record far more
/// than the form up to its token; small slices keep the record close to what was parsed.
const SLICE: usize = 4 * 1024;

struct Shared {
    source: Payload,
    /// The rest of the source's last chunk, not handed out yet.
    unread: Bytes,
    recorded: BytesMut,
    limit: usize,
    /// Set after each slice: the next poll yields once, so the parser works on what it has
    /// before it asks for more (it would otherwise drain every ready slice at once).
    pause: bool,
}

pub struct Tee(Rc<RefCell<Shared>>);

impl Tee {
    /// Records at most `limit` bytes; reading past that is an `Overflow` error.
    pub fn new(source: Payload, limit: usize) -> Self {
        Self(Rc::new(RefCell::new(Shared {
            source,
            unread: Bytes::new(),
            recorded: BytesMut::new(),
            limit,
            pause: false,
        })))
    }

    /// A stream of the body that records what it hands out.
    pub fn reader(&self) -> Reader {
        Reader(Rc::clone(&self.0))
    }

    /// The whole body again: the recorded bytes, then the rest of the original payload.
    pub fn replay(self) -> Payload {
        let mut shared = self.0.borrow_mut();
        let head = shared.recorded.split().freeze();
        let unread = std::mem::take(&mut shared.unread);
        let source = std::mem::replace(&mut shared.source, Payload::None);
        let start = futures_util::stream::iter(
            [head, unread].into_iter().filter(|b| !b.is_empty()).map(Ok),
        );
        Payload::Stream {
            payload: Box::pin(start.chain(source)),
        }
    }
}

pub struct Reader(Rc<RefCell<Shared>>);

impl Stream for Reader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut guard = self.0.borrow_mut();
        let shared = &mut *guard;
        if shared.pause {
            shared.pause = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if shared.unread.is_empty() {
            match Pin::new(&mut shared.source).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => shared.unread = chunk,
                other => return other,
            }
        }
        let take = shared.unread.len().min(SLICE);
        if shared.recorded.len() + take > shared.limit {
            return Poll::Ready(Some(Err(PayloadError::Overflow)));
        }
        let slice = shared.unread.split_to(take);
        shared.recorded.extend_from_slice(&slice);
        shared.pause = true;
        Poll::Ready(Some(Ok(slice)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(chunks: Vec<&'static [u8]>) -> Payload {
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, PayloadError>(Bytes::from_static(c))),
        );
        Payload::Stream {
            payload: Box::pin(stream),
        }
    }

    async fn read_all(mut payload: Payload) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(chunk) = payload.next().await {
            all.extend_from_slice(&chunk.expect("chunk"));
        }
        all
    }

    #[actix_web::test]
    async fn the_replay_holds_every_byte_once_in_order() {
        let big: &'static [u8] = &[b'x'; 10_000];
        let tee = Tee::new(payload_of(vec![b"hello ", big, b" end"]), 64 * 1024);
        let mut reader = tee.reader();
        // Part of the body is read (a slice of the big chunk included), the rest is not.
        let mut seen = Vec::new();
        while seen.len() < 6 + SLICE {
            seen.extend_from_slice(&reader.next().await.expect("more").expect("chunk"));
        }
        drop(reader);
        let mut expected = b"hello ".to_vec();
        expected.extend_from_slice(big);
        expected.extend_from_slice(b" end");
        assert_eq!(read_all(tee.replay()).await, expected);
    }

    #[actix_web::test]
    async fn reading_past_the_bound_is_an_overflow() {
        let big: &'static [u8] = &[b'x'; 10_000];
        let tee = Tee::new(payload_of(vec![big]), 5_000);
        let mut reader = tee.reader();
        assert!(reader.next().await.expect("first slice").is_ok());
        let second = reader.next().await.expect("an answer");
        assert!(matches!(second, Err(PayloadError::Overflow)), "{second:?}");
    }

    #[actix_web::test]
    async fn a_body_never_read_is_replayed_whole() {
        let tee = Tee::new(payload_of(vec![b"a", b"b"]), 10);
        assert_eq!(read_all(tee.replay()).await, b"ab");
    }
}
