//! Error pages for a logged-in user keep the navigation (their name, Log out) and say what to
//! do next. `error` makes every error page without knowing who asked, so that it needs nothing
//! of `auth` or `html`; this middleware, inside the session, swaps that page for the same one
//! with the navigation when the session belongs to a logged-in user. The status and every
//! header (`Retry-After`, `Allow`…) stay as they were.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::extractors::current_user;
use crate::auth::session::TypedSession;
use crate::display::filters; // `shown`, for the template below (src/display.rs)
use crate::error::ErrorPage;
use crate::html::Nav;

#[derive(Template)]
#[template(path = "error_nav.html")]
struct ErrorWithNav {
    nav: Option<Nav>,
    status: u16,
    title: String,
    message: String,
    next_step: &'static str,
}

/// What a logged-in user can do about an error of this status.
fn next_step(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => {
            "Your account may not open this. If you need it, ask a staff member to share it \
             with you; if you just came back to a form, reload it and try again."
        }
        404 => "Check the address, or look for what you wanted in your files.",
        410 => "Ask whoever gave you the link for a new one.",
        413 => "Send something smaller, or ask a staff member about the size limit.",
        429 => "Wait a few minutes, then try again.",
        s if s >= 500 => "Try again in a moment; if it keeps happening, tell your administrator.",
        _ => "Go back and try again, or start from your files.",
    }
}

pub async fn with_navigation<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    // A middleware's refusal that comes back as an error (not as a page: CSRF answers with
    // one) keeps its plain page; the request is gone with it, and routing needs it unshared.
    let response = next.call(req).await?;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return Ok(response.map_into_left_body());
    }
    // A page of `error`, or an answer with no page at all (a 405 from routing).
    let page = response.response().extensions().get::<ErrorPage>().cloned();
    let page = match page {
        Some(page) => page,
        None if !response.headers().contains_key(header::CONTENT_TYPE) => {
            ErrorPage::for_status(status, None)
        }
        None => return Ok(response.map_into_left_body()),
    };
    let request = response.request().clone();
    match with_nav(&request, &page, response.response()).await {
        Some(swapped) => Ok(ServiceResponse::new(request, swapped).map_into_right_body()),
        None => Ok(response.map_into_left_body()),
    }
}

/// `page` with the navigation, keeping `original`'s status and headers, if `request` came
/// from a logged-in user; `None` for anyone else.
async fn with_nav<B>(
    request: &HttpRequest,
    page: &ErrorPage,
    original: &HttpResponse<B>,
) -> Option<HttpResponse> {
    // No login claimed: nothing to look up.
    TypedSession::from_request(request).identity()?;
    let current = current_user(request).await.ok()?;
    let status = original.status();
    let body = ErrorWithNav {
        nav: Some(Nav::from(&current)),
        status: page.status,
        title: page.title.clone(),
        message: page.message.clone(),
        next_step: next_step(status),
    }
    .render()
    .map_err(|e| tracing::error!(error = %e, "rendering the error page with navigation failed"))
    .ok()?;
    let mut swapped = HttpResponse::build(status)
        .content_type(mime::TEXT_HTML_UTF_8)
        .body(body);
    for (name, value) in original.headers() {
        if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
            swapped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    // A download's answer, refusals included, is `private, no-cache` (README: downloads), which
    // a browser may keep: this one names the user and carries their CSRF token, so not stored.
    if crate::cache_control::is_download(request) {
        swapped.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static(crate::cache_control::REFUSED_DOWNLOAD_PAGE),
        );
    }
    swapped
        .head_mut()
        .set_connection_type(original.head().connection_type());
    Some(swapped)
}
