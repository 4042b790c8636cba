//! The JSON API under `/api/v1/` (README: "Scripting"): the same files, rules and upload
//! path as the pages, for scripts holding an API token (`auth::bearer`).
//!
//! `guard` stands in front of every `/api/` request: it takes the `Cookie` header off before
//! the session middleware can read it (a browser's session opens nothing here, so there is no
//! CSRF to check either: a page of another site cannot make a browser send a token), and it
//! turns every error answer that is not JSON yet (the router's 404 and 405, a body limit's 413,
//! an overloaded instance's 503) into `{"error": "…"}`, keeping its status and headers.

mod files;
mod openapi;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;

use crate::error::{ApiError, ErrorPage};

pub use files::{create, delete, detail, download, list};
pub use openapi::document;

pub const FILES: &str = "/api/v1/files";
pub const FILE: &str = "/api/v1/files/{id}";
/// The API's download: cached as a download, like the pages' ones.
pub const DOWNLOAD: &str = "/api/v1/files/{id}/download";
pub const OPENAPI: &str = "/api/v1/openapi.json";

/// Whether a path is under `/api/` as the router reads it: percent-decoded, and with the
/// empty segments a client may put in front.
pub fn is_api_path(path: &str) -> bool {
    let under = |p: &str| {
        let p = p.trim_start_matches('/');
        p == "api" || p.starts_with("api/")
    };
    under(path)
        || (path.contains('%')
            && under(&percent_encoding::percent_decode_str(path).decode_utf8_lossy()))
}

/// What an error answer without a message of its own says.
fn message_for(status: StatusCode) -> String {
    match status.as_u16() {
        404 => "not found".to_owned(),
        405 => "method not allowed".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    }
}

fn is_json(response: &actix_web::HttpResponse<impl MessageBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The middleware (`from_fn`) described in the module's doc.
pub async fn guard<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if !is_api_path(req.path()) {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    req.headers_mut().remove(header::COOKIE);
    let response = match next.call(req).await {
        Ok(response) => response,
        // A middleware's refusal that came back as an error (a stalled body's 408).
        Err(e) => {
            let status = e.as_response_error().status_code();
            return Err(ApiError::Relayed {
                status,
                message: e.to_string(),
            }
            .into());
        }
    };
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.response()) {
        return Ok(response.map_into_left_body());
    }
    let message = match status.as_u16() {
        404 | 405 => message_for(status),
        _ => response
            .response()
            .extensions()
            .get::<ErrorPage>()
            .map(|page| page.message.clone())
            .unwrap_or_else(|| message_for(status)),
    };
    let (req, original) = response.into_parts();
    let mut json = ApiError::respond(status, &message);
    for (name, value) in original.headers() {
        if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json.head_mut()
        .set_connection_type(original.head().connection_type());
    Ok(ServiceResponse::new(req, json).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_found_however_they_are_spelt() {
        for api in ["/api/v1/files", "//api/v1", "/%61pi/v1/files", "/api"] {
            assert!(is_api_path(api), "{api}");
        }
        for other in ["/files", "/apis", "/admin/api/x", "/static/api.css"] {
            assert!(!is_api_path(other), "{other}");
        }
    }
}
