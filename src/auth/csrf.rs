//! CSRF protection for every request that is not safe (POST above all), checked here, before
//! any handler runs, so no handler can forget it. The token lives in the session and must come
//! back in an `X-CSRF-Token` header (scripts, any body), or as the `csrf_token` field of the
//! form: urlencoded (the body is small and read here) or multipart (read up to the token
//! through a `Tee`, then handed on whole). Any other body without the header is refused.

mod multipart;
mod tee;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, ResponseError, web};
use futures_util::StreamExt;
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::auth::session::TypedSession;
use crate::client_addr;
use crate::error::AppError;
use crate::logging::Escaped;
use crate::state::AppState;

pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Largest urlencoded body a signed-in session may send. The biggest form is a file's edit
/// form, with one `users=NAME` field per listed user: 128 KiB holds about 4,000 names of 25
/// characters, percent-encoding included.
pub const MAX_FORM_BYTES: usize = 128 * 1024;
/// Largest urlencoded body of a session nobody signed into: anyone gets one from `/login`, and
/// its one form (a name of at most 150 characters, a password of at most 1 KiB, `next`, the
/// token) fits in a few KiB even percent-encoded.
pub const MAX_ANONYMOUS_FORM_BYTES: usize = 16 * 1024;
/// Form bytes all requests together may hold at once while their bodies arrive, in KiB: a
/// flood of stalled bodies costs this much at most, and the request over it gets 503.
const FORM_BUDGET_KIB: usize = 16 * 1024;
static FORM_BUDGET: Semaphore = Semaphore::const_new(FORM_BUDGET_KIB);
/// How much of a multipart body may come before its token ends; forms put it first.
const MAX_MULTIPART_HEAD: usize = 64 * 1024;
/// The multipart parser reads ahead of what its fields have handed out, up to its buffer of
/// 64 KiB plus one chunk it holds pending (a slice of the tee, 4 KiB): a token ending right at
/// `MAX_MULTIPART_HEAD` needs that much more of the body recorded, whatever the timing.
const PARSER_READ_AHEAD: usize = 72 * 1024;

fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

