//! The upload form and the multipart POST that stores files (SPEC 5 and 7).
//!
//! The CSRF middleware has checked the token (header, or the form's first fields) before this
//! handler runs. Parts are read in order: `title`, `access`, `owner`, `users`, then one or
//! more `file` parts (the `csrf_token` part is skipped like any unknown one). Each
//! file streams into a pending storage upload; only when the whole request has been read and
//! its fields are valid are the accepted files committed and their rows written. A request
//! that breaks off therefore stores nothing: its pending uploads are dropped with it.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;

use crate::auth::middleware::{CurrentUser, StaffUser};
use crate::auth::session::TypedSession;
use crate::db::models::file::{FileRow, NewFile};
use crate::db::models::pending_upload::PendingKey;
use crate::db::models::user::User;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::{AccessRule, FileId, StorageKey, UserId, Username};
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::routes::admin::files::{RuleOption, resolve_readers, rule_options};
use crate::state::AppState;
use crate::storage::Storage;
use crate::upload::{self, ReceiveError, Received, Refusal, human_size};

/// Bounds on one request, so a hostile client cannot make us keep unbounded state.
const MAX_FILES: usize = 100;
const MAX_PARTS: usize = 1000;
const MAX_TEXT_FIELD: usize = 64 * 1024;

#[derive(Template)]
#[template(path = "admin/new.html")]
struct NewPage {
    nav: Option<Nav>,
    csrf_token: String,
    error: Option<String>,
    rules: Vec<RuleOption>,
    users: Vec<Username>,
    me: Username,
    limit: String,
    allowed: String,
}

