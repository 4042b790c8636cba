pub mod audit;
pub mod bulk;
pub mod files;
pub mod links;
pub mod pickers;
pub mod replace;
pub mod upload;
pub mod user_delete;
pub mod users;

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::extractors::StaffUser;
use crate::db::models::file::FileRow;
use crate::db::models::user::User;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/index.html")]
struct AdminIndex {
    nav: Option<Nav>,
    user_count: usize,
    staff_count: usize,
    inactive_count: usize,
    file_count: i64,
}

pub async fn index(
    StaffUser(current): StaffUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (users, file_count) = state
        .db
        .read(|c| Ok((User::list(c)?, FileRow::count(c)?)))
        .await?;
    html::page(&AdminIndex {
        nav: Some(Nav::from(&current)),
        user_count: users.len(),
        staff_count: users.iter().filter(|u| u.is_staff_member()).count(),
        inactive_count: users.iter().filter(|u| !u.is_active).count(),
        file_count,
    })
}

pub async fn redirect_to_index() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/admin/"))
        .finish()
}
