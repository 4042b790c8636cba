//! The admin's file list, detail page, edits and deletion.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::extractors::StaffUser;
use crate::auth::session::TypedSession;
use crate::db::models::file::FileRow;
use crate::db::models::user::User;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::{AccessRule, FileId, UserId, Username};
use crate::error::AppError;
use crate::html::{self, FileView, Listing, Nav, Pager};
use crate::routes::admin::audit::{self, EventView};
use crate::routes::admin::links::{self, LinkView};
use crate::routes::file_list::{Controls, FileList, ListParams, ListRow, file_list};
use crate::routes::{parse_file_id, see_other};
use crate::state::AppState;

/// Events a file's page shows; the audit page has the rest.
const FILE_EVENTS: i64 = 20;

#[derive(Template)]
#[template(path = "admin/files.html")]
struct ListPage {
    nav: Option<Nav>,
    flash: Option<String>,
    listing: Listing,
    rows: Vec<ListRow>,
    pager: Pager,
    controls: Controls,
}

pub async fn list(
    StaffUser(current): StaffUser,
    session: TypedSession,
    params: web::Query<ListParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let FileList {
        listing,
        rows,
        pager,
        controls,
    } = file_list(
        &state,
        "/admin/files",
        true,
        params.into_inner(),
        FileRow::admin_page,
    )
    .await?;
    html::page(&ListPage {
        nav: Some(Nav::from(&current)),
        flash: session.take_flash(),
        listing,
        rows,
        pager,
        controls,
    })
}

#[derive(Template)]
#[template(path = "admin/file.html")]
pub struct DetailPage {
    nav: Option<Nav>,
    flash: Option<String>,
    error: Option<String>,
    file: FileView,
    storage_kind: String,
    readers: Vec<Username>,
    /// The readers as the picker's text field holds them.
    readers_text: String,
    rules: Vec<RuleOption>,
    /// How the page shows the file, if it is a type the download route shows inline.
    preview: Option<Preview>,
    /// The download link in full, for the copy button.
    link: String,
    /// Other files with the same SHA-256.
    duplicates: Vec<(FileId, String)>,
    /// The per-file upload limit, which a replacement meets too.
    upload_limit: String,
    links: Vec<LinkView>,
    /// A link just made: its full URL, shown this once.
    pub new_link: Option<String>,
    /// Why the share form was refused.
    pub share_error: Option<String>,
    expiry_choices: Vec<links::ExpiryChoice>,
    max_expiry: String,
    /// Granted downloads that sent the file, from the audit log.
    download_count: i64,
    /// The file's latest events, newest first.
    events: Vec<EventView>,
}

/// The element an inline preview needs; the URL is the download route's `?inline=1`, so
/// what may be shown inline is decided there alone (`delivery::presentation`).
pub enum Preview {
    Image(String),
    Audio(String),
    Video(String),
    Pdf(String),
}

impl Preview {
    fn of(file: &FileView) -> Option<Self> {
        let url = file.preview_url.clone()?;
        let essence = file.content_type.split(';').next().unwrap_or("").trim();
        match essence.split_once('/') {
            // The medium thumbnail when there is one: upright, without metadata, small.
            Some(("image", _)) => Some(Preview::Image(file.medium_url.clone().unwrap_or(url))),
            Some(("audio", _)) => Some(Preview::Audio(url)),
            Some(("video", _)) => Some(Preview::Video(url)),
            Some(("application", "pdf")) => Some(Preview::Pdf(url)),
            // Plain text is safe inline too, but a link to it says as much as a frame would.
            _ => None,
        }
    }
}

/// How many files with the same content the detail page names.
const DUPLICATES_SHOWN: i64 = 5;

/// Usernames from the readers field (commas, spaces or lines between them) and from any
/// `users` fields (one name each, as older forms send them).
pub fn reader_names<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

pub struct RuleOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub fn rule_options(selected: AccessRule) -> Vec<RuleOption> {
    AccessRule::ALL
        .iter()
        .map(|rule| RuleOption {
            value: rule.as_str(),
            label: rule.describe(),
            selected: *rule == selected,
        })
        .collect()
}