async fn new_page(
    state: &AppState,
    current: &CurrentUser,
    error: Option<String>,
) -> Result<NewPage, AppError> {
    let users = state
        .db
        .run(User::list_active)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    let upload = &state.settings.upload;
    Ok(NewPage {
        nav: Some(Nav::from(current)),
        csrf_token: current.csrf_token.clone(),
        error,
        rules: rule_options(AccessRule::Owner),
        users,
        me: current.user.username.clone(),
        limit: human_size(upload.max_file_size),
        allowed: if upload.content_types.is_empty() {
            "any".to_owned()
        } else {
            upload
                .content_types
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

pub async fn new(
    StaffUser(current): StaffUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    html::page(&new_page(&state, &current, None).await?)
}

/// One file of the request and what became of it.
struct Outcome {
    name: String,
    stored: Option<StoredFile>,
    refusal: Option<Refusal>,
}

struct StoredFile {
    id: FileId,
    title: String,
    key: StorageKey,
}

/// What the upload page's script gets back for each file of a POST.
#[derive(Serialize)]
struct JsonResult {
    files: Vec<JsonOutcome>,
}

#[derive(Serialize)]
struct JsonOutcome {
    name: String,
    stored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&Vec<Outcome>> for JsonResult {
    fn from(outcomes: &Vec<Outcome>) -> Self {
        Self {
            files: outcomes
                .iter()
                .map(|o| JsonOutcome {
                    name: o.name.clone(),
                    stored: o.stored.is_some(),
                    id: o.stored.as_ref().map(|f| f.id.to_string()),
                    title: o.stored.as_ref().map(|f| f.title.clone()),
                    url: o.stored.as_ref().map(|f| format!("/admin/files/{}", f.id)),
                    reason: o.refusal.as_ref().map(Refusal::reason),
                })
                .collect(),
        }
    }
}

fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

#[derive(Template)]
#[template(path = "admin/upload_result.html")]
struct ResultPage {
    nav: Option<Nav>,
    outcomes: Vec<Outcome>,
    stored: usize,
    refused: usize,
}

enum Slot {
    Accepted(String, Received),
    Refused(String, Refusal),
}

#[derive(Default)]
struct Fields {
    title: String,
    access: Option<String>,
    owner: Option<String>,
    users: Vec<String>,
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
fn original_name(field: &actix_multipart::Field) -> Option<String> {
    let raw = field.content_disposition()?.get_filename()?;
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    Some(clean.trim().to_owned())
}

pub async fn create(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    state: web::Data<AppState>,
    mut multipart: Multipart,
) -> Result<HttpResponse, AppError> {
    let storage_name = state.settings.upload.storage.clone();
    let storage =
        state.storages.get(&storage_name).cloned().ok_or_else(|| {
            AppError::Internal(format!("upload storage `{storage_name}` is missing"))
        })?;

    let mut fields = Fields::default();
    let mut slots: Vec<Slot> = Vec::new();
    let mut parts = 0;
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
            "users" => {
                let user = read_text(&mut field).await?.trim().to_owned();
                if !user.is_empty() {
                    fields.users.push(user);
                }
            }
            "file" => {
                let file_name = original_name(&field).unwrap_or_default();
                if slots.len() >= MAX_FILES {
                    return Err(AppError::PayloadTooLarge(format!(
                        "upload (at most {MAX_FILES} files at once)"
                    )));
                }
                let received = upload::receive(
                    &mut field,
                    &file_name,
                    storage.as_ref(),
                    &state.settings.upload,
                )
                .await;
                match received {
                    // A browser sends an empty, nameless part when no file was chosen.
                    Ok(Err(Refusal::Empty)) if file_name.is_empty() => {}
                    Ok(Ok(received)) => slots.push(Slot::Accepted(file_name, received)),
                    Ok(Err(refusal)) => slots.push(Slot::Refused(file_name, refusal)),
                    Err(ReceiveError::Broken(e)) => {
                        return Err(AppError::BadRequest(format!("the upload broke off: {e}")));
                    }
                    Err(ReceiveError::CutOff(limit)) => {
                        return Err(AppError::PayloadTooLarge(format!(
                            "upload (the limit per file is {})",
                            human_size(limit)
                        )));
                    }
                    Err(ReceiveError::Storage(e)) => return Err(e.into()),
                }
            }
            // Unknown parts are read and ignored, like unknown fields of any form.
            _ => {
                read_text(&mut field).await.ok();
            }
        }
    }
    let refuse = |message: String| {
        let state = state.clone();
        let current = current.clone();
        async move {
            let page = new_page(&state, &current, Some(message)).await?;
            html::render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    };
    if slots.is_empty() {
        return refuse("Choose at least one file to upload.".into()).await;
    }
    let Some(rule) = fields.access.as_deref().and_then(AccessRule::parse) else {
        return refuse("Choose who may download the files.".into()).await;
    };
    let owner = match fields.owner.as_deref().filter(|o| !o.is_empty()) {
        None => current.user.clone(),
        Some(name) => {
            let Ok(name) = Username::parse(name) else {
                return refuse(format!("There is no user named “{name}”.")).await;
            };
            let lookup = name.clone();
            match state
                .db
                .run(move |c| User::find_by_username(c, &lookup))
                .await?
            {
                Some(user) => user,
                None => return refuse(format!("There is no user named “{name}”.")).await,
            }
        }
    };
    let readers = match resolve_readers(&state, rule, &fields.users).await? {
        Ok(readers) => readers,
        Err(message) => return refuse(message).await,
    };

    let several = slots.len() > 1;
    let mut outcomes = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Slot::Refused(name, refusal) => outcomes.push(Outcome {
                name,
                stored: None,
                refusal: Some(refusal),
            }),
            Slot::Accepted(name, received) => {
                let title = match (fields.title.is_empty(), several) {
                    (true, _) => name.clone(),
                    (false, false) => fields.title.clone(),
                    (false, true) => format!("{} ({name})", fields.title),
                };
                // Its own task: a client that goes away now cannot stop it between the
                // object and its row (an object without a row, or the reverse).
                let stored = actix_web::rt::spawn(store(
                    state.clone(),
                    Arc::clone(&storage),
                    storage_name.clone(),
                    received,
                    StoreRequest {
                        name: name.clone(),
                        title,
                        owner: owner.clone(),
                        uploader: current.user.clone(),
                        rule,
                        readers: readers.clone(),
                    },
                ))
                .await
                .map_err(|e| AppError::Internal(format!("storing an upload failed: {e}")))??;
                outcomes.push(Outcome {
                    name,
                    stored: Some(stored),
                    refusal: None,
                });
            }
        }
    }

    let refusals: Vec<&Refusal> = outcomes.iter().filter_map(|o| o.refusal.as_ref()).collect();
    let stored: Vec<&StoredFile> = outcomes.iter().filter_map(|o| o.stored.as_ref()).collect();
    // The most telling status: a size problem, else a type problem, else the rest.
    let status = [
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    ]
    .into_iter()
    .find(|s| refusals.iter().any(|r| r.status() == *s))
    .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    if wants_json(&req) {
        // The upload page's script: one result per file, no redirect, no flash.
        let status = if refusals.is_empty() {
            StatusCode::CREATED
        } else {
            status
        };
        return Ok(HttpResponse::build(status).json(JsonResult::from(&outcomes)));
    }
    if refusals.is_empty() {
        let location = match stored.as_slice() {
            [one] => {
                session.set_flash(format!("Stored “{}”.", one.title));
                format!("/admin/files/{}", one.id)
            }
            many => {
                session.set_flash(format!("Stored {} files.", many.len()));
                "/admin/files".to_owned()
            }
        };
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", location))
            .finish());
    }
    let page = ResultPage {
        nav: Some(Nav::from(&current)),
        stored: stored.len(),
        refused: refusals.len(),
        outcomes,
    };
    html::render(status, &page)
}

struct StoreRequest {
    name: String,
    title: String,
    owner: User,
    uploader: User,
    rule: AccessRule,
    readers: Vec<UserId>,
}

/// Commits one accepted file under a fresh key and writes its row; if the row cannot be
/// written, the object is removed again so nothing is left without a row.
async fn store(
    state: web::Data<AppState>,
    storage: Arc<dyn Storage>,
    storage_name: String,
    received: Received,
    request: StoreRequest,
) -> Result<StoredFile, AppError> {
    let wanted = StorageKey::for_upload(
        &state.settings.upload.upload_to,
        Utc::now(),
        request.owner.username.as_str(),
        &request.name,
    );
    let object = (
        i64::try_from(received.size).unwrap_or(i64::MAX),
        received.sha256.clone(),
    );
    let key = commit_reserved(
        &state,
        storage.as_ref(),
        &storage_name,
        received.pending,
        wanted,
        &object,
    )
    .await?;
    let new = NewFile {
        id: FileId::generate(),
        title: request.title,
        original_name: if request.name.is_empty() {
            key.file_name().to_owned()
        } else {
            request.name
        },
        storage: storage_name.clone(),
        storage_key: key.clone(),
        size: i64::try_from(received.size).unwrap_or(i64::MAX),
        content_type: received.content_type,
        sha256: received.sha256,
        owner_id: request.owner.id.clone(),
        uploaded_by_id: request.uploader.id.clone(),
        rule: request.rule,
        readers: request.readers,
    };
    match state.db.run(move |c| FileRow::insert(c, &new)).await {
        Ok(row) => {
            tracing::info!(file = %row.id, key = %row.storage_key, size = row.size, "stored");
            Ok(StoredFile {
                id: row.id,
                title: row.title,
                key: row.storage_key,
            })
        }
        // The key is in another row already: the object under it is that row's (two
        // instances met on one S3 key); removing it would lose the other file.
        Err(e) if e.is_unique_violation() => {
            tracing::error!(key = %key, "two uploads met on one key; the object is kept for the row that holds it");
            release(&state, &storage_name, &key).await;
            Err(e.into())
        }
        Err(e) => {
            if let Err(cleanup) = storage.delete(&key).await {
                tracing::error!(key = %key, error = %cleanup, "could not remove an object whose row failed");
            }
            release(&state, &storage_name, &key).await;
            Err(e.into())
        }
    }
}

/// Tries at a free key before giving up (each clash after the first is a 1 in 36^7 event).
const MAX_RESERVE_TRIES: usize = 16;

/// Reserves a free key for the upload (no row and no other upload holds it), then commits the
/// object under it. The reservation hides the object until its row exists and lets a start
/// after a crash remove it; the row's insert releases it.
async fn commit_reserved(
    state: &web::Data<AppState>,
    storage: &dyn Storage,
    storage_name: &str,
    pending: Box<dyn crate::storage::PendingUpload>,
    wanted: StorageKey,
    object: &(i64, String),
) -> Result<StorageKey, AppError> {
    let mut candidate = wanted;
    let mut reserved = false;
    for _ in 0..MAX_RESERVE_TRIES {
        // A key with an object but no row (a file put there by hand) is passed over before it
        // is reserved: a reservation must only ever cover what this upload puts there.
        let taken = match storage.metadata(&candidate).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => {
                pending.abort().await;
                return Err(e.into());
            }
        };
        if !taken && reserve(state, storage, storage_name, &candidate, object).await? {
            reserved = true;
            break;
        }
        candidate = candidate.with_unique_suffix();
    }
    if !reserved {
        pending.abort().await;
        return Err(AppError::Internal("no free key found for an upload".into()));
    }
    let key = match pending.commit(candidate.clone()).await {
        Ok(key) => key,
        Err(e) => {
            release(state, storage_name, &candidate).await;
            return Err(e.into());
        }
    };
    if key != candidate {
        // A file was put at the candidate by hand in the moment since it was checked, and the
        // storage chose a fresh name: move the reservation to it.
        let moved = reserve(state, storage, storage_name, &key, object).await;
        release(state, storage_name, &candidate).await;
        if !matches!(moved, Ok(true)) {
            if let Err(e) = storage.delete(&key).await {
                tracing::error!(key = %key, error = %e, "could not remove an object whose key could not be reserved");
            }
            return Err(AppError::Internal(format!("cannot reserve the key {key}")));
        }
    }
    Ok(key)
}

async fn reserve(
    state: &web::Data<AppState>,
    storage: &dyn Storage,
    storage_name: &str,
    key: &StorageKey,
    object: &(i64, String),
) -> Result<bool, AppError> {
    let (name, key, instance) = (
        storage_name.to_owned(),
        key.clone(),
        storage.instance().to_owned(),
    );
    let (size, sha256) = (object.0, object.1.clone());
    Ok(state
        .db
        .run(move |c| PendingKey::reserve(c, &name, &key, &instance, (size, &sha256)))
        .await?)
}

/// Ends a reservation whose upload failed. If even that fails, the next start finds it.
async fn release(state: &web::Data<AppState>, storage_name: &str, key: &StorageKey) {
    let (name, owned) = (storage_name.to_owned(), key.clone());
    if let Err(e) = state
        .db
        .run(move |c| PendingKey::release(c, &name, &owned))
        .await
    {
        tracing::warn!(key = %key, error = %e, "could not release a failed upload's key");
    }
}
