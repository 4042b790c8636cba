//! Share links in the admin (README: "Share links"): made on a file's detail page, listed
//! there and on `/admin/links`, revoked with a button.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{NaiveDateTime, Utc};
use serde::Deserialize;

use crate::auth::extractors::StaffUser;
use crate::auth::password::{NewPassword, hash_in_turn};
use crate::auth::session::TypedSession;
use crate::client_addr;
use crate::db::models::share_link::{LinkRow, LinkState, ListedLink, NewLink, ShareLink};
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::{LinkId, LinkLifetime, ShareToken};
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::routes::admin::files::detail_page;
use crate::routes::{parse_file_id, see_other};
use crate::state::AppState;

/// Links per page of `/admin/links`.
const PER_PAGE: i64 = 50;
/// The longest label a link may have.
const MAX_LABEL_CHARS: usize = 200;
/// The choices the form offers; any `<n>h`, `<n>d` or number of hours is taken too.
pub const EXPIRY_CHOICES: [(&str, &str); 4] = [
    ("1h", "1 hour"),
    ("1d", "1 day"),
    ("7d", "7 days"),
    ("30d", "30 days"),
];
pub const DEFAULT_EXPIRY: &str = "7d";

pub struct ExpiryChoice {
    pub value: &'static str,
    pub words: &'static str,
    pub selected: bool,
}

pub fn expiry_choices() -> Vec<ExpiryChoice> {
    EXPIRY_CHOICES
        .iter()
        .map(|&(value, words)| ExpiryChoice {
            value,
            words,
            selected: value == DEFAULT_EXPIRY,
        })
        .collect()
}

/// A link as the admin's tables show it.
pub struct LinkView {
    pub id: LinkId,
    pub label: String,
    pub file_id: String,
    pub file_title: String,
    pub creator: String,
    pub created_at: String,
    pub expires_at: String,
    pub downloads: String,
    pub last_used_at: String,
    pub state: &'static str,
    pub state_words: &'static str,
    pub has_password: bool,
    pub revocable: bool,
}

fn when(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl LinkView {
    pub fn of(listed: &ListedLink, now: NaiveDateTime) -> Self {
        let link: &LinkRow = &listed.link;
        let state = link.state(now);
        Self {
            id: link.id.clone(),
            label: link.label.clone(),
            file_id: link.file_id.to_string(),
            file_title: listed.file_title.clone(),
            creator: listed.creator.to_string(),
            created_at: when(link.created_at),
            expires_at: when(link.expires_at),
            downloads: match link.max_downloads {
                Some(max) => format!("{} of {max}", link.downloads),
                None => format!("{} (no limit)", link.downloads),
            },
            last_used_at: link
                .last_used_at
                .map(when)
                .unwrap_or_else(|| "never".into()),
            state: state.as_str(),
            state_words: state.words(),
            has_password: link.password_hash.is_some(),
            revocable: link.revoked_at.is_none(),
        }
    }
}

/// The share form, as it was sent.
#[derive(Debug, Default, Deserialize)]
pub struct ShareForm {
    #[serde(default)]
    pub expires_in: String,
    #[serde(default)]
    pub max_downloads: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub label: String,
}

/// A share form that makes sense: what the new link will be.
struct Checked {
    lifetime: LinkLifetime,
    max_downloads: Option<i64>,
    password: Option<NewPassword>,
    label: String,
}

fn check(form: ShareForm, max: LinkLifetime) -> Result<Checked, String> {
    let expires_in = form.expires_in.trim();
    let expires_in = if expires_in.is_empty() {
        DEFAULT_EXPIRY
    } else {
        expires_in
    };
    let lifetime =
        LinkLifetime::parse_within(expires_in, max).map_err(|e| format!("Expiry: {e}."))?;
    let max_downloads = match form.max_downloads.trim() {
        "" => None,
        text => match text
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| text.parse::<i64>().ok())
            .flatten()
        {
            Some(n) if (1..=1_000_000).contains(&n) => Some(n),
            _ => {
                return Err(
                    "Download limit: a whole number from 1 to 1,000,000, or empty for no limit."
                        .into(),
                );
            }
        },
    };
    let password = if form.password.is_empty() {
        None
    } else {
        Some(NewPassword::parse(form.password).map_err(|e| format!("Password: {e}."))?)
    };
    let label = form.label.trim().to_owned();
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(format!(
            "Label: at most {MAX_LABEL_CHARS} characters, please."
        ));
    }
    Ok(Checked {
        lifetime,
        max_downloads,
        password,
        label,
    })
}

