//! CSRF protection for every POST: the token lives in the session and must come back either
//! in an `X-CSRF-Token` header (scripts) or as the `csrf_token` field of a urlencoded form.
//!
//! Multipart uploads cannot be buffered here without reading whole files into memory, so for
//! them this middleware only marks the request as `CsrfPending`; the upload handler must call
//! `CsrfPending::verify` on the first part before it reads any file.

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
use crate::state::AppState;

pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Largest urlencoded body the middleware reads to find the token; forms here are small.
const MAX_FORM_BYTES: usize = 256 * 1024;

fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Present on a multipart POST whose token the handler still has to check.
#[derive(Clone)]
pub struct CsrfPending {
    expected: Option<String>,
}

impl CsrfPending {
    pub fn verify(&self, given: &str) -> Result<(), AppError> {
        match &self.expected {
            Some(expected) if tokens_match(expected, given) => Ok(()),
            _ => Err(AppError::Csrf),
        }
    }
}

pub async fn protect(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method().is_safe() {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let expected = TypedSession::from_request(req.request()).existing_csrf_token();
    let refuse = |req: ServiceRequest, error: AppError| {
        let error = match error {
            AppError::Csrf if expected.is_none() && cookie_lost_to_plain_http(&req) => {
                AppError::CookieNeedsHttps
            }
            other => other,
        };
        let response = error.error_response();
        Ok(req.into_response(response).map_into_right_body())
    };

    if let Some(given) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return match &expected {
            Some(expected) if tokens_match(expected, given) => {
                next.call(req).await.map(|r| r.map_into_left_body())
            }
            _ => refuse(req, AppError::Csrf),
        };
    }

    let content_type = req.content_type().to_ascii_lowercase();
    if content_type == "multipart/form-data" {
        req.extensions_mut().insert(CsrfPending { expected });
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    if content_type != "application/x-www-form-urlencoded" {
        return refuse(req, AppError::Csrf);
    }

    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(_) => {
                return refuse(
                    req,
                    AppError::BadRequest("the request body broke off".into()),
                );
            }
        };
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return refuse(req, AppError::PayloadTooLarge("form".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let given = form_urlencoded_field(&body, FIELD);
    match (&expected, given) {
        (Some(expected), Some(given)) if tokens_match(expected, &given) => {
            req.set_payload(Payload::from(body));
            next.call(req).await.map(|r| r.map_into_left_body())
        }
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
