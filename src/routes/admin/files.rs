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
    users: Vec<Username>,
    rules: Vec<RuleOption>,
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
    id: FileId,
    flash: Option<String>,
    error: Option<String>,
) -> Result<DetailPage, AppError> {
    let (file, readers, users) = state
        .db
        .read(move |c| {
            let Some(file) = FileRow::find_with_owner(c, &id)? else {
                return Ok(None);
            };
            let readers = FileRow::reader_names(c, &id)?;
            let users = User::list_active(c)?
                .into_iter()
                .map(|u| u.username)
                .collect::<Vec<_>>();
            Ok(Some((file, readers, users)))
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
    Ok(DetailPage {
        nav: Some(Nav::from(current)),
        flash,
        error,
        rules: rule_options(file.file.rule),
        file: FileView::from(&file),
        storage_kind,
        readers,
        users,
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
    StaffUser(current): StaffUser,
    session: TypedSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    // Taken before the id is looked at: every 404 here uses up the flash alike.
    let flash = session.take_flash();
    let id = parse_file_id(&id)?;
    let new_link = session.take_new_link(&id);
    let mut page = detail_page(&state, &current, id, flash, None).await?;
    page.new_link = new_link;
    html::page(&page)
}

/// The edit form: `title`, `access`, and a `users` field per listed user.
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
    let names: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "users")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    let title = field("title").unwrap_or_default();
    let rule = field("access").as_deref().and_then(AccessRule::parse);

    let refuse = |error: String| {
        let state = state.clone();
        let current = current.clone();
        let id = id.clone();
        async move {
            let page = detail_page(&state, &current, id, None, Some(error)).await?;
            html::render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    };
    let Some(rule) = rule else {
        return refuse("Choose who may download the file.".into()).await;
    };
    if title.is_empty() {
        return refuse("The title must not be empty.".into()).await;
    }
    let readers = match resolve_readers(&state, rule, &names).await? {
        Ok(readers) => readers,
        Err(message) => return refuse(message).await,
    };
    let file_id = id.clone();
    let new_title = title.clone();
    let before = state
        .db
        .run(move |c| {
            let Some(before) = FileRow::find(c, &file_id)? else {
                return Ok(None);
            };
            let old_readers = FileRow::reader_names(c, &file_id)?;
            if !FileRow::update_access(c, &file_id, &title, rule, &readers)? {
                return Ok(None);
            }
            Ok(Some((before, old_readers)))
        })
        .await?;
    let Some((before, old_readers)) = before else {
        return Err(AppError::NotFound);
    };
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
    state
        .record_change(&req, "edit", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.file_id = Some(id.to_string());
            e.file_name = Some(before.original_name.clone());
            e.detail = Some(changes.join("; "));
        })
        .await;
    session.set_flash("Saved.");
    Ok(see_other(&format!("/admin/files/{id}")))
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

/// Removes the stored object, then the row.
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
    let storage = state.storage_of(&file)?;
    let object = match storage.delete(&file.storage_key).await {
        Ok(()) => "and its stored object",
        Err(e) if e.is_not_found() => "(its stored object was already gone)",
        Err(e) => return Err(e.into()),
    };
    state.db.run(move |c| FileRow::delete(c, &id)).await?;
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
