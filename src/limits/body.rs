//! Request bodies with a deadline: a body that stalls (nothing for `idle`) or trickles (slower
//! than `min_rate` bytes a second once `grace` has passed, bytes sent ahead counting for at
//! most `idle` of waiting) ends with an error, and
//! the request is answered 408 with the connection closed, whatever the handler made of the
//! error. Handlers see an ordinary payload error, so an upload cut off this way is refused
//! like any other broken upload: nothing is stored.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::rt::time::{Instant, Sleep, sleep_until};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;

use crate::config::ServerSettings;
use crate::error::AppError;
use crate::logging::Escaped;

/// Longest a rate deadline is put off, so that adding it to an instant can never overflow.
const FAR_AWAY: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPolicy {
    pub idle: Duration,
    /// Bytes a second; 0: no rate check.
    pub min_rate: u64,
    pub grace: Duration,
}

impl BodyPolicy {
    pub fn from_settings(settings: &ServerSettings) -> Self {
        Self {
            idle: settings.body_idle_timeout,
            min_rate: settings.body_min_rate,
            grace: settings.body_rate_grace,
        }
    }

    /// When a body we have been waiting on since `since` must send more, with `credit` of
    /// waiting left. Only time spent waiting for the client uses credit: a handler busy
    /// elsewhere (an S3 part upload) must not make the client look slow.
    fn deadline(&self, since: Instant, credit: Duration) -> Instant {
        let idle = since + self.idle;
        if self.min_rate == 0 {
            return idle;
        }
        idle.min(since + credit.min(FAR_AWAY))
    }

    /// The most waiting a body can have in hand. Without a bound, bytes sent ahead would buy
    /// waiting at `1 / min_rate` seconds a byte without end: one 250 KB burst would pay for four
    /// minutes of trickle at 1 KiB/s. `idle` is the longest any one wait may last anyway.
    fn max_credit(&self) -> Duration {
        self.idle.max(self.grace)
    }

    /// The waiting left after the client made us wait `waited` and then sent `bytes`: each
    /// byte buys `1 / min_rate` seconds, up to `max_credit`. A body starts with `grace`.
    fn credit_after(&self, credit: Duration, waited: Duration, bytes: u64) -> Duration {
        if self.min_rate == 0 {
            return credit;
        }
        let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(self.min_rate);
        let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        credit
            .saturating_sub(waited)
            .saturating_add(earned)
            .min(self.max_credit())
    }
}

/// A request body that fails once it misses its deadline.
pub struct BoundedBody<S> {
    /// `None` once given up: the stream then lives in `abandoned`.
    inner: Option<S>,
    policy: BodyPolicy,
    /// Waiting for the client still allowed, as of the last chunk (`BodyPolicy::credit_after`).
    credit: Duration,
    /// Since when we have been waiting for the next chunk, if we are.
    waiting_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    shared: Rc<Shared<S>>,
    finished: bool,
}

/// What a body tells the middleware once the handler is done with it.
pub struct Shared<S> {
    timed_out: Cell<bool>,
    /// The inner stream of a body given up or dropped before its end, kept so that the
    /// answer can hold it until it is sent (see `ClosingBody`).
    abandoned: Cell<Option<S>>,
}

impl<S> Default for Shared<S> {
    fn default() -> Self {
        Self {
            timed_out: Cell::new(false),
            abandoned: Cell::new(None),
        }
    }
}

impl<S> Shared<S> {
    pub fn timed_out(&self) -> bool {
        self.timed_out.get()
    }

    pub fn take_abandoned(&self) -> Option<S> {
        self.abandoned.take()
    }
}

impl<S> Drop for BoundedBody<S> {
    fn drop(&mut self) {
        if !self.finished || self.shared.timed_out.get() {
            self.shared.abandoned.set(self.inner.take());
        }
    }
}

impl<S> BoundedBody<S> {
    pub fn new(inner: S, policy: BodyPolicy, shared: Rc<Shared<S>>) -> Self {
        let now = Instant::now();
        Self {
            inner: Some(inner),
            policy,
            credit: policy.grace,
            waiting_since: None,
            timer: Box::pin(sleep_until(policy.deadline(now, policy.grace))),
            shared,
            finished: false,
        }
    }

