use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::extractors::CurrentUser;
use crate::db::models::file::{FileRow, ListQuery, Sort};
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::error::AppError;
use crate::html::{self, FileView, Listing, Nav, Pager};
use crate::state::AppState;

const PER_PAGE: i64 = 25;

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    nav: Option<Nav>,
    listing: Listing,
    files: Vec<FileView>,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct Params {
    q: Option<String>,
    page: Option<i64>,
    sort: Option<String>,
}

/// The files the logged-in user may read, newest first.
pub async fn list(
    current: CurrentUser,
    params: web::Query<Params>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let params = params.into_inner();
    let query = ListQuery {
        search: params.q.clone(),
        page: params.page.unwrap_or(1),
        per_page: PER_PAGE,
        sort: Sort::parse(params.sort.as_deref()),
    };
    let sort = query.sort;
    let user = current.user.clone();
    let page = state
        .db
        .run(move |c| FileRow::readable_page(c, &user, &query))
        .await?;
    let listing = Listing {
        path: "/files",
        q: params.q.unwrap_or_default(),
        sort,
    };
    html::page(&FilesPage {
        nav: Some(Nav::from(&current)),
        files: page.items.iter().map(FileView::from).collect(),
        pager: Pager::new(&listing, page.page, page.pages, page.total),
        listing,
    })
}
