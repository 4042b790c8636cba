//! At most `max_requests` requests at once: the next ones are answered 503 with
//! `Retry-After` at once (and their connections closed) rather than piling up until the
//! process runs out of descriptors. `/healthz` always passes, so a monitor still reaches an
//! instance that is shedding load.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};

use super::body::ClosingBody;
use crate::error::AppError;
use crate::logging::Escaped;

/// Paths that are never refused.
const ALWAYS_ADMITTED: &[&str] = &["/healthz"];

/// The count of requests in flight, shared by every worker of a server.
#[derive(Debug, Clone)]
pub struct Gate {
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

/// One admitted request; leaving frees its place, however the request ends.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(limit: usize) -> Self {
        Self {
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// A place for one more request, if there is one. A refused request never counts, not
    /// even for a moment, so it cannot make another one look refused.
    fn admit(&self) -> Option<Admitted> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted(Arc::clone(&self.in_flight)))
    }
}

/// Middleware: refuses requests past the limit with 503.
pub async fn admit<B: MessageBody + 'static>(
    gate: Gate,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, ClosingBody<Payload>>>, actix_web::Error> {
    if ALWAYS_ADMITTED.contains(&req.path()) {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let Some(_place) = gate.admit() else {
        tracing::warn!(limit = gate.limit, path = %Escaped(req.path()), "overloaded; answered 503");
        // Held unread until the 503 is sent, so the connection closes (see `ClosingBody`).
        let unread = req.take_payload();
        let response = AppError::Overloaded
            .error_response()
            .map_body(|_, page| ClosingBody::new(page, Some(unread)));
        return Ok(req.into_response(response).map_into_right_body());
    };
    next.call(req).await.map(|r| r.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_given_up_to_the_limit_and_freed_on_drop() {
        let gate = Gate::new(2);
        let first = gate.admit().expect("first");
        let second = gate.admit().expect("second");
        assert!(gate.admit().is_none(), "a third is refused");
        drop(first);
        let third = gate.admit().expect("a freed place is taken again");
        assert!(gate.admit().is_none());
        drop((second, third));
        assert_eq!(gate.in_flight.load(Ordering::Acquire), 0);
    }
}
