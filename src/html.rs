//! Rendering pages: the navigation every page shows, and templates into responses.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::auth::extractors::CurrentUser;
use crate::db::models::file::Sort;
use crate::domain::{FileId, StorageKey, Username};
use crate::error::AppError;

/// The header of a page for a logged-in user; its log-out form needs the CSRF token.
#[derive(Debug, Clone)]
pub struct Nav {
    pub username: Username,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub csrf_token: String,
    /// The path of the page, for `aria-current` (`is_current`).
    pub path: String,
}

impl Nav {
    /// Whether the navigation link `href` leads to the part of the site this page is in: the
    /// link gets `aria-current="page"`. The admin's home stands for the file pages too.
    pub fn is_current(&self, href: &str) -> bool {
        let path = self.path.as_str();
        let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
        match href {
            "/admin/" => path == "/admin/" || under("/admin/files"),
            "/files" => path == "/files",
            other => under(other),
        }
    }
}

impl From<&CurrentUser> for Nav {
    fn from(current: &CurrentUser) -> Self {
        Self {
            username: current.user.username.clone(),
            is_staff: current.user.is_staff_member(),
            is_superuser: current.user.is_superuser,
            csrf_token: current.csrf_token.clone(),
            path: current.path.clone(),
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

/// Where a list page is: its path, search and order. Every link of the page (pages, sort
/// headers) keeps the other two.
#[derive(Debug, Clone)]
pub struct Listing {
    pub path: &'static str,
    pub q: String,
    pub sort: Sort,
}

impl Listing {
    pub fn url(&self, page: i64, sort: Sort) -> String {
        let mut url = format!("{}?page={page}", self.path);
        if sort != Sort::default() {
            url.push_str("&sort=");
            url.push_str(sort.as_str());
        }
        if !self.q.is_empty() {
            url.push_str("&q=");
            url.push_str(
                &percent_encoding::utf8_percent_encode(&self.q, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        url
    }

    /// The two orders of a column (`name`, `size`, `date`), the usual one first.
    fn orders(column: &str) -> (Sort, Sort) {
        match column {
            "name" => (Sort::Name, Sort::NameDesc),
            "size" => (Sort::SizeDesc, Sort::Size),
            _ => (Sort::Newest, Sort::Oldest),
        }
    }

    /// The header link of a column: its usual order, or the other one when already sorted so.
    pub fn sort_url(&self, column: &str) -> String {
        let (first, second) = Self::orders(column);
        let next = if self.sort == first { second } else { first };
        self.url(1, next)
    }

    /// `aria-sort` for a column header.
    pub fn aria_sort(&self, column: &str) -> &'static str {
        match self.sort {
            Sort::Name | Sort::Size | Sort::Oldest if Self::is_column(self.sort, column) => {
                "ascending"
            }
            Sort::NameDesc | Sort::SizeDesc | Sort::Newest
                if Self::is_column(self.sort, column) =>
            {
                "descending"
            }
            _ => "none",
        }
    }

    pub fn sort_mark(&self, column: &str) -> &'static str {
        match self.aria_sort(column) {
            "ascending" => " ↑",
            "descending" => " ↓",
            _ => "",
        }
    }

    fn is_column(sort: Sort, column: &str) -> bool {
        let (a, b) = Self::orders(column);
        sort == a || sort == b
    }
}

/// Previous/next links for a paged list, keeping the search and the order.
#[derive(Debug, Clone)]
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub fn new(listing: &Listing, page: i64, pages: i64, total: i64) -> Self {
        Self {
            page,
            pages,
            total,
            prev: (page > 1).then(|| listing.url(page - 1, listing.sort)),
            next: (page < pages).then(|| listing.url(page + 1, listing.sort)),
        }
    }
}

/// A file as lists and detail pages show it.
#[derive(Debug, Clone)]
pub struct FileView {
    pub id: FileId,
    pub title: String,
    pub original_name: String,
    pub size: String,
    pub size_bytes: i64,
    pub content_type: String,
    pub owner: Username,
    pub rule: &'static str,
    pub rule_words: &'static str,
    pub storage: String,
    pub storage_key: StorageKey,
    pub sha256: String,
    pub uploaded_at: String,
    pub download_url: String,
    /// A short word for the type: "PDF", "PNG image", "text"…
    pub type_label: String,
    /// `?inline=1` for types a browser may show (images but SVG, PDF, text, audio, video).
    pub preview_url: Option<String>,
}

/// What a list shows for a content type.
pub fn type_label(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let (top, sub) = essence.split_once('/').unwrap_or((essence, ""));
    match (top, sub) {
        ("application", "pdf") => "PDF".to_owned(),
        ("application", "zip") => "ZIP archive".to_owned(),
        ("application", "octet-stream") | ("", _) => "binary".to_owned(),
        ("text", "plain") => "text".to_owned(),
        ("text", "csv") => "CSV".to_owned(),
        ("image" | "audio" | "video", sub) => {
            let sub = sub.split('+').next().unwrap_or(sub);
            format!("{} {top}", sub.to_uppercase())
        }
        (_, sub) => sub.to_owned(),
    }
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
            rule: file.rule.as_str(),
            rule_words: file.rule.describe(),
            storage: file.storage.clone(),
            storage_key: file.storage_key.clone(),
            sha256: file.sha256.clone(),
            uploaded_at: file.uploaded_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            download_url: format!("/files/{}/download", file.id),
            type_label: type_label(&file.content_type),
            preview_url: crate::delivery::Presentation::decide(
                &file.content_type,
                &file.original_name,
                true,
            )
            .inline
            .then(|| format!("/files/{}/download?inline=1", file.id)),
        }
    }
}