    fn give_up(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.finished = true;
        self.shared.timed_out.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body stalled or came too slowly",
        )))))
    }
}

impl<S> Stream for BoundedBody<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut().filter(|_| !this.finished) else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let waited = this
                    .waiting_since
                    .take()
                    .map_or(Duration::ZERO, |since| since.elapsed());
                this.credit = this
                    .policy
                    .credit_after(this.credit, waited, chunk.len() as u64);
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(None) => {
                this.finished = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Pending => {}
        }
        let now = Instant::now();
        let since = *this.waiting_since.get_or_insert(now);
        let deadline = this.policy.deadline(since, this.credit);
        if now >= deadline {
            return this.give_up();
        }
        if this.timer.deadline() != deadline {
            this.timer.as_mut().reset(deadline);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => this.give_up(),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether a request says it has a body at all (most GETs do not: no timer for them).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Middleware: bounds the body of every request; must run before anything reads a body
/// (CSRF reads forms).
pub async fn bound<B: MessageBody + 'static>(
    policy: BodyPolicy,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, ClosingBody<Payload>>>, actix_web::Error> {
    if !has_body(&req) {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let shared = Rc::new(Shared::default());
    let body = BoundedBody::new(req.take_payload(), policy, Rc::clone(&shared));
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    // The request is not cloned here: routing still needs it to itself.
    let result = next.call(req).await;
    let abandoned = shared.take_abandoned();
    let response = match (result, shared.timed_out()) {
        (Ok(response), false) => match abandoned {
            None => return Ok(response.map_into_left_body()),
            Some(payload) => response
                .map_into_boxed_body()
                .map_body(|_, page| ClosingBody::new(page, Some(payload))),
        },
        (Err(e), false) => return Err(e),
        // Whatever the handler made of the broken body (400, a refused upload…), the truth
        // is a timeout.
        (Ok(response), true) => {
            let (http_req, _) = response.into_parts();
            tracing::info!(path = %Escaped(http_req.path()), "a request body stalled; answered 408");
            ServiceResponse::new(http_req, AppError::RequestTimeout.error_response())
                .map_body(|_, page| ClosingBody::new(page, abandoned))
        }
        (Err(_), true) => return Err(AppError::RequestTimeout.into()),
    };
    Ok(response.map_into_right_body())
}

/// An answer that holds the request body it did not read until it is sent. actix-web closes
/// a connection whose request body is unread when the answer ends, but *drains* a chunked
/// body that was dropped, and a stalled one never ends: held, it counts as unread.
pub struct ClosingBody<S> {
    page: BoxBody,
    _unread: Option<S>,
}

impl<S> ClosingBody<S> {
    pub fn new(page: BoxBody, unread: Option<S>) -> Self {
        Self {
            page,
            _unread: unread,
        }
    }
}

impl<S: Unpin> MessageBody for ClosingBody<S> {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.page.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().page).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn policy() -> BodyPolicy {
        BodyPolicy {
            idle: Duration::from_secs(30),
            min_rate: 1024,
            grace: Duration::from_secs(10),
        }
    }

    #[test]
    fn the_deadline_is_the_earlier_of_idle_and_credit() {
        let p = policy();
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        // Nothing yet: the grace period ends first.
        assert_eq!(p.deadline(t0, p.grace), t0 + secs(10));
        assert_eq!(p.deadline(t0, secs(100)), t0 + secs(30));
        assert_eq!(p.deadline(t0, secs(5)), t0 + secs(5));
        assert_eq!(p.deadline(t0, Duration::ZERO), t0);
        let no_rate = BodyPolicy { min_rate: 0, ..p };
        assert_eq!(no_rate.deadline(t0, Duration::ZERO), t0 + secs(30));
    }

    #[test]
    fn bytes_buy_waiting_at_the_minimum_rate_up_to_the_idle_timeout() {
        let p = policy();
        let secs = Duration::from_secs;
        // 20 KiB at 1 KiB/s buys 20 s, on top of what the wait left of the grace.
        assert_eq!(p.credit_after(secs(10), secs(4), 20 * 1024), secs(26));
        assert_eq!(
            p.credit_after(secs(10), secs(3), 512),
            secs(7) + secs(1) / 2
        );
        // A burst buys no more than the idle timeout…
        assert_eq!(p.credit_after(secs(10), Duration::ZERO, 250_000), secs(30));
        assert_eq!(p.credit_after(secs(10), Duration::ZERO, u64::MAX), secs(30));
        // …so a trickle after it runs out within that, not after 250 s.
        let mut credit = p.credit_after(secs(10), Duration::ZERO, 250_000);
        let mut waited = Duration::ZERO;
        // A byte every 5 s, for as long as the deadline lets each 5 s wait pass.
        while credit >= secs(5) {
            credit = p.credit_after(credit, secs(5), 1);
            waited += secs(5);
        }
        assert!(waited <= secs(30), "{waited:?}");
        let no_rate = BodyPolicy { min_rate: 0, ..p };
        assert_eq!(no_rate.credit_after(secs(10), secs(60), 0), secs(10));
    }

    #[actix_web::test]
    async fn a_handler_that_reads_slowly_does_not_make_the_client_look_slow() {
        let shared = Rc::new(Shared::default());
        // A client that sends each chunk 10 ms after it is asked for it.
        let chunks = futures_util::stream::unfold(0, |n| async move {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            (n < 3).then(|| (Ok(Bytes::from_static(b"x")), n + 1))
        });
        // Limits far above the client's 10 ms (a loaded CI machine stretches sleeps), and a
        // handler busy for longer than both.
        let policy = BodyPolicy {
            idle: Duration::from_millis(400),
            grace: Duration::from_millis(400),
            min_rate: 1024 * 1024,
        };
        let mut body = BoundedBody::new(Box::pin(chunks), policy, Rc::clone(&shared));
        let mut count = 0;
        while let Some(chunk) = body.next().await {
            chunk.unwrap();
            count += 1;
            // Busy elsewhere for longer than both limits; the client sent everything at once.
            actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(count, 3);
        assert!(!shared.timed_out());
        drop(body);
        assert!(
            shared.take_abandoned().is_none(),
            "a finished body is not kept"
        );
    }

    #[actix_web::test]
    async fn a_body_that_stalls_fails_with_a_timeout() {
        let shared = Rc::new(Shared::default());
        let stalled = futures_util::stream::iter([Ok(Bytes::from_static(b"abc"))])
            .chain(futures_util::stream::pending());
        let policy = BodyPolicy {
            idle: Duration::from_millis(100),
            ..policy()
        };
        let mut body = BoundedBody::new(Box::pin(stalled), policy, Rc::clone(&shared));
        assert_eq!(body.next().await.unwrap().unwrap(), "abc");
        let started = std::time::Instant::now();
        let error = body.next().await.unwrap().unwrap_err();
        assert!(
            matches!(error, PayloadError::Io(ref e) if e.kind() == std::io::ErrorKind::TimedOut)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(shared.timed_out());
        assert!(body.next().await.is_none());
        drop(body);
        assert!(
            shared.take_abandoned().is_some(),
            "the stream is handed over"
        );
    }

    #[actix_web::test]
    async fn a_body_that_keeps_coming_is_left_alone() {
        let shared = Rc::new(Shared::default());
        let chunks = futures_util::stream::iter((0..5).map(|_| Ok(Bytes::from(vec![0u8; 4096]))));
        let policy = BodyPolicy {
            idle: Duration::from_millis(100),
            grace: Duration::from_millis(1),
            min_rate: 1,
        };
        let mut body = BoundedBody::new(Box::pin(chunks), policy, Rc::clone(&shared));
        let mut total = 0;
        while let Some(chunk) = body.next().await {
            total += chunk.unwrap().len();
        }
        assert_eq!(total, 5 * 4096);
        assert!(!shared.timed_out());
        drop(body);
        assert!(
            shared.take_abandoned().is_none(),
            "a finished body is not kept"
        );
    }
}
