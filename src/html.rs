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

/// Previous/next links for a paged list, keeping the search.
#[derive(Debug, Clone)]
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub fn new(path: &str, search: Option<&str>, page: i64, pages: i64, total: i64) -> Self {
        let url = |n: i64| {
            let mut url = format!("{path}?page={n}");
            if let Some(q) = search.filter(|q| !q.is_empty()) {
                url.push_str("&q=");
                url.push_str(
                    &percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC)
                        .to_string(),
                );
            }
            url
        };
        Self {
            page,
            pages,
            total,
            prev: (page > 1).then(|| url(page - 1)),
            next: (page < pages).then(|| url(page + 1)),
        }
    }
}

/// A file as lists and detail pages show it.
#[derive(Debug, Clone)]
pub struct FileView {
    pub id: String,
    pub title: String,
    pub original_name: String,
    pub size: String,
    pub size_bytes: i64,
    pub content_type: String,
    pub owner: String,
    pub rule: &'static str,
    pub rule_words: &'static str,
    pub storage: String,
    pub storage_key: String,
    pub sha256: String,
    pub uploaded_at: String,
    pub download_url: String,
}

impl From<&crate::db::models::file::FileWithOwner> for FileView {
    fn from(f: &crate::db::models::file::FileWithOwner) -> Self {
        let file = &f.file;
        Self {
            id: file.id.clone(),
            title: file.title.clone(),
            original_name: file.original_name.clone(),
            size: crate::upload::human_size(file.size.max(0) as u64),
            size_bytes: file.size,
            content_type: file.content_type.clone(),
            owner: f.owner.clone(),
            rule: file.rule().as_str(),
            rule_words: file.rule().describe(),
            storage: file.storage.clone(),
            storage_key: file.storage_key.clone(),
            sha256: file.sha256.clone(),
            uploaded_at: file.uploaded_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            download_url: format!("/files/{}/download", file.id),
        }
    }
}
