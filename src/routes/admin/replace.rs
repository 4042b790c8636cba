//! Replacing a file's content from its detail page: one `file` part, received exactly as an
//! upload is (`upload::receive`: the same size and type checks, streamed into a pending
//! upload), then handed to `upload::replace_content`. A refused file changes nothing and is
//! answered with the status an upload would get.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use crate::auth::extractors::StaffUser;
use crate::auth::session::TypedSession;
use crate::db::models::file::FileRow;
use crate::error::{AppError, refusal_status};
use crate::html;
use crate::routes::admin::files::detail_page;
use crate::routes::admin::upload::original_name;
use crate::routes::{parse_file_id, see_other};
use crate::state::AppState;
use crate::upload::{self, Destination, Received, Refusal, ReplaceRequest, human_size};

/// Parts other than the file (the CSRF token, a stray field) are read up to this and dropped.
const MAX_OTHER_PART: usize = 64 * 1024;

pub async fn replace(
    req: HttpRequest,
    StaffUser(current): StaffUser,
    session: TypedSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
    mut multipart: Multipart,
) -> Result<HttpResponse, AppError> {
    let id = parse_file_id(&id)?;
    let lookup = id.clone();
    let file = state
        .db
        .read(move |c| FileRow::find_with_owner(c, &lookup))
        .await?
        .ok_or(AppError::NotFound)?;
    // The file's storage must be configured for its content to be replaced.
    state.storage_of(&file.file)?;
    let storage_name = state.settings.upload.storage.clone();
    let storage =
        state.storages.get(&storage_name).cloned().ok_or_else(|| {
            AppError::Internal(format!("upload storage `{storage_name}` is missing"))
        })?;

    let mut received: Option<(String, Result<Received, Refusal>)> = None;
    while let Some(field) = multipart.next().await {
        let mut field =
            field.map_err(|e| AppError::BadRequest(format!("the upload is malformed: {e}")))?;
        if field.name() != Some("file") {
            drain(&mut field).await?;
            continue;
        }
        let name = original_name(&field).unwrap_or_default();
        if received.is_some() {
            return Err(AppError::BadRequest(
                "send one file to replace the content with".into(),
            ));
        }
        let outcome =
            upload::receive(&mut field, &name, storage.as_ref(), &state.settings.upload).await?;
        match outcome {
            // A browser sends an empty, nameless part when no file was chosen.
            Err(Refusal::Empty) if name.is_empty() => {}
            outcome => received = Some((name, outcome)),
        }
    }
    let refuse = |status: StatusCode, error: String| {
        let (state, current, id, req) = (state.clone(), current.clone(), id.clone(), req.clone());
        async move {
            let page = detail_page(&state, &current, &req, id, None, Some(error)).await?;
            html::render(status, &page)
        }
    };
    let (name, received) = match received {
        None => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose the file to replace the content with.".into(),
            )
            .await;
        }
        Some((name, Err(refusal))) => {
            let message = format!(
                "“{name}” was refused: {}. The file is unchanged.",
                refusal.reason()
            );
            return refuse(refusal_status(&refusal), message).await;
        }
        Some((name, Ok(received))) => (name, received),
    };

    let destination = Destination {
        db: state.db.clone(),
        storage,
        storage_name,
        upload_to: state.settings.upload.upload_to.clone(),
        thumbnails: state.thumbnailer.clone(),
    };
    let request = ReplaceRequest {
        file_id: id.clone(),
        name,
        owner: file.owner.clone(),
        storages: state.storages.clone(),
    };
    let replaced = upload::replace_content(&destination, received, request).await?;
    let (before, after) = (&replaced.before, &replaced.content);
    let describe = |name: &str, size: i64, sha256: &str| {
        format!(
            "“{name}” ({}, SHA-256 {})",
            human_size(u64::try_from(size).unwrap_or(0)),
            sha256.get(..12).unwrap_or(sha256)
        )
    };
    state
        .record_change(&req, "replace", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.file_id = Some(id.to_string());
            e.file_name = Some(after.original_name.clone());
            e.storage_key = Some(after.storage_key.to_string());
            e.detail = Some(format!(
                "content: {} → {}; old key {}{}",
                describe(&before.original_name, before.size, &before.sha256),
                describe(&after.original_name, after.size, &after.sha256),
                before.storage_key,
                if replaced.old_removed {
                    ""
                } else {
                    " (not removed: missing or failed, see the log)"
                }
            ));
        })
        .await;
    session.set_flash(format!(
        "Replaced the content of “{}” with “{}”.",
        before.title, after.original_name
    ));
    Ok(see_other(&format!("/admin/files/{id}")))
}

async fn drain(field: &mut actix_multipart::Field) -> Result<(), AppError> {
    let mut read = 0;
    while let Some(chunk) = field.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("the upload broke off: {e}")))?;
        read += chunk.len();
        if read > MAX_OTHER_PART {
            return Err(AppError::PayloadTooLarge("form field".into()));
        }
    }
    Ok(())
}
