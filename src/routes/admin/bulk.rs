//! Bulk actions on the files checked in the admin list: delete them, change their access rule
//! and readers, or give them another owner. The list's form asks for a page of its own
//! (`GET /admin/files/bulk`) that lists the files and what will happen to them, so each action
//! works without JavaScript; that page's form makes the change (a POST with its CSRF token),
//! records one audit event per file as the single-file edit and delete do, and comes back to
//! the list where it was with a message that counts what was done.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use diesel::Connection;

use crate::auth::extractors::{CurrentUser, StaffUser};
use crate::auth::session::TypedSession;
use crate::db::models::file::{FileRow, FileWithOwner};
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::{AccessRule, FileId, Username};
use crate::error::AppError;
use crate::html::{self, FileView, Nav};
use crate::routes::admin::files::{RuleOption, resolve_readers, rule_options};
use crate::routes::see_other;
use crate::state::AppState;

/// At most one page of the list, at its largest page size.
pub const MAX_FILES: usize = 100;

const LIST: &str = "/admin/files";

/// What the list's action menu offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Delete,
    Access,
    Owner,
}

impl Action {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "delete" => Some(Self::Delete),
            "access" => Some(Self::Access),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Access => "access",
            Self::Owner => "owner",
        }
    }
}

/// The fields every bulk form carries, read from a query string or a form body: the files
/// (`ids`, one field each), where to go back to (`back`) and the action's own fields.
struct Fields {
    ids: Vec<FileId>,
    back: String,
    pairs: Vec<(String, String)>,
}

