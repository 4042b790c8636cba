//! The error policy, in one place.
//!
//! Handlers and extractors return `AppError`; this module alone turns it into a status code
//! and an HTML page. Client mistakes (4xx) are answered plainly and not logged as errors.
//! Server faults (5xx) are logged once, here, with their whole cause chain, and the page says
//! only that something went wrong. Nothing a client sends makes the process panic.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::db::DbError;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)

/// What an overloaded instance asks a client to wait before it tries again.
const OVERLOAD_RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("login required")]
    LoginRequired { next: Option<String> },
    #[error("you do not have permission to see this page")]
    Forbidden,
    #[error("the page you asked for does not exist")]
    NotFound,
    /// What was here is gone for good (a share link expired, revoked or used up).
    #[error("{0}")]
    Gone(String),
    /// Too many attempts at something guarded (a share link's password).
    #[error("{message}")]
    TooManyAttempts {
        message: String,
        retry_after_secs: u64,
    },
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
    /// The request body stalled or came too slowly (`limits`).
    #[error("the request took too long to arrive; please try again")]
    RequestTimeout,
    /// More requests at once than this instance takes (`limits`).
    #[error("the server is busy right now; please try again in a moment")]
    Overloaded,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("rendering a page failed: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Internal(String),
}

#[derive(Template, Clone)]
#[template(path = "error.html")]
pub struct ErrorPage {
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
            410 => "What was here is no longer available.".to_owned(),
            405 => "This page does not answer that kind of request.".to_owned(),
            413 => "What you sent is too large.".to_owned(),
            503 => "The file storage cannot be reached right now; nothing was changed. Please \
                    try again in a moment."
                .to_owned(),
            s if s >= 500 => "Something went wrong on our side. Please try again later.".to_owned(),
            _ => "The request could not be handled.".to_owned(),
        });
        Self {
            status: status.as_u16(),
            title,
            message,
        }
    }

    /// The page as a response; falls back to plain text if the template itself fails.
    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self.render() {
            Ok(body) => {
                let mut response = HttpResponse::build(status)
                    .content_type(mime::TEXT_HTML_UTF_8)
                    .body(body);
                // For `error_pages`, which shows it again with the navigation to a user.
                response.extensions_mut().insert(self);
                response
            }
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
            AppError::Gone(_) => StatusCode::GONE,
            AppError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Storage(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Storage(crate::storage::StorageError::Obstructed(_)) => StatusCode::CONFLICT,
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
        if matches!(self, AppError::RequestTimeout | AppError::Overloaded) {
            // Not a fault of ours (no error log: under attack it would flood), and the
            // connection is closed so a slow or surplus client holds nothing afterwards.
            let mut response =
                ErrorPage::for_status(status, Some(self.to_string())).into_response();
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            if let AppError::Overloaded = self {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(OVERLOAD_RETRY_AFTER_SECS),
                );
            }
            return response;
        }
        if let AppError::TooManyAttempts {
            retry_after_secs, ..
        } = self
        {
            let mut response =
                ErrorPage::for_status(status, Some(self.to_string())).into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        match Loudness::of(status) {
            Loudness::ServerFault => {
                tracing::error!(error = %crate::logging::Escaped(self.cause_chain()), "request failed");
                ErrorPage::for_status(status, None).into_response()
            }
            Loudness::ClientMistake => {
                tracing::debug!(status = status.as_u16(), error = %crate::logging::Escaped(self), "request refused");
                ErrorPage::for_status(status, Some(self.to_string())).into_response()
            }
        }
    }
}

impl AppError {
    /// The error and every cause under it, on one line: the one log line a fault gets.
    fn cause_chain(&self) -> String {
        let mut chain = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        chain
    }
}

/// How loud a failed request is in the log. Only server faults are errors (someone has to
/// look); a client's mistakes are theirs to fix, logged at debug so that a flood of them
/// (scanners, broken scripts) cannot bury the real errors. The access log line (info) records
/// every request anyway.
#[derive(Debug, PartialEq, Eq)]
enum Loudness {
    ServerFault,
    ClientMistake,
}

impl Loudness {
    fn of(status: StatusCode) -> Self {
        if status.is_server_error() {
            Loudness::ServerFault
        } else {
            Loudness::ClientMistake
        }
    }
}