/// `https://host` as the browser reached the site: the scheme from the connection or a
/// trusted proxy, the host from the request's `Host`.
pub(crate) fn site_origin(req: &HttpRequest, state: &AppState) -> String {
    let https = client_addr::is_https(
        req.app_config().secure(),
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.settings.server.trusted_proxies,
    );
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| state.settings.bind.to_string());
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// `POST /admin/files/{id}/links`: makes a link and shows its URL once on the detail page.
pub async fn create(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    id: web::Path<String>,
    form: web::Form<ShareForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let file_id = parse_file_id(&id)?;
    let checked = match check(form.into_inner(), state.settings.sharing.max_expiry) {
        Ok(checked) => checked,
        Err(message) => {
            let mut page = detail_page(&state, &current, &req, file_id, None, None).await?;
            page.share_error = Some(message);
            return html::render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let password_hash = match checked.password {
        Some(password) => Some(
            hash_in_turn(password)
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
                .into_string(),
        ),
        None => None,
    };
    let token = ShareToken::generate();
    let digest = token.digest();
    let link_id = LinkId::generate();
    let recorded_link = link_id.clone();
    let detail = format!(
        "expires in {}; {}; {}{}",
        checked.lifetime,
        checked.max_downloads.map_or_else(
            || "no download limit".to_owned(),
            |n| format!("at most {n} downloads")
        ),
        if password_hash.is_some() {
            "with a password"
        } else {
            "no password"
        },
        if checked.label.is_empty() {
            String::new()
        } else {
            format!("; label “{}”", checked.label)
        }
    );
    let creator = current.user.id.clone();
    let now = Utc::now().naive_utc();
    let expires_at = now + chrono::Duration::hours(i64::from(checked.lifetime.hours()));
    let for_file = file_id.clone();
    let made = state
        .db
        .run(move |c| {
            let Some(file) = crate::db::models::file::FileRow::find(c, &for_file)? else {
                return Ok(None);
            };
            ShareLink::create(
                c,
                NewLink {
                    id: &link_id,
                    file_id: &for_file,
                    token_sha256: &digest,
                    label: &checked.label,
                    created_by_id: &creator,
                    created_at: now,
                    expires_at,
                    max_downloads: checked.max_downloads,
                    password_hash: password_hash.as_deref(),
                },
            )?;
            Ok(Some(file.original_name))
        })
        .await?;
    let Some(file_name) = made else {
        return Err(AppError::NotFound);
    };
    tracing::info!(file = %file_id, by = %current.user.username, "share link made");
    state
        .record_change(&req, "link_created", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.link_id = Some(recorded_link.to_string());
            e.file_id = Some(file_id.to_string());
            e.file_name = Some(file_name);
            e.detail = Some(detail);
        })
        .await;
    session.set_new_link(
        &file_id,
        &format!("{}/s/{}", site_origin(&req, &state), token.as_str()),
    );
    Ok(see_other(&format!("/admin/files/{file_id}#links")))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    /// `list` when the button was on `/admin/links`.
    back: Option<String>,
}

/// `POST /admin/links/{id}/revoke`: back to where the button was (the file or the list).
pub async fn revoke(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    id: web::Path<String>,
    form: web::Form<RevokeForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let link_id = LinkId::parse(&id).map_err(|_| AppError::NotFound)?;
    let now = Utc::now().naive_utc();
    let lookup = link_id.clone();
    let link = state
        .db
        .run(move |c| {
            let link = ShareLink::find(c, &lookup)?;
            if link.is_some() {
                ShareLink::revoke(c, &lookup, now)?;
            }
            Ok(link)
        })
        .await?
        .ok_or(AppError::NotFound)?;
    tracing::info!(link = %link_id, by = %current.user.username, "share link revoked");
    state
        .record_change(&req, "link_revoked", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.link_id = Some(link_id.to_string());
            e.file_id = Some(link.file_id.to_string());
            e.detail = (!link.label.is_empty()).then(|| format!("label “{}”", link.label));
        })
        .await;
    session.set_flash(if link.label.is_empty() {
        "Link revoked.".to_owned()
    } else {
        format!("Link “{}” revoked.", link.label)
    });
    Ok(see_other(&if form.back.as_deref() == Some("list") {
        "/admin/links".to_owned()
    } else {
        format!("/admin/files/{}#links", link.file_id)
    }))
}

