//! Rendering pages: the navigation every page shows, and templates into responses.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::auth::middleware::CurrentUser;
use crate::error::AppError;

/// The header of a page for a logged-in user; its log-out form needs the CSRF token.
#[derive(Debug, Clone)]
pub struct Nav {
    pub username: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub csrf_token: String,
}

impl From<&CurrentUser> for Nav {
    fn from(current: &CurrentUser) -> Self {
        Self {
            username: current.user.username.clone(),
            is_staff: current.user.is_staff_member(),
            is_superuser: current.user.is_superuser,
            csrf_token: current.csrf_token.clone(),
        }
    }
}

pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    let body = page.render()?;
    Ok(HttpResponse::build(status)
        .content_type(mime::TEXT_HTML_UTF_8)
        .body(body))
}

pub fn page(page: &impl Template) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, page)
}
