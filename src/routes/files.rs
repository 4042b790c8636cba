use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::middleware::CurrentUser;
use crate::db::models::file::{FileRow, ListQuery};
use crate::error::AppError;
use crate::html::{self, FileView, Nav, Pager};
use crate::state::AppState;

const PER_PAGE: i64 = 25;

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    nav: Option<Nav>,
    q: String,
    files: Vec<FileView>,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct Params {
    q: Option<String>,
    page: Option<i64>,
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
    };
    let user = current.user.clone();
    let page = state
        .db
        .run(move |c| FileRow::readable_page(c, &user, &query))
        .await?;
    let q = params.q.unwrap_or_default();
    html::page(&FilesPage {
        nav: Some(Nav::from(&current)),
        pager: Pager::new("/files", Some(&q), page.page, page.pages, page.total),
        files: page.items.iter().map(FileView::from).collect(),
        q,
    })
}
