//! Rendering pages: the navigation every page shows, and templates into responses.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::auth::extractors::CurrentUser;
use crate::db::models::file::Sort;
use crate::domain::{FileId, FileType, StorageKey, Username};
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

/// Where a list page is: its path, search, filters, order and page size. Every link of the
/// page (pages, sort headers) keeps all of them but the page.
#[derive(Debug, Clone)]
pub struct Listing {
    pub path: &'static str,
    pub q: String,
    pub sort: Sort,
    pub per_page: i64,
    /// Whether `per_page` is the default, which links leave out.
    pub default_per_page: bool,
    /// The filters set, as URL fields (`access`, `owner`, `type`, `storage`, `uploaded`).
    pub filters: Vec<(&'static str, String)>,
}

fn encoded(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Listing {
    pub fn url(&self, page: i64, sort: Sort) -> String {
        let mut url = format!("{}?page={page}", self.path);
        if sort != Sort::default() {
            url.push_str("&sort=");
            url.push_str(sort.as_str());
        }
        if !self.default_per_page {
            url.push_str(&format!("&per_page={}", self.per_page));
        }
        for (name, value) in &self.filters {
            url.push_str(&format!("&{name}={}", encoded(value)));
        }
        if !self.q.is_empty() {
            url.push_str("&q=");
            url.push_str(&encoded(&self.q));
        }
        url
    }

    /// The page without its filters and search, in the same order and page size.
    pub fn clear_url(&self) -> String {
        Listing {
            q: String::new(),
            filters: Vec::new(),
            ..self.clone()
        }
        .url(1, self.sort)
    }

    /// Whether a search or a filter narrows the list.
    pub fn is_narrowed(&self) -> bool {
        !self.q.is_empty() || !self.filters.is_empty()
    }

    /// The URL of the page this listing is at, for a form that comes back to it.
    pub fn here(&self, page: &i64) -> String {
        self.url(*page, self.sort)
    }

    /// The two orders of a column (`name`, `size`, `type`, `owner`, `date`), the usual one
    /// first.
    fn orders(column: &str) -> (Sort, Sort) {
        match column {
            "name" => (Sort::Name, Sort::NameDesc),
            "size" => (Sort::SizeDesc, Sort::Size),
            "type" => (Sort::Type, Sort::TypeDesc),
            "owner" => (Sort::Owner, Sort::OwnerDesc),
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
        if !Self::is_column(self.sort, column) {
            return "none";
        }
        match self.sort {
            Sort::Name | Sort::Size | Sort::Oldest | Sort::Type | Sort::Owner => "ascending",
            Sort::NameDesc | Sort::SizeDesc | Sort::Newest | Sort::TypeDesc | Sort::OwnerDesc => {
                "descending"
            }
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

/// One entry of a pager: a page's link, or a gap (`number` none) where pages are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLink {
    pub number: Option<i64>,
    pub url: String,
    pub current: bool,
}

/// The pages a pager names: the first two, the last two, and the current one with its
/// neighbours, a gap for each run left out (a run of one is shown instead: a gap would be no
/// shorter). 1 2 … 7 8 9 … 39 40.
pub fn page_numbers(page: i64, pages: i64) -> Vec<Option<i64>> {
    let mut wanted: Vec<i64> = [1, 2, page - 1, page, page + 1, pages - 1, pages]
        .into_iter()
        .filter(|n| (1..=pages).contains(n))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for n in wanted {
        match n - last {
            1 => {}
            2 => out.push(Some(last + 1)),
            _ => out.push(None),
        }
        out.push(Some(n));
        last = n;
    }
    out
}

/// Previous/next and numbered links for a paged list, keeping the search, filters and order.
#[derive(Debug, Clone)]
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub links: Vec<PageLink>,
}

impl Pager {
    pub fn new(listing: &Listing, page: i64, pages: i64, total: i64) -> Self {
        Self {
            page,
            pages,
            total,
            prev: (page > 1).then(|| listing.url(page - 1, listing.sort)),
            next: (page < pages).then(|| listing.url(page + 1, listing.sort)),
            links: page_numbers(page, pages)
                .into_iter()
                .map(|number| PageLink {
                    number,
                    url: number
                        .map(|n| listing.url(n, listing.sort))
                        .unwrap_or_default(),
                    current: number == Some(page),
                })
                .collect(),
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
    /// In UTC, as shown without the script.
    pub uploaded_at: String,
    /// For `<time datetime>`, which `static/time.js` shows in the reader's time zone.
    pub uploaded_iso: String,
    pub download_url: String,
    /// The type in words, from the name and the sniffed type (`domain::FileType`): "PDF
    /// document", "PNG image", "Word document"…
    pub type_label: String,
    /// `?inline=1` for types a browser may show (images but SVG, PDF, text, audio, video).
    pub preview_url: Option<String>,
    /// The small thumbnail, for images that have one (src/thumbnails/).
    pub thumbnail_url: Option<String>,
    /// The medium one, for the detail page's preview.
    pub medium_url: Option<String>,
    /// "4000 × 3000 pixels", once known.
    pub dimensions: Option<String>,
    /// The type family (`image`, `document`…), for the icon of a file without a thumbnail.
    pub family: &'static str,
}

impl From<&crate::db::models::file::FileWithOwner> for FileView {
    fn from(f: &crate::db::models::file::FileWithOwner) -> Self {
        let file = &f.file;
        let uploaded = crate::display::ShownTime::new(file.uploaded_at);
        Self {
            id: file.id.clone(),
            title: file.title.clone(),
            original_name: file.original_name.clone(),
            size: crate::display::size(u64::try_from(file.size).unwrap_or(0)),
            size_bytes: file.size,
            content_type: file.content_type.clone(),
            owner: f.owner.clone(),
            rule: file.rule.as_str(),
            rule_words: file.rule.describe(),
            storage: file.storage.clone(),
            storage_key: file.storage_key.clone(),
            sha256: file.sha256.clone(),
            uploaded_at: uploaded.utc,
            uploaded_iso: uploaded.datetime,
            download_url: format!("/files/{}/download", file.id),
            type_label: FileType::of(&file.original_name, &file.content_type).label,
            preview_url: crate::delivery::Presentation::decide(
                &file.content_type,
                &file.original_name,
                true,
            )
            .inline
            .then(|| format!("/files/{}/download?inline=1", file.id)),
            thumbnail_url: file
                .thumbnails
                .then(|| format!("/files/{}/thumbnail", file.id)),
            medium_url: file
                .thumbnails
                .then(|| format!("/files/{}/thumbnail?size=medium", file.id)),
            dimensions: file
                .image_width
                .zip(file.image_height)
                .map(|(w, h)| format!("{w} × {h} pixels")),
            family: crate::db::models::file::type_family(&file.original_name, &file.content_type),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(page: i64, pages: i64) -> String {
        page_numbers(page, pages)
            .into_iter()
            .map(|n| n.map_or("…".to_owned(), |n| n.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn pagers_leave_out_runs_with_a_gap() {
        assert_eq!(numbers(1, 1), "1");
        assert_eq!(numbers(1, 3), "1 2 3");
        assert_eq!(numbers(8, 40), "1 2 … 7 8 9 … 39 40");
        assert_eq!(numbers(1, 40), "1 2 … 39 40");
        assert_eq!(numbers(40, 40), "1 2 … 39 40");
        // A run of one page is the page, not a gap.
        assert_eq!(numbers(5, 9), "1 2 3 4 5 6 7 8 9");
        assert_eq!(numbers(6, 12), "1 2 … 5 6 7 … 11 12");
    }

    #[test]
    fn list_links_keep_search_filters_order_and_size() {
        let listing = Listing {
            path: "/admin/files",
            q: "Über weisung".into(),
            sort: Sort::OwnerDesc,
            per_page: 50,
            default_per_page: false,
            filters: vec![("access", "users".into()), ("owner", "a&b".into())],
        };
        assert_eq!(
            listing.url(3, listing.sort),
            "/admin/files?page=3&sort=-owner&per_page=50&access=users&owner=a%26b&q=%C3%9Cber%20weisung"
        );
        assert_eq!(listing.sort_url("owner"), listing.url(1, Sort::Owner));
        assert_eq!(listing.aria_sort("owner"), "descending");
        assert_eq!(listing.aria_sort("name"), "none");
        assert_eq!(
            listing.clear_url(),
            "/admin/files?page=1&sort=-owner&per_page=50"
        );
    }
}