pub async fn detail_page(
    state: &AppState,
    current: &crate::auth::extractors::CurrentUser,
    req: &actix_web::HttpRequest,
    id: FileId,
    flash: Option<String>,
    error: Option<String>,
) -> Result<DetailPage, AppError> {
    let (file, readers, duplicates) = state
        .db
        .read(move |c| {
            let Some(file) = FileRow::find_with_owner(c, &id)? else {
                return Ok(None);
            };
            let readers = FileRow::reader_names(c, &id)?;
            let duplicates = FileRow::same_content(c, &file.file.sha256, &id, DUPLICATES_SHOWN)?;
            Ok(Some((file, readers, duplicates)))
        })
        .await?
        .ok_or(AppError::NotFound)?;
    let storage_kind = state
        .storages
        .get(&file.file.storage)
        .map(|s| s.kind().to_owned())
        .unwrap_or_else(|| "not configured".to_owned());
    let links = links::of_file(state, &file.file.id).await?;
    let (download_count, events) =
        audit::of_file(state, file.file.id.as_str(), FILE_EVENTS).await?;
    let view = FileView::from(&file);
    Ok(DetailPage {
        nav: Some(Nav::from(current)),
        flash,
        error,
        rules: rule_options(file.file.rule),
        preview: Preview::of(&view),
        link: format!("{}{}", links::site_origin(req, state), view.download_url),
        file: view,
        storage_kind,
        readers_text: readers
            .iter()
            .map(Username::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        readers,
        duplicates,
        upload_limit: crate::upload::human_size(state.settings.upload.max_file_size),
        links,
        new_link: None,
        share_error: None,
        expiry_choices: links::expiry_choices(),
        max_expiry: state.settings.sharing.max_expiry.to_string(),
        download_count,
        events,
    })
}

pub async fn detail(
    req: actix_web::HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    // Taken before the id is looked at: every 404 here uses up the flash alike.
    let flash = session.take_flash();
    let id = parse_file_id(&id)?;
    let new_link = session.take_new_link(&id);
    let mut page = detail_page(&state, &current, &req, id, flash, None).await?;
    page.new_link = new_link;
    html::page(&page)
}

/// The edit form: `title`, `access`, `owner` (a username; absent or empty keeps the owner)
/// and the readers (`readers`, and `users` fields).
pub async fn update(
    req: actix_web::HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = parse_file_id(&id)?;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let names = reader_names(
        form.iter()
            .filter(|(k, _)| k == "users" || k == "readers")
            .map(|(_, v)| v.as_str()),
    );
    let title = field("title").unwrap_or_default();
    let rule = field("access").as_deref().and_then(AccessRule::parse);
    let owner_name = field("owner").filter(|o| !o.is_empty());

    let refuse = |error: String| {
        let state = state.clone();
        let current = current.clone();
        let id = id.clone();
        let req = req.clone();
        async move {
            let page = detail_page(&state, &current, &req, id, None, Some(error)).await?;
            html::render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    };
    let Some(rule) = rule else {
        return refuse("Choose who may download the file.".into()).await;
    };
    if title.is_empty() {
        return refuse("The title must not be empty.".into()).await;
    }
    let owner = match owner_name {
        None => None,
        Some(name) => match active_user(&state, &name).await? {
            Some(user) => Some(user),
            None => {
                return refuse(format!(
                    "There is no active user named “{name}” to own the file."
                ))
                .await;
            }
        },
    };
    let readers = match resolve_readers(&state, rule, &names).await? {
        Ok(readers) => readers,
        Err(message) => return refuse(message).await,
    };
    let file_id = id.clone();
    let new_title = title.clone();
    let new_owner = owner.as_ref().map(|u| u.id.clone());
    let before = state
        .db
        .run(move |c| {
            let Some(before) = FileRow::find_with_owner(c, &file_id)? else {
                return Ok(None);
            };
            let old_readers = FileRow::reader_names(c, &file_id)?;
            if !FileRow::update_access(c, &file_id, &title, rule, &readers)? {
                return Ok(None);
            }
            if let Some(owner) = new_owner.filter(|o| *o != before.file.owner_id) {
                FileRow::set_owner(c, &file_id, &owner)?;
            }
            Ok(Some((before, old_readers)))
        })
        .await?;
    let Some((before, old_readers)) = before else {
        return Err(AppError::NotFound);
    };
    let (old_owner, before) = (before.owner, before.file);
    let mut new_readers: Vec<String> = names.clone();
    new_readers.sort();
    new_readers.dedup();
    let old_readers: Vec<String> = old_readers.iter().map(ToString::to_string).collect();
    let access = |rule: AccessRule, readers: &[String]| {
        if rule == AccessRule::Users {
            format!("{} ({})", rule.as_str(), readers.join(", "))
        } else {
            rule.as_str().to_owned()
        }
    };
    let mut changes = vec![format!(
        "access: {} → {}",
        access(before.rule, &old_readers),
        access(
            rule,
            if rule == AccessRule::Users {
                &new_readers
            } else {
                &[]
            }
        )
    )];
    if before.title != new_title {
        changes.push(format!("title: “{}” → “{new_title}”", before.title));
    }
    let record = |event: &'static str, detail: String| {
        state.record_change(&req, event, |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.file_id = Some(id.to_string());
            e.file_name = Some(before.original_name.clone());
            e.detail = Some(detail);
        })
    };
    record("edit", changes.join("; ")).await;
    if let Some(owner) = owner.filter(|o| o.id != before.owner_id) {
        record("owner", format!("owner: {old_owner} → {}", owner.username)).await;
    }
    session.set_flash("Saved.");
    Ok(see_other(&format!("/admin/files/{id}")))
}

