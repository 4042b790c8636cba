//! `/files`: the files the logged-in user may read.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::extractors::CurrentUser;
use crate::db::models::file::FileRow;
use crate::db::models::user::User;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::error::AppError;
use crate::html::{self, Listing, Nav, Pager};
use crate::routes::file_list::{Controls, FileList, ListParams, ListRow, file_list};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    nav: Option<Nav>,
    listing: Listing,
    rows: Vec<ListRow>,
    pager: Pager,
    controls: Controls,
}

/// The files the logged-in user may read, newest first unless asked otherwise.
pub async fn list(
    current: CurrentUser,
    params: web::Query<ListParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user = User::clone(&current.user);
    let FileList {
        listing,
        rows,
        pager,
        controls,
    } = file_list(
        &state,
        "/files",
        false,
        params.into_inner(),
        move |c, query| FileRow::readable_page(c, &user, query),
    )
    .await?;
    html::page(&FilesPage {
        nav: Some(Nav::from(&current)),
        listing,
        rows,
        pager,
        controls,
    })
}
