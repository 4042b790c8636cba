//! The two ways to download (README: "Downloads" and "Security model"):
//!
//! - the detail view, `/files/{id}/download`: the file's own access rule, then the storage
//!   the row names;
//! - the path view, `/private-media/{key}`: the global `[access] path_rule`, for the `local`
//!   storage, like django-private-storage's `PrivateStorageView`. The rule is checked before
//!   the key is even parsed, so a refused user learns nothing about which keys exist.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;

use crate::access::{self, FileAccess};
use crate::audit::{self, DownloadEvent, Route};
use crate::auth::extractors::{current_user, current_user_and_file};
use crate::config::DEFAULT_STORAGE;
use crate::db::models::file::FileRow;
use crate::db::models::pending_upload::PendingKey;
use crate::db::models::user::User;
use crate::db::read_cache::Readable;
use crate::delivery::{self, Download, Presentation};
use crate::domain::{FileId, StorageKey};
use crate::error::AppError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct DownloadParams {
    inline: Option<String>,
}

impl DownloadParams {
    pub(crate) fn wants_inline(&self) -> bool {
        matches!(self.inline.as_deref(), Some("1" | "true" | "yes"))
    }
}

/// Answers a download and records the decision in the audit log (README: "Audit log"): the
/// event goes to the writer's queue, no database round trip is added.
pub(crate) async fn recorded<E: ResponseError>(
    req: &HttpRequest,
    state: &AppState,
    what: DownloadEvent,
    answer: Result<HttpResponse, E>,
) -> HttpResponse {
    let response = answer.unwrap_or_else(|e| e.error_response());
    // A throttled request decided nothing about the file, and recording each would let a
    // flood of them fill the log (throttled logins are not recorded either).
    if response.status() == actix_web::http::StatusCode::TOO_MANY_REQUESTS {
        return response;
    }
    let event = audit::download(req, &state.settings.server.trusted_proxies, what, &response);
    state.audit.record(event).await;
    response
}

pub async fn by_id(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<DownloadParams>,
) -> HttpResponse {
    let mut what = DownloadEvent {
        route: Some(Route::Detail),
        ..DownloadEvent::default()
    };
    let answer = by_id_checked(&req, &state, &id, &params, &mut what).await;
    recorded(&req, &state, what, answer).await
}

async fn by_id_checked(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    params: &DownloadParams,
    what: &mut DownloadEvent,
) -> Result<HttpResponse, AppError> {
    let mut first_try = true;
    loop {
        let answer = check_and_deliver(req, state, id, params, what).await;
        match answer {
            Err(AppError::NotFound) if first_try && found_the_row(what) => first_try = false,
            answer => return answer,
        }
    }
}

/// Whether a download that answered 404 had found its row, so that its object was what was
/// missing. A replace commits the row's new object and then removes the old one: a download
/// that read the row just before finds no object, and reads the row once more (the commit
/// dropped the cached one) to send the new content instead of a 404.
pub(crate) fn found_the_row(what: &DownloadEvent) -> bool {
    what.file_name.is_some()
}

async fn check_and_deliver(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    params: &DownloadParams,
    what: &mut DownloadEvent,
) -> Result<HttpResponse, AppError> {
    // An id that cannot exist is still answered only to a logged-in user.
    let (current, found) = match FileId::parse(id) {
        Ok(id) => {
            what.file_id = Some(id.to_string());
            current_user_and_file(req, Some(id)).await?
        }
        Err(_) => (current_user(req).await?, None),
    };
    serve_readable(
        req,
        state,
        &current.user,
        found.as_deref(),
        params.wants_inline(),
        what,
    )
    .await
}

/// The file `found` (the file a download asked for, and whether `user` is on its list of
/// readers) served to `user` if its access rule lets them read it: the detail view and the
/// API's download alike.
pub(crate) async fn serve_readable(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    found: Option<&(FileRow, bool)>,
    inline: bool,
    what: &mut DownloadEvent,
) -> Result<HttpResponse, AppError> {
    let file = allowed(user, found, what)?;
    let storage = state.storage_of(file)?;
    what.local = storage.kind() == "filesystem";
    let presentation = Presentation::decide(&file.content_type, &file.original_name, inline);
    delivery::deliver(
        req,
        &state.settings.delivery,
        Download {
            storage: storage.as_ref(),
            key: &file.storage_key,
            presentation,
        },
    )
    .await
}