/// The active user of that name: who may own a file.
pub async fn active_user(state: &AppState, name: &str) -> Result<Option<User>, AppError> {
    let Ok(name) = Username::parse(name) else {
        return Ok(None);
    };
    Ok(state
        .db
        .read(move |c| User::find_by_username(c, &name))
        .await?
        .filter(|u| u.is_active))
}

/// For the `users` rule: the ids of the named users, or a message naming the unknown ones.
/// Other rules keep no list.
pub async fn resolve_readers(
    state: &AppState,
    rule: AccessRule,
    names: &[String],
) -> Result<Result<Vec<UserId>, String>, AppError> {
    if rule != AccessRule::Users {
        return Ok(Ok(Vec::new()));
    }
    let mut parsed = Vec::new();
    for name in names {
        match Username::parse(name) {
            Ok(n) => parsed.push(n),
            Err(_) => return Ok(Err(format!("There is no user named “{name}”."))),
        }
    }
    parsed.sort();
    parsed.dedup();
    let wanted = parsed.clone();
    let found = state.db.read(move |c| User::find_many(c, &wanted)).await?;
    if let Some(missing) = parsed
        .iter()
        .find(|n| !found.iter().any(|u| u.username == **n))
    {
        return Ok(Err(format!("There is no user named “{missing}”.")));
    }
    Ok(Ok(found.into_iter().map(|u| u.id).collect()))
}

#[derive(Template)]
#[template(path = "admin/delete.html")]
struct ConfirmDeletePage {
    nav: Option<Nav>,
    file: FileView,
}

/// "Are you sure?": a page of its own, so the question works without JavaScript and the
/// strict CSP stays as it is.
pub async fn confirm_delete(
    StaffUser(current): StaffUser,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = parse_file_id(&id)?;
    let file = state
        .db
        .read(move |c| FileRow::find_with_owner(c, &id))
        .await?
        .ok_or(AppError::NotFound)?;
    html::page(&ConfirmDeletePage {
        nav: Some(Nav::from(&current)),
        file: FileView::from(&file),
    })
}

/// Removes the stored object, then the row (`upload::remove_file`).
pub async fn delete(
    req: actix_web::HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = parse_file_id(&id)?;
    let lookup = id.clone();
    let file = state
        .db
        .read(move |c| FileRow::find(c, &lookup))
        .await?
        .ok_or(AppError::NotFound)?;
    let (file, object) = match crate::upload::remove_file(&state.db, &state.storages, file).await {
        Ok(removed) => removed,
        Err(crate::upload::RemoveError::Gone) => return Err(AppError::NotFound),
        Err(crate::upload::RemoveError::Storage(e)) => return Err(e.into()),
        Err(crate::upload::RemoveError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(AppError::Internal(e.to_string())),
    };
    let object = match object {
        crate::upload::ObjectState::Removed => "and its stored object",
        crate::upload::ObjectState::AlreadyGone => "(its stored object was already gone)",
    };
    tracing::info!(file = %file.id, storage = %file.storage, key = %file.storage_key, "deleted");
    state
        .record_change(&req, "delete", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.file_id = Some(file.id.to_string());
            e.file_name = Some(file.original_name.clone());
            e.storage_key = Some(file.storage_key.to_string());
            e.detail = Some(format!("title “{}”", file.title));
        })
        .await;
    session.set_flash(format!("Deleted “{}” {object}.", file.title));
    Ok(see_other("/admin/files"))
}
