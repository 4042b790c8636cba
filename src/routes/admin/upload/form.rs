//! Reading the upload form's multipart body.
//!
//! The CSRF middleware has checked the token (header, or the form's first fields) before this
//! runs. Parts are read in order: `title`, `access`, `owner`, `readers` (or `users`), then one or more `file`
//! parts (the `csrf_token` part is skipped like any unknown one). Text fields are bounded.
//! When the first file part arrives, the fields read so far are checked, so a form that is
//! refused for its fields is refused before any of its files is stored. Each file streams into
//! a pending storage upload; nothing is committed here.

use actix_multipart::Multipart;
use futures_util::StreamExt;

use crate::db::models::user::User;
use crate::domain::{AccessRule, UserId, Username};
use crate::error::AppError;
use crate::routes::admin::files::{reader_names, resolve_readers};
use crate::state::AppState;
use crate::storage::Storage;
use crate::upload::{self, Refusal, Slot};

/// Bounds on one request, so a hostile client cannot make us keep unbounded state.
const MAX_FILES: usize = 100;
const MAX_PARTS: usize = 1000;
const MAX_TEXT_FIELD: usize = 64 * 1024;

#[derive(Default)]
struct Fields {
    title: String,
    access: Option<String>,
    owner: Option<String>,
    users: Vec<String>,
}

/// Who may read the files of a valid form, and whose they are.
pub struct Checked {
    pub rule: AccessRule,
    pub owner: User,
    pub readers: Vec<UserId>,
}

/// A form read in full whose fields are valid.
pub struct Form {
    pub title: String,
    pub checked: Checked,
    pub slots: Vec<Slot>,
}

/// Reads the whole form. `Ok(Err(message))`: the form is refused, for the person to correct.
pub async fn read(
    multipart: &mut Multipart,
    state: &AppState,
    uploader: &User,
    storage: &dyn Storage,
) -> Result<Result<Form, String>, AppError> {
    let mut fields = Fields::default();
    let mut slots: Vec<Slot> = Vec::new();
    let mut parts = 0;
    let mut checked_early = false;
    while let Some(field) = multipart.next().await {
        let mut field =
            field.map_err(|e| AppError::BadRequest(format!("the upload is malformed: {e}")))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(AppError::PayloadTooLarge("number of form fields".into()));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "title" => fields.title = read_text(&mut field).await?.trim().to_owned(),
            "access" => fields.access = Some(read_text(&mut field).await?.trim().to_owned()),
            "owner" => fields.owner = Some(read_text(&mut field).await?.trim().to_owned()),
            // The readers picker's text field, or one `users` part per name.
            "users" | "readers" => {
                let text = read_text(&mut field).await?;
                fields.users.extend(reader_names([text.as_str()]));
            }
            "file" => {
                let file_name = original_name(&field).unwrap_or_default();
                // The first chosen file: the fields before it are checked before it is read.
                // (A nameless part is a browser's "no file chosen", and a form without an
                // access field yet is one that orders its parts otherwise: the end check
                // covers both, with the same messages as ever.)
                if !checked_early && !file_name.is_empty() && fields.access.is_some() {
                    checked_early = true;
                    if let Err(message) = check(state, uploader, &fields).await? {
                        return Ok(Err(message));
                    }
                }
                if slots.len() >= MAX_FILES {
                    return Err(AppError::PayloadTooLarge(format!(
                        "upload (at most {MAX_FILES} files at once)"
                    )));
                }
                let received =
                    upload::receive(&mut field, &file_name, storage, &state.settings.upload)
                        .await?;
                match received {
                    // A browser sends an empty, nameless part when no file was chosen.
                    Err(Refusal::Empty) if file_name.is_empty() => {}
                    Ok(received) => slots.push(Slot::Accepted(file_name, received)),
                    Err(refusal) => slots.push(Slot::Refused(file_name, refusal)),
                }
            }
            // Unknown parts are read and ignored, like unknown fields of any form.
            _ => {
                read_text(&mut field).await.ok();
            }
        }
    }
    if slots.is_empty() {
        return Ok(Err("Choose at least one file to upload.".into()));
    }
    Ok(check(state, uploader, &fields).await?.map(|checked| Form {
        title: fields.title,
        checked,
        slots,
    }))
}

/// The access rule, owner and readers of the form, or why they are refused.
async fn check(
    state: &AppState,
    uploader: &User,
    fields: &Fields,
) -> Result<Result<Checked, String>, AppError> {
    let Some(rule) = fields.access.as_deref().and_then(AccessRule::parse) else {
        return Ok(Err("Choose who may download the files.".into()));
    };
    let owner = match fields.owner.as_deref().filter(|o| !o.is_empty()) {
        None => uploader.clone(),
        Some(name) => {
            let Ok(name) = Username::parse(name) else {
                return Ok(Err(format!("There is no user named “{name}”.")));
            };
            let lookup = name.clone();
            match state
                .db
                .read(move |c| User::find_by_username(c, &lookup))
                .await?
            {
                Some(user) => user,
                None => return Ok(Err(format!("There is no user named “{name}”."))),
            }
        }
    };
    Ok(resolve_readers(state, rule, &fields.users)
        .await?
        .map(|readers| Checked {
            rule,
            owner,
            readers,
        }))
}

async fn read_text(field: &mut actix_multipart::Field) -> Result<String, AppError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("the upload broke off: {e}")))?;
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(AppError::PayloadTooLarge("form field".into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| AppError::BadRequest("a form field is not UTF-8".into()))
}

/// The name as the browser sent it, without any folder part or control characters.
pub fn original_name(field: &actix_multipart::Field) -> Option<String> {
    let raw = field.content_disposition()?.get_filename()?;
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    Some(clean.trim().to_owned())
}
