//! `/api/v1/files…`: the caller's readable files (the `/files` page's query), one file, its
//! download (the detail view's check, then `delivery::deliver`), an upload (the admin form's
//! code) and a delete (`upload::remove_file`).

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::audit::{DownloadEvent, Route};
use crate::auth::bearer::{ApiStaff, ApiUser, authenticate};
use crate::db::models::file::{FileRow, FileWithOwner, ListQuery, Sort};
use crate::db::models::user::User;
use crate::domain::FileId;
use crate::error::{ApiError, AppError};
use crate::routes::admin::links::site_origin;
use crate::routes::admin::upload::{receive_and_store, refused_status};
use crate::routes::download::{DownloadParams, found_the_row, recorded, serve_readable};
use crate::routes::file_list::{PER_PAGE, PER_PAGE_CHOICES};
use crate::state::AppState;
use crate::upload::Refusal;

/// A file as the API shows it.
#[derive(Debug, Serialize)]
pub struct FileJson {
    id: String,
    title: String,
    /// The original file name.
    name: String,
    size: i64,
    content_type: String,
    sha256: String,
    /// RFC 3339, UTC.
    uploaded_at: String,
    owner: String,
    access: &'static str,
    download_url: String,
}

impl FileJson {
    fn of(origin: &str, f: &FileWithOwner) -> Self {
        let file = &f.file;
        Self {
            id: file.id.to_string(),
            title: file.title.clone(),
            name: file.original_name.clone(),
            size: file.size,
            content_type: file.content_type.clone(),
            sha256: file.sha256.clone(),
            uploaded_at: file.uploaded_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            owner: f.owner.to_string(),
            access: file.rule.as_str(),
            download_url: format!("{origin}/api/v1/files/{}/download", file.id),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

#[derive(Serialize)]
struct FilePage {
    files: Vec<FileJson>,
    next_page: Option<i64>,
}

/// `GET /api/v1/files?q=&page=&per_page=`: the files the caller may read, newest first.
pub async fn list(
    req: HttpRequest,
    caller: ApiUser,
    params: web::Query<ListParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let asked = params.page.unwrap_or(1).max(1);
    let per_page = params
        .per_page
        .unwrap_or(PER_PAGE)
        .clamp(1, PER_PAGE_CHOICES[PER_PAGE_CHOICES.len() - 1]);
    let query = ListQuery {
        search: params.q.filter(|q| !q.trim().is_empty()),
        page: asked,
        per_page,
        sort: Sort::Newest,
        filters: Default::default(),
    };
    let user = caller.user;
    // The `/files` page's own query: one rule for who reads what.
    let page = state
        .db
        .read(move |c| FileRow::readable_page(c, &user, &query))
        .await?;
    let origin = site_origin(&req, &state);
    // Past the last page: nothing, rather than the last page again.
    let past_the_end = asked > page.pages;
    Ok(HttpResponse::Ok().json(FilePage {
        files: if past_the_end {
            Vec::new()
        } else {
            page.items
                .iter()
                .map(|f| FileJson::of(&origin, f))
                .collect()
        },
        next_page: (!past_the_end && page.page < page.pages).then_some(page.page + 1),
    }))
}

fn parse_id(raw: &str) -> Result<FileId, ApiError> {
    FileId::parse(raw).map_err(|_| ApiError::App(AppError::NotFound))
}

/// `GET /api/v1/files/{id}`: one file the caller may read.
pub async fn detail(
    req: HttpRequest,
    caller: ApiUser,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let reader = caller.user.id.clone();
    let found = state
        .db
        .read(move |c| {
            let Some((file, listed)) = FileRow::find_for_reader(c, &id, &reader)? else {
                return Ok(None);
            };
            let owner = User::find_by_id(c, &file.owner_id)?.map(|u| u.username);
            Ok(owner.map(|owner| (FileWithOwner { file, owner }, listed)))
        })
        .await?;
    let Some((file, listed)) = found else {
        return Err(AppError::NotFound.into());
    };
    let allowed = crate::access::can_read(
        &caller.user,
        crate::access::FileAccess {
            owner_id: &file.file.owner_id,
            rule: file.file.rule,
            listed,
        },
    );
    if !allowed {
        return Err(AppError::Forbidden.into());
    }
    Ok(HttpResponse::Ok().json(FileJson::of(&site_origin(&req, &state), &file)))
}

/// `GET|HEAD /api/v1/files/{id}/download`: the detail view's check and delivery, recorded
/// in the audit log with the route `api`.
pub async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<DownloadParams>,
) -> HttpResponse {
    let mut what = DownloadEvent {
        route: Some(Route::Api),
        ..DownloadEvent::default()
    };
    let answer = download_checked(&req, &state, &id, &params, &mut what).await;
    recorded(&req, &state, what, answer).await
}

async fn download_checked(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    params: &DownloadParams,
    what: &mut DownloadEvent,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(req).await?;
    // As the detail view: a replace that removed the object just read gets one more read.
    let mut first_try = true;
    loop {
        let found = match FileId::parse(id) {
            Ok(id) => {
                what.file_id = Some(id.to_string());
                let reader = caller.user.id.clone();
                state
                    .db
                    .read(move |c| FileRow::find_for_reader(c, &id, &reader))
                    .await?
            }
            Err(_) => None,
        };
        let answer = serve_readable(
            req,
            state,
            &caller.user,
            found.as_ref(),
            params.wants_inline(),
            what,
        )
        .await;
        match answer {
            Err(AppError::NotFound) if first_try && found_the_row(what) => first_try = false,
            answer => return Ok(answer?),
        }
    }
}

/// One file of an upload that refused some.
#[derive(Serialize)]
struct UploadResult {
    name: String,
    stored: bool,
    error: Option<String>,
    file: Option<FileJson>,
}

/// `POST /api/v1/files` (staff): the admin upload's multipart form and checks; 201 with
/// every file when all were stored, else the status of the worst refusal with each file's
/// result.
pub async fn create(
    req: HttpRequest,
    ApiStaff(caller): ApiStaff,
    state: web::Data<AppState>,
    mut multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    if req.content_type() != "multipart/form-data" {
        return Err(ApiError::Relayed {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send the files as multipart/form-data".to_owned(),
        });
    }
    let outcomes = match receive_and_store(&req, &state, &caller.user, &mut multipart).await? {
        Ok(outcomes) => outcomes,
        Err(message) => {
            return Err(ApiError::Relayed {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message,
            });
        }
    };
    let ids: Vec<FileId> = outcomes
        .iter()
        .filter_map(|o| o.stored.as_ref().map(|f| f.id.clone()))
        .collect();
    let rows = state
        .db
        .read(move |c| FileRow::find_many_with_owner(c, &ids))
        .await?;
    let origin = site_origin(&req, &state);
    let json_of = |id: &FileId| {
        rows.iter()
            .find(|f| f.file.id == *id)
            .map(|f| FileJson::of(&origin, f))
    };
    if outcomes.iter().all(|o| o.refusal.is_none()) {
        let files: Vec<FileJson> = outcomes
            .iter()
            .filter_map(|o| o.stored.as_ref().and_then(|f| json_of(&f.id)))
            .collect();
        return Ok(HttpResponse::Created().json(serde_json::json!({ "files": files })));
    }
    let results: Vec<UploadResult> = outcomes
        .iter()
        .map(|o| UploadResult {
            name: o.name.clone(),
            stored: o.stored.is_some(),
            error: o.refusal.as_ref().map(Refusal::reason),
            file: o.stored.as_ref().and_then(|f| json_of(&f.id)),
        })
        .collect();
    Ok(HttpResponse::build(refused_status(&outcomes))
        .json(serde_json::json!({ "results": results })))
}

/// `DELETE /api/v1/files/{id}` (staff): the object, then the row; 204.
pub async fn delete(
    req: HttpRequest,
    ApiStaff(caller): ApiStaff,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let file = state
        .db
        .read(move |c| FileRow::find(c, &id))
        .await?
        .ok_or(AppError::NotFound)?;
    let (file, _) = match crate::upload::remove_file(&state.db, &state.storages, file).await {
        Ok(removed) => removed,
        Err(crate::upload::RemoveError::Gone) => return Err(AppError::NotFound.into()),
        Err(crate::upload::RemoveError::Storage(e)) => return Err(AppError::from(e).into()),
        Err(crate::upload::RemoveError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(AppError::Internal(e.to_string()).into()),
    };
    tracing::info!(file = %file.id, storage = %file.storage, key = %file.storage_key, "deleted through the API");
    state
        .record_change(&req, "delete", |e| {
            e.user_id = Some(caller.user.id.to_string());
            e.username = Some(caller.user.username.to_string());
            e.file_id = Some(file.id.to_string());
            e.file_name = Some(file.original_name.clone());
            e.storage_key = Some(file.storage_key.to_string());
            e.detail = Some(format!("title “{}” (through the API)", file.title));
        })
        .await;
    Ok(HttpResponse::NoContent().finish())
}