#[derive(Template)]
#[template(path = "admin/links.html")]
struct ListPage {
    nav: Option<Nav>,
    flash: Option<String>,
    links: Vec<LinkView>,
    filters: Vec<StateFilter>,
    total: i64,
    page: i64,
    pages: i64,
    previous_url: Option<String>,
    next_url: Option<String>,
}

struct StateFilter {
    url: String,
    words: &'static str,
    current: bool,
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    state: Option<String>,
    page: Option<i64>,
}

/// `GET /admin/links`: every link of every file, newest first, `?state=` to filter.
pub async fn list(
    StaffUser(current): StaffUser,
    session: TypedSession,
    params: web::Query<ListParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let params = params.into_inner();
    let filter = match params.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(text) => Some(LinkState::parse(text).ok_or_else(|| {
            AppError::BadRequest(format!(
                "There is no link state “{text}”: use active, expired, used-up or revoked."
            ))
        })?),
    };
    let page = params.page.unwrap_or(1).max(1);
    let now = Utc::now().naive_utc();
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let found = state
        .db
        .read(move |c| ShareLink::page(c, filter, now, offset, PER_PAGE))
        .await?;
    let pages = ((found.total + PER_PAGE - 1) / PER_PAGE).max(1);
    let state_param = filter
        .map(|s| format!("state={}&", s.as_str()))
        .unwrap_or_default();
    let page_url = |n: i64| format!("/admin/links?{state_param}page={n}");
    let mut filters = vec![StateFilter {
        url: "/admin/links".into(),
        words: "all",
        current: filter.is_none(),
    }];
    filters.extend(LinkState::ALL.into_iter().map(|s| StateFilter {
        url: format!("/admin/links?state={}", s.as_str()),
        words: s.words(),
        current: filter == Some(s),
    }));
    html::page(&ListPage {
        nav: Some(Nav::from(&current)),
        flash: session.take_flash(),
        links: found.links.iter().map(|l| LinkView::of(l, now)).collect(),
        filters,
        total: found.total,
        page,
        pages,
        previous_url: (page > 1).then(|| page_url(page - 1)),
        next_url: (page < pages).then(|| page_url(page + 1)),
    })
}

/// What the detail page shows of its file's links.
pub async fn of_file(
    state: &AppState,
    file_id: &crate::domain::FileId,
) -> Result<Vec<LinkView>, AppError> {
    let lookup = file_id.clone();
    let now = Utc::now().naive_utc();
    let links = state
        .db
        .read(move |c| ShareLink::of_file(c, &lookup))
        .await?;
    Ok(links.iter().map(|l| LinkView::of(l, now)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(expires_in: &str, max: &str, password: &str, label: &str) -> ShareForm {
        ShareForm {
            expires_in: expires_in.into(),
            max_downloads: max.into(),
            password: password.into(),
            label: label.into(),
        }
    }

    #[test]
    fn the_share_form_is_checked_field_by_field() {
        let max = LinkLifetime::days(90);
        let ok = check(form("", "", "", " For the accountant "), max).unwrap();
        assert_eq!(ok.lifetime, LinkLifetime::days(7));
        assert_eq!(ok.max_downloads, None);
        assert!(ok.password.is_none());
        assert_eq!(ok.label, "For the accountant");
        let limited = check(form("48", "3", "long enough pw", ""), max).unwrap();
        assert_eq!(limited.lifetime.hours(), 48);
        assert_eq!(limited.max_downloads, Some(3));
        assert!(limited.password.is_some());
        for (bad, field) in [
            (form("91d", "", "", ""), "Expiry"),
            (form("soon", "", "", ""), "Expiry"),
            (form("1d", "0", "", ""), "Download limit"),
            (form("1d", "-1", "", ""), "Download limit"),
            (form("1d", "two", "", ""), "Download limit"),
            (form("1d", "+5", "", ""), "Download limit"),
            (form("1d", "", "short", ""), "Password"),
            (form("1d", "", "", &"x".repeat(201)), "Label"),
        ] {
            let message = check(bad, max).err().unwrap();
            assert!(message.starts_with(field), "{message}");
        }
    }
}
