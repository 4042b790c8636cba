//! What the two file lists share (`/files` and `/admin/files`): the query string (search,
//! filters, order, page and page size), one page of rows with who may read each, the filter
//! form's choices, and the links that keep all of these together.

use std::collections::HashMap;

use chrono::{Datelike, Duration, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::db::models::file::{FileRow, FileWithOwner, Filters, ListQuery, Page, Sort};
use crate::db::{DbConn, DbError};
use crate::domain::{AccessRule, FileId, TypeFamily, Username};
use crate::error::AppError;
use crate::html::{FileView, Listing, Pager};
use crate::state::AppState;

/// The page sizes a list offers; any other `per_page` is the default, as a stale `sort` is
/// the default order (a link that went stale still shows a list).
pub const PER_PAGE_CHOICES: [i64; 4] = [10, 25, 50, 100];
pub const PER_PAGE: i64 = 25;

/// Names an access column shows before it counts the rest ("alice, paul +3").
const NAMES_SHOWN: usize = 2;

/// `?q=…&page=…&sort=…&per_page=…&access=…&owner=…&type=…&storage=…&uploaded=…`. A filter
/// with an unknown value is left out, like an unknown `sort`.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    page: Option<i64>,
    sort: Option<String>,
    per_page: Option<String>,
    access: Option<String>,
    owner: Option<String>,
    #[serde(rename = "type")]
    family: Option<String>,
    storage: Option<String>,
    uploaded: Option<String>,
    /// `all`: every row of the admin list checked (the no-script "select all").
    select: Option<String>,
}

/// The `uploaded` filter: since the start of today, of the last 7 days, of this month or of
/// this year, in UTC (the server's calendar; the dates the pages show are UTC without the
/// script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    Today,
    Week,
    Month,
    Year,
}

impl Uploaded {
    pub const ALL: [Uploaded; 4] = [
        Uploaded::Today,
        Uploaded::Week,
        Uploaded::Month,
        Uploaded::Year,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Today => "today",
            Self::Week => "7d",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Today => "Today",
            Self::Week => "Past 7 days",
            Self::Month => "This month",
            Self::Year => "This year",
        }
    }

    /// The first moment the filter keeps, seen at `now`.
    pub fn since(self, now: NaiveDateTime) -> NaiveDateTime {
        let today = now.date();
        let day = match self {
            Self::Today => today,
            Self::Week => return now - Duration::days(7),
            Self::Month => today.with_day(1).unwrap_or(today),
            Self::Year => today.with_ordinal(1).unwrap_or(today),
        };
        day.and_time(chrono::NaiveTime::MIN)
    }
}

/// One value of a filter or menu, for a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices<T: Copy + PartialEq>(
    all: impl IntoIterator<Item = T>,
    selected: Option<T>,
    value: impl Fn(T) -> String,
    label: impl Fn(T) -> String,
) -> Vec<Choice> {
    all.into_iter()
        .map(|item| Choice {
            value: value(item),
            label: label(item),
            selected: selected == Some(item),
        })
        .collect()
}

/// The filter form: each control's choices with the current one selected. The access rule
/// and storage filters are the admin's only.
pub struct Controls {
    pub admin: bool,
    pub rules: Vec<Choice>,
    pub families: Vec<Choice>,
    pub storages: Vec<Choice>,
    pub uploaded: Vec<Choice>,
    pub sorts: Vec<Choice>,
    pub per_page: Vec<Choice>,
    /// The owner filter as typed.
    pub owner: String,
    /// Every row checked, for the bulk actions.
    pub select_all: bool,
}

/// A row of a list: the file, and who may read it in a few words.
pub struct ListRow {
    pub file: FileView,
    /// "alice, paul +3", "Staff", "Everyone logged in".
    pub readers: String,
    /// Every name, for the row's tooltip.
    pub readers_all: String,
}

/// One page of a list, ready for a template.
pub struct FileList {
    pub listing: Listing,
    pub rows: Vec<ListRow>,
    pub pager: Pager,
    pub controls: Controls,
}

