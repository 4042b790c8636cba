//! What the two file lists share (`/files` and `/admin/files`): the query string, one page of
//! rows, and the links that keep search, order and page together.

use serde::Deserialize;

use crate::db::models::file::{FileWithOwner, ListQuery, Page, Sort};
use crate::db::{DbConn, DbError};
use crate::error::AppError;
use crate::html::{FileView, Listing, Pager};
use crate::state::AppState;

pub const PER_PAGE: i64 = 25;

/// `?q=…&page=…&sort=…`; anything unknown in `sort` is the default order.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    page: Option<i64>,
    sort: Option<String>,
}

/// One page of a list, ready for a template.
pub struct FileList {
    pub listing: Listing,
    pub files: Vec<FileView>,
    pub pager: Pager,
}

/// Reads the page `params` ask for with `fetch` (which decides whose files they are).
pub async fn file_list<F>(
    state: &AppState,
    path: &'static str,
    params: ListParams,
    fetch: F,
) -> Result<FileList, AppError>
where
    F: FnOnce(&mut DbConn, &ListQuery) -> Result<Page<FileWithOwner>, DbError> + Send + 'static,
{
    let query = ListQuery {
        search: params.q.clone(),
        page: params.page.unwrap_or(1),
        per_page: PER_PAGE,
        sort: Sort::parse(params.sort.as_deref()),
    };
    let sort = query.sort;
    let page = state.db.read(move |c| fetch(c, &query)).await?;
    let listing = Listing {
        path,
        q: params.q.unwrap_or_default(),
        sort,
    };
    Ok(FileList {
        files: page.items.iter().map(FileView::from).collect(),
        pager: Pager::new(&listing, page.page, page.pages, page.total),
        listing,
    })
}