/// An error of the JSON API (`/api/`): the same policy as `AppError` (client mistakes said
/// plainly, faults logged once with their causes and answered vaguely), as `{"error": "…"}`
/// instead of a page. A refused token is a 401 with `WWW-Authenticate: Bearer`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` header at all.
    #[error("an API token is required: send it as `Authorization: Bearer TOKEN`")]
    TokenMissing,
    /// A token that opens nothing: unknown, malformed, expired, revoked, or its user inactive.
    #[error("{0}")]
    TokenInvalid(&'static str),
    #[error("too many requests with bad tokens; try again later")]
    Throttled { retry_after_secs: u64 },
    /// Any other error, with its own status (`AppError::status_code`).
    #[error(transparent)]
    App(#[from] AppError),
    /// An answer a middleware or the router made (a 405, a 413), relayed as JSON.
    #[error("{message}")]
    Relayed { status: StatusCode, message: String },
}

/// The realm the API's `WWW-Authenticate` names.
const API_REALM: &str = "private-media";

impl ApiError {
    /// The whole body of an API error: `{"error": message}`.
    pub fn body(message: &str) -> String {
        serde_json::json!({ "error": message }).to_string()
    }

    /// A JSON error answer with `status`.
    pub fn respond(status: StatusCode, message: &str) -> HttpResponse {
        HttpResponse::build(status)
            .content_type(mime::APPLICATION_JSON)
            .body(Self::body(message))
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::App(AppError::Db(e))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::TokenMissing | ApiError::TokenInvalid(_) => StatusCode::UNAUTHORIZED,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            // Sessions mean nothing here; a handler that asked for one was given no token.
            ApiError::App(AppError::LoginRequired { .. }) => StatusCode::UNAUTHORIZED,
            ApiError::App(e) => e.status_code(),
            ApiError::Relayed { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match Loudness::of(status) {
            Loudness::ServerFault => {
                let chain = match self {
                    ApiError::App(e) => e.cause_chain(),
                    other => other.to_string(),
                };
                tracing::error!(error = %crate::logging::Escaped(chain), "API request failed");
                "something went wrong on our side; please try again later".to_owned()
            }
            Loudness::ClientMistake => {
                tracing::debug!(status = status.as_u16(), error = %crate::logging::Escaped(self), "API request refused");
                self.to_string()
            }
        };
        let mut response = Self::respond(status, &message);
        let headers = response.headers_mut();
        let challenge = match self {
            ApiError::TokenMissing | ApiError::App(AppError::LoginRequired { .. }) => {
                Some(format!("Bearer realm=\"{API_REALM}\""))
            }
            ApiError::TokenInvalid(why) => Some(format!(
                "Bearer realm=\"{API_REALM}\", error=\"invalid_token\", error_description=\"{why}\""
            )),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        let retry_after = match self {
            ApiError::Throttled { retry_after_secs }
            | ApiError::App(AppError::TooManyAttempts {
                retry_after_secs, ..
            }) => Some(retry_after_secs.to_string()),
            ApiError::App(AppError::Overloaded) => Some(OVERLOAD_RETRY_AFTER_SECS.to_owned()),
            _ => None,
        };
        if let Some(value) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
            headers.insert(header::RETRY_AFTER, value);
        }
        if matches!(
            self,
            ApiError::App(AppError::RequestTimeout | AppError::Overloaded)
        ) {
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        response
    }
}

/// The status that tells a client why an upload refused one of its files.
pub fn refusal_status(refusal: &crate::upload::Refusal) -> StatusCode {
    use crate::upload::Refusal;
    match refusal {
        Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Type { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Refusal::Empty => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<crate::upload::StoreError> for AppError {
    fn from(e: crate::upload::StoreError) -> Self {
        use crate::upload::StoreError;
        match e {
            StoreError::Db(e) => AppError::Db(e),
            StoreError::Storage(e) => AppError::Storage(e),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<crate::upload::ReplaceError> for AppError {
    fn from(e: crate::upload::ReplaceError) -> Self {
        use crate::upload::ReplaceError;
        match e {
            ReplaceError::Store(e) => e.into(),
            // Deleted while the new content arrived: as if it had been gone before.
            ReplaceError::Gone => AppError::NotFound,
        }
    }
}

impl From<crate::upload::ReceiveError> for AppError {
    fn from(e: crate::upload::ReceiveError) -> Self {
        use crate::upload::{ReceiveError, human_size};
        match e {
            ReceiveError::Broken(e) => AppError::BadRequest(format!("the upload broke off: {e}")),
            ReceiveError::CutOff(limit) => AppError::PayloadTooLarge(format!(
                "upload (the limit per file is {})",
                human_size(limit)
            )),
            ReceiveError::Storage(e) => AppError::Storage(e),
            ReceiveError::Hash(e) => AppError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_faults_are_logged_as_errors() {
        for code in [400, 403, 404, 405, 413, 415, 422, 429] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(Loudness::of(status), Loudness::ClientMistake, "{code}");
        }
        for code in [500, 502, 503] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(Loudness::of(status), Loudness::ServerFault, "{code}");
        }
    }

    #[test]
    fn every_client_error_of_the_app_is_a_client_mistake() {
        let client_errors = [
            AppError::Forbidden,
            AppError::NotFound,
            AppError::Csrf,
            AppError::BadRequest("malformed".into()),
            AppError::PayloadTooLarge("form".into()),
        ];
        for error in client_errors {
            assert_eq!(
                Loudness::of(error.status_code()),
                Loudness::ClientMistake,
                "{error}"
            );
        }
    }

    #[test]
    fn the_cause_chain_names_every_cause() {
        let io = std::io::Error::other("disk on fire");
        let error = AppError::Storage(crate::storage::StorageError::Io(io));
        assert!(
            error.cause_chain().contains("disk on fire"),
            "{}",
            error.cause_chain()
        );
    }

    #[test]
    fn refusals_have_their_status() {
        let r = crate::upload::Refusal::Type {
            found: "text/html".into(),
            allowed: vec!["image/*".into()],
        };
        assert_eq!(refusal_status(&r), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