/// Who may read a file, as the access column says it. Staff and superusers read every file,
/// so no rule names them but the one that is theirs alone.
fn readers_text(rule: AccessRule, owner: &Username, readers: &[Username]) -> (String, String) {
    match rule {
        AccessRule::Owner => (owner.to_string(), format!("{owner} (and staff)")),
        AccessRule::Staff => ("Staff".to_owned(), "Staff only".to_owned()),
        AccessRule::Authenticated => (
            "Everyone logged in".to_owned(),
            "Every logged-in user".to_owned(),
        ),
        AccessRule::Users => {
            let mut names: Vec<&Username> = vec![owner];
            names.extend(readers.iter().filter(|r| *r != owner));
            let shown: Vec<String> = names
                .iter()
                .take(NAMES_SHOWN)
                .map(ToString::to_string)
                .collect();
            let mut short = shown.join(", ");
            if names.len() > NAMES_SHOWN {
                short.push_str(&format!(" +{}", names.len() - NAMES_SHOWN));
            }
            let all: Vec<String> = names.iter().map(ToString::to_string).collect();
            (short, format!("{} (and staff)", all.join(", ")))
        }
    }
}

/// A value of the query string, trimmed; none when empty.
fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Reads the page `params` ask for with `fetch` (which decides whose files they are).
/// `admin` lists also filter by access rule and storage.
pub async fn file_list<F>(
    state: &AppState,
    path: &'static str,
    admin: bool,
    params: ListParams,
    fetch: F,
) -> Result<FileList, AppError>
where
    F: FnOnce(&mut DbConn, &ListQuery) -> Result<Page<FileWithOwner>, DbError> + Send + 'static,
{
    let per_page = given(params.per_page.as_ref())
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| PER_PAGE_CHOICES.contains(n))
        .unwrap_or(PER_PAGE);
    let rule = given(params.access.as_ref())
        .filter(|_| admin)
        .and_then(AccessRule::parse);
    let family = given(params.family.as_ref()).and_then(TypeFamily::parse);
    let storage = given(params.storage.as_ref())
        .filter(|s| admin && state.storages.get(s).is_some())
        .map(str::to_owned);
    let uploaded = given(params.uploaded.as_ref()).and_then(Uploaded::parse);
    let owner_typed = given(params.owner.as_ref()).unwrap_or_default().to_owned();
    // A name that cannot be a user's matches nobody's files, as an unknown one does.
    let owner = (!owner_typed.is_empty()).then(|| Username::parse(&owner_typed).ok());
    let sort = Sort::parse(params.sort.as_deref());

    let mut url_filters: Vec<(&'static str, String)> = Vec::new();
    if let Some(rule) = rule {
        url_filters.push(("access", rule.as_str().to_owned()));
    }
    if !owner_typed.is_empty() {
        url_filters.push(("owner", owner_typed.clone()));
    }
    if let Some(family) = family {
        url_filters.push(("type", family.as_str().to_owned()));
    }
    if let Some(storage) = &storage {
        url_filters.push(("storage", storage.clone()));
    }
    if let Some(uploaded) = uploaded {
        url_filters.push(("uploaded", uploaded.as_str().to_owned()));
    }

    let query = ListQuery {
        search: params.q.clone(),
        page: params.page.unwrap_or(1),
        per_page,
        sort,
        filters: Filters {
            rule,
            owner: owner.clone().flatten(),
            family,
            storage: storage.clone(),
            since: uploaded.map(|u| u.since(Utc::now().naive_utc())),
        },
    };
    let nobody = matches!(owner, Some(None));
    let (page, readers) = state
        .db
        .read(move |c| {
            if nobody {
                return Ok((
                    Page {
                        items: Vec::new(),
                        page: 1,
                        pages: 1,
                        total: 0,
                    },
                    HashMap::new(),
                ));
            }
            let page = fetch(c, &query)?;
            let ids: Vec<FileId> = page
                .items
                .iter()
                .filter(|f| f.file.rule == AccessRule::Users)
                .map(|f| f.file.id.clone())
                .collect();
            let readers = if admin && !ids.is_empty() {
                FileRow::readers_of_many(c, &ids)?
            } else {
                HashMap::new()
            };
            Ok((page, readers))
        })
        .await?;
    let listing = Listing {
        path,
        q: params.q.unwrap_or_default().trim().to_owned(),
        sort,
        per_page,
        default_per_page: per_page == PER_PAGE,
        filters: url_filters,
    };
    let rows = page
        .items
        .iter()
        .map(|f| {
            let names = readers.get(&f.file.id).map(Vec::as_slice).unwrap_or(&[]);
            let (readers, readers_all) = readers_text(f.file.rule, &f.owner, names);
            ListRow {
                file: FileView::from(f),
                readers,
                readers_all,
            }
        })
        .collect();
    let storage_names: Vec<String> = state.storages.names().map(str::to_owned).collect();
    let controls = Controls {
        admin,
        rules: choices(
            AccessRule::ALL,
            rule,
            |r| r.as_str().to_owned(),
            |r| r.describe().to_owned(),
        ),
        families: choices(
            TypeFamily::ALL,
            family,
            |f| f.as_str().to_owned(),
            |f| f.plural().to_owned(),
        ),
        storages: storage_names
            .into_iter()
            .map(|name| Choice {
                selected: storage.as_deref() == Some(name.as_str()),
                label: name.clone(),
                value: name,
            })
            .collect(),
        uploaded: choices(
            Uploaded::ALL,
            uploaded,
            |u| u.as_str().to_owned(),
            |u| u.describe().to_owned(),
        ),
        sorts: choices(
            Sort::ALL,
            Some(sort),
            |s| s.as_str().to_owned(),
            |s| s.describe().to_owned(),
        ),
        per_page: choices(
            PER_PAGE_CHOICES,
            Some(per_page),
            |n| n.to_string(),
            |n| format!("{n} per page"),
        ),
        owner: owner_typed,
        select_all: admin && params.select.as_deref() == Some("all"),
    };
    Ok(FileList {
        pager: Pager::new(&listing, page.page, page.pages, page.total),
        listing,
        rows,
        controls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 30, 0))
            .expect("a date")
    }

    #[test]
    fn uploaded_periods_start_where_the_calendar_says() {
        let now = at(2026, 12, 3, 15);
        let midnight = |y, m, d| at(y, m, d, 0) - Duration::minutes(30);
        assert_eq!(Uploaded::Today.since(now), midnight(2026, 12, 3));
        assert_eq!(Uploaded::Week.since(now), at(2026, 11, 26, 15));
        assert_eq!(Uploaded::Month.since(now), midnight(2026, 12, 1));
        assert_eq!(Uploaded::Year.since(now), midnight(2026, 1, 1));
        for u in Uploaded::ALL {
            assert_eq!(Uploaded::parse(u.as_str()), Some(u));
        }
        assert_eq!(Uploaded::parse("week"), None);
    }

    fn names(list: &[&str]) -> Vec<Username> {
        list.iter()
            .map(|n| Username::parse(n).expect("a name"))
            .collect()
    }

    #[test]
    fn the_access_column_names_who_reads() {
        let alice = Username::parse("alice").expect("a name");
        let text = |rule, readers: &[&str]| readers_text(rule, &alice, &names(readers)).0;
        assert_eq!(text(AccessRule::Owner, &[]), "alice");
        assert_eq!(text(AccessRule::Staff, &[]), "Staff");
        assert_eq!(text(AccessRule::Authenticated, &[]), "Everyone logged in");
        assert_eq!(text(AccessRule::Users, &[]), "alice");
        assert_eq!(text(AccessRule::Users, &["paul"]), "alice, paul");
        assert_eq!(
            text(AccessRule::Users, &["alice", "bob", "paul", "zoe"]),
            "alice, bob +2"
        );
        assert_eq!(
            readers_text(AccessRule::Users, &alice, &names(&["bob", "paul"])).1,
            "alice, bob, paul (and staff)"
        );
    }
}