impl Fields {
    /// The ids as sent; any that is not a file id, or too many, is a 400: the list never
    /// sends either.
    fn parse(pairs: Vec<(String, String)>) -> Result<Self, AppError> {
        let mut ids = Vec::new();
        for (_, value) in pairs.iter().filter(|(k, _)| k == "ids") {
            let id = FileId::parse(value.trim())
                .map_err(|_| AppError::BadRequest(format!("“{value}” is not a file id.")))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.len() > MAX_FILES {
            return Err(AppError::BadRequest(format!(
                "At most {MAX_FILES} files can be changed at a time."
            )));
        }
        let back = pairs
            .iter()
            .find(|(k, _)| k == "back")
            .map(|(_, v)| safe_back(v))
            .unwrap_or_else(|| LIST.to_owned());
        Ok(Self { ids, back, pairs })
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }
}

/// The list page to come back to: the admin list with its query string, or the list itself
/// for anything else (never another site, never a header-breaking character).
fn safe_back(value: &str) -> String {
    let is_list = value == LIST || value.starts_with("/admin/files?");
    let plain = value.bytes().all(|b| b.is_ascii_graphic());
    if is_list && plain {
        value.to_owned()
    } else {
        LIST.to_owned()
    }
}

#[derive(Template)]
#[template(path = "admin/bulk.html")]
struct BulkPage {
    nav: Option<Nav>,
    action: Action,
    files: Vec<FileView>,
    back: String,
    error: Option<String>,
    rules: Vec<RuleOption>,
    /// The readers and owner as typed, for a form shown again.
    readers: String,
    owner: String,
}

/// The readers field: names separated by commas or white space.
fn reader_names(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn load(state: &AppState, ids: Vec<FileId>) -> Result<Vec<FileWithOwner>, AppError> {
    Ok(state
        .db
        .read(move |c| FileRow::find_many_with_owner(c, &ids))
        .await?)
}

/// What a refused form had: why, and the values typed, shown again.
#[derive(Default)]
struct Refused {
    error: Option<String>,
    rule: Option<AccessRule>,
    readers: String,
    owner: String,
}

fn bulk_page(
    current: &CurrentUser,
    action: Action,
    files: &[FileWithOwner],
    back: String,
    refused: Refused,
) -> Result<HttpResponse, AppError> {
    let status = if refused.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let rule = refused.rule;
    html::render(
        status,
        &BulkPage {
            nav: Some(Nav::from(current)),
            action,
            files: files.iter().map(FileView::from).collect(),
            back,
            error: refused.error,
            // No rule chosen yet: none is checked, so a click cannot change one by mistake.
            rules: rule_options(rule.unwrap_or(AccessRule::Owner))
                .into_iter()
                .map(|mut o| {
                    o.selected &= rule.is_some();
                    o
                })
                .collect(),
            readers: refused.readers,
            owner: refused.owner,
        },
    )
}

/// `GET /admin/files/bulk?action=…&ids=…&back=…`: the files and the action's form. Nothing
/// checked, or no action chosen, goes back to the list with a message saying so.
pub async fn confirm(
    StaffUser(current): StaffUser,
    session: TypedSession,
    query: web::Query<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fields = Fields::parse(query.into_inner())?;
    let Some(action) = fields.field("action").and_then(Action::parse) else {
        session.set_flash("Choose what to do with the selected files. Nothing was changed.");
        return Ok(see_other(&fields.back));
    };
    if fields.ids.is_empty() {
        session.set_flash("Select at least one file. Nothing was changed.");
        return Ok(see_other(&fields.back));
    }
    let files = load(&state, fields.ids.clone()).await?;
    if files.is_empty() {
        session.set_flash("None of the selected files exists any more. Nothing was changed.");
        return Ok(see_other(&fields.back));
    }
    bulk_page(&current, action, &files, fields.back, Refused::default())
}

/// "1 file", "3 files".
fn files_count(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

/// `POST /admin/files/bulk/delete`: each file's stored object, then its row, as the single
/// delete does; a file whose object cannot be removed is kept and counted.
pub async fn delete(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fields = Fields::parse(form.into_inner())?;
    let files = load(&state, fields.ids.clone()).await?;
    let missing = fields.ids.len() - files.len();
    let (mut deleted, mut already_gone, mut kept) = (0, 0, 0);
    for FileWithOwner { file, .. } in files {
        let id = file.id.clone();
        let (file, object) =
            match crate::upload::remove_file(&state.db, &state.storages, file).await {
                Ok(removed) => removed,
                // Deleted by someone else meanwhile: not ours to count.
                Err(crate::upload::RemoveError::Gone) => continue,
                Err(e) => {
                    tracing::warn!(file = %id, error = %e, "bulk delete: the file stays");
                    kept += 1;
                    continue;
                }
            };
        let object = match object {
            crate::upload::ObjectState::Removed => "",
            crate::upload::ObjectState::AlreadyGone => {
                already_gone += 1;
                " (its stored object was already gone)"
            }
        };
        deleted += 1;
        tracing::info!(file = %file.id, storage = %file.storage, key = %file.storage_key, "deleted");
        state
            .record_change(&req, "delete", |e| {
                e.user_id = Some(current.user.id.to_string());
                e.username = Some(current.user.username.to_string());
                e.file_id = Some(file.id.to_string());
                e.file_name = Some(file.original_name.clone());
                e.storage_key = Some(file.storage_key.to_string());
                e.detail = Some(format!("title “{}”{object}; bulk", file.title));
            })
            .await;
    }
    let mut message = format!("Deleted {}.", files_count(deleted));
    if already_gone > 0 {
        message.push_str(&format!(
            " The stored object of {} was already gone.",
            files_count(already_gone)
        ));
    }
    if kept > 0 {
        message.push_str(&format!(
            " {} could not be removed from storage and stayed (see the server log).",
            files_count(kept)
        ));
    }
    if missing > 0 {
        message.push_str(&format!(" {} no longer existed.", files_count(missing)));
    }
    session.set_flash(message);
    Ok(see_other(&fields.back))
}

/// A rule as the audit log's detail says it: `users (alice, bob)` names the readers.
fn access_words(rule: AccessRule, readers: &[Username]) -> String {
    if rule == AccessRule::Users {
        let names: Vec<String> = readers.iter().map(ToString::to_string).collect();
        format!("{} ({})", rule.as_str(), names.join(", "))
    } else {
        rule.as_str().to_owned()
    }
}

/// `POST /admin/files/bulk/access`: `access` and, for the `users` rule, `readers` (names
/// separated by commas or spaces) for every file; a bad rule or an unknown name shows the
/// form again (422) with nothing changed.
pub async fn access(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fields = Fields::parse(form.into_inner())?;
    let typed = fields.field("readers").unwrap_or_default().to_owned();
    let rule = fields.field("access").and_then(AccessRule::parse);
    let names = reader_names(&typed);
    let refuse = |error: String, files: Vec<FileWithOwner>| {
        let refused = Refused {
            error: Some(error),
            rule,
            readers: typed.clone(),
            ..Refused::default()
        };
        bulk_page(
            &current,
            Action::Access,
            &files,
            fields.back.clone(),
            refused,
        )
    };
    let Some(rule) = rule else {
        let files = load(&state, fields.ids.clone()).await?;
        return refuse("Choose who may download the files.".into(), files);
    };
    let readers = match resolve_readers(&state, rule, &names).await? {
        Ok(readers) => readers,
        Err(message) => {
            let files = load(&state, fields.ids.clone()).await?;
            return refuse(message, files);
        }
    };
    // The new readers as names, sorted like the old ones below, to see what would not change.
    let mut new_names: Vec<Username> = if rule == AccessRule::Users {
        names
            .iter()
            .filter_map(|n| Username::parse(n).ok())
            .collect()
    } else {
        Vec::new()
    };
    new_names.sort();
    new_names.dedup();
    let compared = new_names.clone();
    let ids = fields.ids.clone();
    let changes = state
        .db
        // All the files or none: the events are written for what changed once it is
        // committed (a reader deleted meanwhile fails the whole change, not half of it).
        .run(move |c| {
            c.transaction(|c| {
                FileRow::lock_rows(c, &ids)?;
                let mut changes = Vec::new();
                for id in &ids {
                    let Some(before) = FileRow::find(c, id)? else {
                        continue;
                    };
                    let old_readers = FileRow::reader_names(c, id)?;
                    let mut old_ids = old_readers.clone();
                    old_ids.sort();
                    if before.rule == rule && (rule != AccessRule::Users || old_ids == compared) {
                        changes.push((before, None));
                        continue;
                    }
                    if FileRow::update_rule(c, id, rule, &readers)? {
                        changes.push((before, Some(old_readers)));
                    }
                }
                Ok(changes)
            })
        })
        .await?;
    let (mut changed, mut unchanged) = (0, 0);
    for (before, old_readers) in &changes {
        let Some(old_readers) = old_readers else {
            unchanged += 1;
            continue;
        };
        changed += 1;
        let detail = format!(
            "access: {} → {}; bulk",
            access_words(before.rule, old_readers),
            access_words(rule, &new_names)
        );
        state
            .record_change(&req, "edit", |e| {
                e.user_id = Some(current.user.id.to_string());
                e.username = Some(current.user.username.to_string());
                e.file_id = Some(before.id.to_string());
                e.file_name = Some(before.original_name.clone());
                e.detail = Some(detail);
            })
            .await;
    }
    let mut message = format!(
        "Changed who may download {} to “{}”.",
        files_count(changed),
        rule.describe()
    );
    if unchanged > 0 {
        message.push_str(&format!(" {} already had it.", files_count(unchanged)));
    }
    let missing = fields.ids.len() - changes.len();
    if missing > 0 {
        message.push_str(&format!(" {} no longer existed.", files_count(missing)));
    }
    session.set_flash(message);
    Ok(see_other(&fields.back))
}

/// `POST /admin/files/bulk/owner`: `owner` (a username) for every file; an unknown name
/// shows the form again (422) with nothing changed.
pub async fn owner(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fields = Fields::parse(form.into_inner())?;
    let typed = fields.field("owner").unwrap_or_default().to_owned();
    // Only an active user can own files, as on a file's own page.
    let owner = crate::routes::admin::files::active_user(&state, &typed).await?;
    let Some(owner) = owner else {
        let files = load(&state, fields.ids.clone()).await?;
        let error = if typed.is_empty() {
            "Name the new owner.".to_owned()
        } else {
            format!("There is no active user named “{typed}”.")
        };
        let refused = Refused {
            error: Some(error),
            owner: typed,
            ..Refused::default()
        };
        return bulk_page(
            &current,
            Action::Owner,
            &files,
            fields.back.clone(),
            refused,
        );
    };
    let ids = fields.ids.clone();
    let owner_id = owner.id.clone();
    let changes = state
        .db
        // All the files or none, as for the rule above.
        .run(move |c| {
            c.transaction(|c| {
                FileRow::lock_rows(c, &ids)?;
                let mut changes = Vec::new();
                for file in FileRow::find_many_with_owner(c, &ids)? {
                    if file.file.owner_id == owner_id {
                        changes.push((file, false));
                    } else if FileRow::update_owner(c, &file.file.id, &owner_id)? {
                        changes.push((file, true));
                    }
                }
                Ok(changes)
            })
        })
        .await?;
    let (mut changed, mut unchanged) = (0, 0);
    for (before, done) in &changes {
        if !done {
            unchanged += 1;
            continue;
        }
        changed += 1;
        state
            .record_change(&req, "owner", |e| {
                e.user_id = Some(current.user.id.to_string());
                e.username = Some(current.user.username.to_string());
                e.file_id = Some(before.file.id.to_string());
                e.file_name = Some(before.file.original_name.clone());
                e.detail = Some(format!(
                    "owner: {} → {}; bulk",
                    before.owner, owner.username
                ));
            })
            .await;
    }
    let mut message = format!("Gave {} to {}.", files_count(changed), owner.username);
    if unchanged > 0 {
        message.push_str(&format!(
            " {} already belonged to them.",
            files_count(unchanged)
        ));
    }
    let missing = fields.ids.len() - changes.len();
    if missing > 0 {
        message.push_str(&format!(" {} no longer existed.", files_count(missing)));
    }
    session.set_flash(message);
    Ok(see_other(&fields.back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_list_is_gone_back_to() {
        assert_eq!(safe_back("/admin/files"), "/admin/files");
        assert_eq!(
            safe_back("/admin/files?page=2&type=image"),
            "/admin/files?page=2&type=image"
        );
        for bad in [
            "https://evil.example/admin/files",
            "//evil.example",
            "/admin/filesx",
            "/admin/files?x=\r\nSet-Cookie: a",
            "/admin/files? x",
            "",
        ] {
            assert_eq!(safe_back(bad), "/admin/files", "{bad:?}");
        }
    }

    #[test]
    fn readers_are_separated_by_commas_or_spaces() {
        assert_eq!(
            reader_names(" alice, bob\ncarol,,  dave "),
            ["alice", "bob", "carol", "dave"]
        );
        assert!(reader_names(" , ").is_empty());
    }
}
