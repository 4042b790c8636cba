use actix_web::HttpResponse;
use askama::Template;

use crate::auth::middleware::CurrentUser;
use crate::error::AppError;
use crate::html::{self, Nav};

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    nav: Option<Nav>,
}

/// The files the logged-in user may read.
pub async fn list(current: CurrentUser) -> Result<HttpResponse, AppError> {
    html::page(&FilesPage {
        nav: Some(Nav::from(&current)),
    })
}