pub async fn protect(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The API takes no cookie (`routes::api::guard` removes it), so there is no session a
    // forged request could ride on: its token is in a header no other site can set.
    if req.method().is_safe() || crate::routes::api::is_api_path(req.path()) {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let expected = TypedSession::from_request(req.request()).existing_csrf_token();
    let no_session = expected.is_none();
    let refuse = |req: ServiceRequest, error: AppError| {
        let error = match error {
            AppError::Csrf if no_session && cookie_lost_to_plain_http(&req) => {
                AppError::CookieNeedsHttps
            }
            other => other,
        };
        let response = error.error_response();
        Ok(req.into_response(response).map_into_right_body())
    };
    // A session without a token has never been shown a form: no body can match, so none is read.
    let Some(expected) = expected else {
        return refuse(req, AppError::Csrf);
    };
    let matches = |given: &str| tokens_match(&expected, given);
    let signed_in = TypedSession::from_request(req.request())
        .identity()
        .is_some();

    if let Some(given) = req.headers().get(HEADER) {
        let Ok(given) = given.to_str() else {
            return refuse(req, AppError::Csrf);
        };
        if !matches(given) {
            return refuse(req, AppError::Csrf);
        }
        // Whoever has only visited the login page gets no more than its small forms take,
        // whichever way the token comes: a body of unknown length is refused, a longer one
        // too, before any of it is read (the handler's form would read up to the signed-in
        // limit, outside the budget).
        if !signed_in {
            match declared_length(&req) {
                Some(n) if n <= MAX_ANONYMOUS_FORM_BYTES => {}
                Some(_) => return refuse(req, AppError::PayloadTooLarge("form".into())),
                None if has_body(&req) => {
                    return refuse(req, AppError::PayloadTooLarge("form".into()));
                }
                None => {}
            }
        }
        return next.call(req).await.map(|r| r.map_into_left_body());
    }

    match req.content_type().to_ascii_lowercase().as_str() {
        // No form of a session nobody signed into is multipart (login, a share link's
        // password; uploads need a login): sent to log in before a byte is read.
        "multipart/form-data" if !signed_in => refuse(req, AppError::LoginRequired { next: None }),
        "multipart/form-data" => {
            // What the tee records while the token is looked for (a client may send it
            // slowly) counts against the budget; an upload itself, once its token is found,
            // does not: it streams, and may take minutes.
            let mut held = FormBytes::new(&FORM_BUDGET);
            if let Err(error) = held.grow_to(MAX_MULTIPART_HEAD + PARSER_READ_AHEAD) {
                return refuse(req, error);
            }
            let body = tee::Tee::new(req.take_payload(), MAX_MULTIPART_HEAD + PARSER_READ_AHEAD);
            let found = multipart::find_token(req.headers(), body.reader()).await;
            drop(held);
            match found {
                Ok(given) if matches(&given) => {
                    req.set_payload(body.replay());
                    next.call(req).await.map(|r| r.map_into_left_body())
                }
                Ok(_) => refuse(req, AppError::Csrf),
                Err(reason) => {
                    tracing::debug!(reason = %Escaped(&reason), "multipart POST refused");
                    refuse(req, AppError::Csrf)
                }
            }
        }
        "application/x-www-form-urlencoded" => {
            let cap = if signed_in {
                MAX_FORM_BYTES
            } else {
                MAX_ANONYMOUS_FORM_BYTES
            };
            let declared = declared_length(&req);
            if declared.is_some_and(|n| n > cap) {
                return refuse(req, AppError::PayloadTooLarge("form".into()));
            }
            let mut held = FormBytes::new(&FORM_BUDGET);
            // Reserved at the size the client declared, and grown (a chunked body) to at most
            // the limit: growing by plain doubling would hold up to twice the body, and a
            // stalled one would keep it. The budget counts what is reserved, not what came.
            let initial = declared.unwrap_or(0);
            if let Err(error) = held.grow_to(initial) {
                return refuse(req, error);
            }
            let mut payload = req.take_payload();
            let mut body: Vec<u8> = Vec::with_capacity(initial);
            while let Some(chunk) = payload.next().await {
                let Ok(chunk) = chunk else {
                    return refuse(
                        req,
                        AppError::BadRequest("the request body broke off".into()),
                    );
                };
                let len = body.len() + chunk.len();
                if len > cap {
                    return refuse(req, AppError::PayloadTooLarge("form".into()));
                }
                if len > body.capacity() {
                    let grown = len.max(body.capacity().saturating_mul(2)).min(cap);
                    if let Err(error) = held.grow_to(grown) {
                        return refuse(req, error);
                    }
                    body.reserve_exact(grown - body.len());
                }
                body.extend_from_slice(&chunk);
            }
            let body = Bytes::from(body);
            match form_urlencoded_field(&body, FIELD) {
                Some(given) if matches(&given) => {
                    req.set_payload(Payload::from(body));
                    // The handler's form holds a copy while it runs: the budget keeps
                    // counting these bytes until it is done.
                    let response = next.call(req).await.map(|r| r.map_into_left_body());
                    drop(held);
                    response
                }
                _ => refuse(req, AppError::Csrf),
            }
        }
        // JSON, text, no body at all: only the header can carry the token.
        _ => refuse(req, AppError::Csrf),
    }
}

/// Whether a request without a `Content-Length` still sends a body (chunked).
fn has_body(req: &ServiceRequest) -> bool {
    req.headers()
        .contains_key(actix_web::http::header::TRANSFER_ENCODING)
}

/// The `Content-Length` of a request, if it says one that parses.
fn declared_length(req: &ServiceRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A request's share of a budget of form bytes, in whole KiB, given back when dropped.
struct FormBytes<'a> {
    budget: &'a Semaphore,
    permits: Option<SemaphorePermit<'a>>,
}

impl<'a> FormBytes<'a> {
    fn new(budget: &'a Semaphore) -> Self {
        Self {
            budget,
            permits: None,
        }
    }

    fn held_kib(&self) -> usize {
        self.permits.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Holds enough of the budget for `bytes`; `Overloaded` if the budget has not that much
    /// left (waiting for it would only let stalled bodies queue up more).
    fn grow_to(&mut self, bytes: usize) -> Result<(), AppError> {
        let more = bytes.div_ceil(1024).saturating_sub(self.held_kib());
        if more == 0 {
            return Ok(());
        }
        let more = u32::try_from(more).map_err(|_| AppError::Overloaded)?;
        let permit = self
            .budget
            .try_acquire_many(more)
            .map_err(|_| AppError::Overloaded)?;
        match &mut self.permits {
            Some(held) => held.merge(permit),
            None => self.permits = Some(permit),
        }
        Ok(())
    }
}

/// A POST without any session, to an app whose cookie is `Secure`, over plain HTTP (no TLS
/// here, and no trusted proxy saying `X-Forwarded-Proto: https`): the browser never sent the
/// cookie back, so "the form expired" would send the user in circles.
fn cookie_lost_to_plain_http(req: &ServiceRequest) -> bool {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return false;
    };
    if !state.settings.cookies_secure() {
        return false;
    }
    !client_addr::is_https(
        req.app_config().secure(),
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.settings.server.trusted_proxies,
    )
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn form_bytes_are_held_in_kib_and_refused_past_the_budget() {
        let budget = Semaphore::new(4);
        let mut first = FormBytes::new(&budget);
        first.grow_to(1).expect("one KiB");
        first.grow_to(1024).expect("still one KiB");
        first.grow_to(2049).expect("three KiB");
        assert_eq!(budget.available_permits(), 1);
        let mut second = FormBytes::new(&budget);
        assert!(matches!(second.grow_to(2048), Err(AppError::Overloaded)));
        second.grow_to(1024).expect("the last KiB");
        drop(first);
        assert_eq!(budget.available_permits(), 3, "given back when dropped");
    }

    #[test]
    fn the_token_is_found_among_other_fields() {
        let body = b"username=a&csrf_token=t%2Bk&next=%2Ffiles";
        assert_eq!(form_urlencoded_field(body, FIELD).as_deref(), Some("t+k"));
        assert_eq!(form_urlencoded_field(b"a=b", FIELD), None);
    }
}
