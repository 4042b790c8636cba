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
use actix_web::web::BytesMut;
use actix_web::{HttpMessage, ResponseError, web};
use futures_util::StreamExt;
use subtle::ConstantTimeEq;

use crate::auth::session::TypedSession;
use crate::client_addr;
use crate::error::AppError;
use crate::logging::Escaped;
use crate::state::AppState;

pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Largest urlencoded body the middleware reads to find the token; forms here are small.
const MAX_FORM_BYTES: usize = 256 * 1024;
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
    if req.method().is_safe() {
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

    if let Some(given) = req.headers().get(HEADER) {
        return match given.to_str() {
            Ok(given) if matches(given) => next.call(req).await.map(|r| r.map_into_left_body()),
            _ => refuse(req, AppError::Csrf),
        };
    }

    match req.content_type().to_ascii_lowercase().as_str() {
        "multipart/form-data" => {
            let body = tee::Tee::new(req.take_payload(), MAX_MULTIPART_HEAD + PARSER_READ_AHEAD);
            match multipart::find_token(req.headers(), body.reader()).await {
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
            let mut payload = req.take_payload();
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let Ok(chunk) = chunk else {
                    return refuse(
                        req,
                        AppError::BadRequest("the request body broke off".into()),
                    );
                };
                if body.len() + chunk.len() > MAX_FORM_BYTES {
                    return refuse(req, AppError::PayloadTooLarge("form".into()));
                }
                body.extend_from_slice(&chunk);
            }
            let body = body.freeze();
            match form_urlencoded_field(&body, FIELD) {
                Some(given) if matches(&given) => {
                    req.set_payload(Payload::from(body));
                    next.call(req).await.map(|r| r.map_into_left_body())
                }
                _ => refuse(req, AppError::Csrf),
            }
        }
        // JSON, text, no body at all: only the header can carry the token.
        _ => refuse(req, AppError::Csrf),
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
    fn the_token_is_found_among_other_fields() {
        let body = b"username=a&csrf_token=t%2Bk&next=%2Ffiles";
        assert_eq!(form_urlencoded_field(body, FIELD).as_deref(), Some("t+k"));
        assert_eq!(form_urlencoded_field(b"a=b", FIELD), None);
    }
}
