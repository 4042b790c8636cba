//! The error policy, in one place.
//!
//! Handlers and extractors return `AppError`; this module alone turns it into a status code
//! and an HTML page. Client mistakes (4xx) are answered plainly and not logged as errors.
//! Server faults (5xx) are logged once, here, with their whole cause chain, and the page says
//! only that something went wrong. Nothing a client sends makes the process panic.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("login required")]
    LoginRequired { next: Option<String> },
    #[error("you do not have permission to see this page")]
    Forbidden,
    #[error("the page you asked for does not exist")]
    NotFound,
    #[error("the form had expired or did not come from this site; reload the page and try again")]
    Csrf,
    #[error(
        "this site's session cookie is sent only over HTTPS, and this page was reached over \
         plain HTTP, so your browser kept the cookie to itself and the form could not be \
         checked; open the site with an https:// address (its administrator may need to serve \
         it through an HTTPS proxy listed in trusted_proxies, or set secure_cookies = false \
         for a plain-HTTP test setup)"
    )]
    CookieNeedsHttps,
    #[error("{0}")]
    BadRequest(String),
    #[error("the {0} is too large")]
    PayloadTooLarge(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("rendering a page failed: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub nav: Option<crate::html::Nav>,
    pub status: u16,
    pub title: String,
    pub message: String,
}

impl ErrorPage {
    pub fn for_status(status: StatusCode, message: Option<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let message = message.unwrap_or_else(|| match status.as_u16() {
            403 => "You do not have permission to see this page.".to_owned(),
            404 => "The page you asked for does not exist.".to_owned(),
            405 => "This page does not answer that kind of request.".to_owned(),
            413 => "What you sent is too large.".to_owned(),
            503 => "The file storage cannot be reached right now; nothing was changed. Please \
                    try again in a moment."
                .to_owned(),
            s if s >= 500 => "Something went wrong on our side. Please try again later.".to_owned(),
            _ => "The request could not be handled.".to_owned(),
        });
        Self {
            nav: None,
            status: status.as_u16(),
            title,
            message,
        }
    }

    /// The page as a response; falls back to plain text if the template itself fails.
    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self.render() {
            Ok(body) => HttpResponse::build(status)
                .content_type(mime::TEXT_HTML_UTF_8)
                .body(body),
            Err(e) => {
                tracing::error!(error = %e, "rendering the error page failed");
                HttpResponse::build(status)
                    .content_type(mime::TEXT_PLAIN_UTF_8)
                    .body(self.message)
            }
        }
    }
}

/// `/login?next=…` for a path the user wanted.
pub fn login_url(next: Option<&str>) -> String {
    match next {
        Some(next) => format!(
            "/login?next={}",
            percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
        ),
        None => "/login".to_owned(),
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Forbidden | AppError::Csrf | AppError::CookieNeedsHttps => {
                StatusCode::FORBIDDEN
            }
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Storage(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(_)
            | AppError::Storage(_)
            | AppError::Template(_)
            | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let AppError::LoginRequired { next } = self {
            let location = login_url(next.as_deref());
            let mut response = HttpResponse::SeeOther().finish();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return response;
        }
        if status.is_server_error() {
            let mut chain = self.to_string();
            let mut source = std::error::Error::source(self);
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(error = %chain, "request failed");
            return ErrorPage::for_status(status, None).into_response();
        }
        ErrorPage::for_status(status, Some(self.to_string())).into_response()
    }
}