/// The file of `found` if its access rule lets `user` read it (unknown: 404; not allowed:
/// 403), with who asked for what noted in `what`.
fn allowed<'a>(
    user: &User,
    found: Option<&'a (FileRow, bool)>,
    what: &mut DownloadEvent,
) -> Result<&'a FileRow, AppError> {
    what.user_id = Some(user.id.to_string());
    what.username = Some(user.username.to_string());
    let Some((file, listed)) = found else {
        what.file_name = None;
        return Err(AppError::NotFound);
    };
    what.file_name = Some(file.original_name.clone());
    let allowed = access::can_read(
        user,
        FileAccess {
            owner_id: &file.owner_id,
            rule: file.rule,
            listed: *listed,
        },
    );
    if !allowed {
        return Err(AppError::Forbidden);
    }
    Ok(file)
}

/// The file `id` names, once the detail view's rule lets the logged-in user read it
/// (anonymous: 303 to the login; not allowed: 403; unknown: 404). The thumbnail route asks
/// the same question through it.
pub(crate) async fn readable_file(
    req: &HttpRequest,
    id: &str,
    what: &mut DownloadEvent,
) -> Result<Readable, AppError> {
    // An id that cannot exist is still answered only to a logged-in user.
    let (current, found) = match FileId::parse(id) {
        Ok(id) => {
            what.file_id = Some(id.to_string());
            current_user_and_file(req, Some(id)).await?
        }
        Err(_) => (current_user(req).await?, None),
    };
    allowed(&current.user, found.as_deref(), what)?;
    found.ok_or(AppError::NotFound)
}

pub async fn by_path(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<DownloadParams>,
) -> HttpResponse {
    let mut what = DownloadEvent {
        route: Some(Route::Path),
        ..DownloadEvent::default()
    };
    let answer = by_path_checked(&req, &state, &params, &mut what).await;
    recorded(&req, &state, what, answer).await
}

async fn by_path_checked(
    req: &HttpRequest,
    state: &AppState,
    params: &DownloadParams,
    what: &mut DownloadEvent,
) -> Result<HttpResponse, AppError> {
    let current = current_user(req).await?;
    what.user_id = Some(current.user.id.to_string());
    what.username = Some(current.user.username.to_string());
    if !access::can_use_path_view(&current.user, state.settings.access.path_rule) {
        return Err(AppError::Forbidden);
    }
    // The router's tail match, percent-decoded once: `%2e%2e` is `..` here, and `%252e`
    // stays `%2e` (a name of three characters, never a dot): `StorageKey` refuses `..`, and
    // takes the spaces and letters of names an older app wrote (`a%20b.pdf` is `a b.pdf`).
    let raw = req.match_info().get("key").unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| AppError::NotFound)?;
    // What was asked for, as asked: a refused key is worth knowing too (cut, it is the
    // client's text).
    what.storage_key = Some(decoded.chars().take(1024).collect());
    let key = StorageKey::parse(&decoded).map_err(|_| AppError::NotFound)?;
    // A thumbnail is as private as its file: the path view's rule may be weaker.
    if crate::thumbnails::is_derived(&key) {
        return Err(AppError::NotFound);
    }
    let storage = state
        .storages
        .get(DEFAULT_STORAGE)
        .ok_or(AppError::NotFound)?;
    let row_key = key.clone();
    let (row, pending) = state
        .db
        .read(move |c| {
            let row = FileRow::find_by_key(c, DEFAULT_STORAGE, &row_key)?;
            let pending = row.is_none() && PendingKey::is_pending(c, DEFAULT_STORAGE, &row_key)?;
            Ok((row, pending))
        })
        .await?;
    // An upload's object whose row is not written yet (or never will be, after a crash).
    if pending {
        return Err(AppError::NotFound);
    }
    // A file put into the folder by hand has no row: its name is the key's, its type a guess
    // from the name (and the presentation rules still refuse to render active content).
    what.local = storage.kind() == "filesystem";
    if let Some(file) = &row {
        what.file_id = Some(file.id.to_string());
    }
    let (content_type, name) = match &row {
        Some(file) => (file.content_type.clone(), file.original_name.clone()),
        None => (
            mime_guess::from_path(key.file_name())
                .first_or_octet_stream()
                .essence_str()
                .to_owned(),
            key.file_name().to_owned(),
        ),
    };
    what.file_name = Some(name.clone());
    let presentation = Presentation::decide(&content_type, &name, params.wants_inline());
    delivery::deliver(
        req,
        &state.settings.delivery,
        Download {
            storage: storage.as_ref(),
            key: &key,
            presentation,
        },
    )
    .await
}
