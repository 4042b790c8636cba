//! The upload form and the multipart POST that stores files: the form is read (`form.rs`),
//! its accepted files stored by `upload::store_accepted`, and the outcome rendered. Only when
//! the whole request has been read and its fields are valid are the accepted files committed
//! and their rows written. A request that breaks off therefore stores nothing: its pending
//! uploads are dropped with it.

mod form;

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Serialize;

use crate::auth::extractors::{CurrentUser, StaffUser};
use crate::auth::session::TypedSession;
use crate::db::models::file::FileRow;
use crate::db::models::user::User;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::{AccessRule, FileId, Username};
use crate::error::{AppError, refusal_status};
use crate::html::{self, Nav};
use crate::routes::admin::files::{RuleOption, rule_options};
use crate::state::AppState;
use crate::upload::{self, Batch, Destination, Outcome, Refusal, StoredFile, human_size};

use form::Checked;
pub use form::original_name;

#[derive(Template)]
#[template(path = "admin/new.html")]
struct NewPage {
    nav: Option<Nav>,
    csrf_token: String,
    error: Option<String>,
    rules: Vec<RuleOption>,
    me: Username,
    limit: String,
    allowed: String,
}

async fn new_page(
    state: &AppState,
    current: &CurrentUser,
    error: Option<String>,
) -> Result<NewPage, AppError> {
    let upload = &state.settings.upload;
    Ok(NewPage {
        nav: Some(Nav::from(current)),
        csrf_token: current.csrf_token.clone(),
        error,
        rules: rule_options(AccessRule::Owner),
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
    /// Files stored before with the same SHA-256: this one is stored all the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    duplicates: Vec<JsonDuplicate>,
}

#[derive(Serialize)]
struct JsonDuplicate {
    id: String,
    title: String,
    url: String,
}

/// Files already stored with the same content as one just stored.
pub struct Duplicate {
    pub id: FileId,
    pub title: String,
}

/// How many earlier files with the same content an upload's answer names.
const DUPLICATES_NAMED: i64 = 3;

/// For each outcome, the earlier files with the same content as the file it stored.
async fn duplicates_of(
    state: &AppState,
    outcomes: &[Outcome],
) -> Result<Vec<Vec<Duplicate>>, AppError> {
    let stored: Vec<Option<(FileId, String)>> = outcomes
        .iter()
        .map(|o| o.stored.as_ref().map(|f| (f.id.clone(), f.sha256.clone())))
        .collect();
    Ok(state
        .db
        .read(move |c| {
            stored
                .iter()
                .map(|s| match s {
                    Some((id, sha256)) => {
                        Ok(FileRow::same_content(c, sha256, id, DUPLICATES_NAMED)?
                            .into_iter()
                            .map(|(id, title)| Duplicate { id, title })
                            .collect())
                    }
                    None => Ok(Vec::new()),
                })
                .collect::<Result<Vec<_>, crate::db::DbError>>()
        })
        .await?)
}

impl JsonResult {
    fn of(outcomes: &[Outcome], duplicates: &[Vec<Duplicate>]) -> Self {
        Self {
            files: outcomes
                .iter()
                .zip(duplicates)
                .map(|(o, dups)| JsonOutcome {
                    name: o.name.clone(),
                    stored: o.stored.is_some(),
                    id: o.stored.as_ref().map(|f| f.id.to_string()),
                    title: o.stored.as_ref().map(|f| f.title.clone()),
                    url: o.stored.as_ref().map(|f| format!("/admin/files/{}", f.id)),
                    reason: o.refusal.as_ref().map(Refusal::reason),
                    duplicates: dups
                        .iter()
                        .map(|d| JsonDuplicate {
                            id: d.id.to_string(),
                            title: d.title.clone(),
                            url: format!("/admin/files/{}", d.id),
                        })
                        .collect(),
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
    /// Each outcome with the earlier files of the same content.
    outcomes: Vec<(Outcome, Vec<Duplicate>)>,
    stored: usize,
    refused: usize,
}

/// Reads an upload's multipart form (`form.rs`), stores its accepted files
/// (`upload::store_batch`) and records each in the audit log: the admin form and
/// `POST /api/v1/files` alike. `Ok(Err(message))`: the form itself is refused, nothing stored.
pub(crate) async fn receive_and_store(
    req: &HttpRequest,
    state: &AppState,
    uploader: &User,
    multipart: &mut Multipart,
) -> Result<Result<Vec<Outcome>, String>, AppError> {
    let storage_name = state.settings.upload.storage.clone();
    let storage =
        state.storages.get(&storage_name).cloned().ok_or_else(|| {
            AppError::Internal(format!("upload storage `{storage_name}` is missing"))
        })?;

    let destination = Destination {
        db: state.db.clone(),
        storage: Arc::clone(&storage),
        storage_name,
        upload_to: state.settings.upload.upload_to.clone(),
        thumbnails: state.thumbnailer.clone(),
    };
    let form = match form::read(multipart, state, uploader, storage.as_ref()).await? {
        Ok(form) => form,
        Err(message) => return Ok(Err(message)),
    };
    let Checked {
        rule,
        owner,
        readers,
    } = form.checked;
    let batch = Batch {
        title: form.title,
        owner,
        uploader: uploader.clone(),
        rule,
        readers,
        slots: form.slots,
    };
    let rule_words = rule.describe();
    let outcomes = upload::store_batch(&destination, batch).await?;
    for outcome in &outcomes {
        if let Some(file) = &outcome.stored {
            state
                .record_change(req, "upload", |e| {
                    e.user_id = Some(uploader.id.to_string());
                    e.username = Some(uploader.username.to_string());
                    e.file_id = Some(file.id.to_string());
                    e.file_name = Some(outcome.name.clone());
                    e.storage_key = Some(file.key.to_string());
                    e.detail = Some(format!(
                        "title “{}”; who may download: {rule_words}",
                        file.title
                    ));
                })
                .await;
        }
    }
    Ok(Ok(outcomes))
}

/// The most telling status of an upload that refused some of its files: a size problem, else
/// a type problem, else the rest.
pub(crate) fn refused_status(outcomes: &[Outcome]) -> StatusCode {
    let refusals: Vec<&Refusal> = outcomes.iter().filter_map(|o| o.refusal.as_ref()).collect();
    [
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    ]
    .into_iter()
    .find(|s| refusals.iter().any(|r| refusal_status(r) == *s))
    .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

pub async fn create(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    state: web::Data<AppState>,
    mut multipart: Multipart,
) -> Result<HttpResponse, AppError> {
    let outcomes = match receive_and_store(&req, &state, &current.user, &mut multipart).await? {
        Ok(outcomes) => outcomes,
        Err(message) => {
            let page = new_page(&state, &current, Some(message)).await?;
            return html::render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };

    let duplicates = duplicates_of(&state, &outcomes).await?;
    let refusals: Vec<&Refusal> = outcomes.iter().filter_map(|o| o.refusal.as_ref()).collect();
    let stored: Vec<&StoredFile> = outcomes.iter().filter_map(|o| o.stored.as_ref()).collect();
    let status = refused_status(&outcomes);
    if wants_json(&req) {
        // The upload page's script: one result per file, no redirect, no flash.
        let status = if refusals.is_empty() {
            StatusCode::CREATED
        } else {
            status
        };
        return Ok(HttpResponse::build(status).json(JsonResult::of(&outcomes, &duplicates)));
    }
    if refusals.is_empty() {
        // Each stored file's page names the earlier files with the same content, with links.
        let with_duplicates = duplicates.iter().filter(|d| !d.is_empty()).count();
        let location = match stored.as_slice() {
            [one] => {
                session.set_flash(if with_duplicates > 0 {
                    format!(
                        "Stored “{}”. Another file has the same content: see below.",
                        one.title
                    )
                } else {
                    format!("Stored “{}”.", one.title)
                });
                format!("/admin/files/{}", one.id)
            }
            many => {
                session.set_flash(match with_duplicates {
                    0 => format!("Stored {} files.", many.len()),
                    n => format!(
                        "Stored {} files; {n} of them have the same content as another file (each one's page names it).",
                        many.len()
                    ),
                });
                "/admin/files".to_owned()
            }
        };
        return Ok(crate::routes::see_other(&location));
    }
    let page = ResultPage {
        nav: Some(Nav::from(&current)),
        stored: stored.len(),
        refused: refusals.len(),
        outcomes: outcomes.into_iter().zip(duplicates).collect(),
    };
    html::render(status, &page)
}
