//! Storing an accepted upload: reserve a free key → commit the object under it → insert its
//! row → compensate if the row cannot be written. The reservation (table `pending_uploads`)
//! hides the object until its row exists and lets a start after a crash remove it.

use std::sync::Arc;

use chrono::Utc;

use crate::db::models::file::{FileRow, NewFile};
use crate::db::models::pending_upload::PendingKey;
use crate::db::models::user::User;
use crate::db::{Db, DbError};
use crate::domain::{AccessRule, FileId, StorageKey, UserId};
use crate::storage::{PendingUpload, Storage, StorageError};

use super::Received;

/// Tries at a free key before giving up (each clash after the first is a 1 in 36^7 event).
const MAX_RESERVE_TRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no free key found for an upload")]
    NoFreeKey,
    #[error("cannot reserve the key {0}")]
    Unreservable(StorageKey),
    #[error("storing an upload failed: {0}")]
    Task(String),
}

/// Where accepted uploads go.
#[derive(Clone)]
pub struct Destination {
    pub db: Db,
    pub storage: Arc<dyn Storage>,
    pub storage_name: String,
    /// The folder template (`[upload] upload_to`).
    pub upload_to: String,
    /// Makes an image's thumbnails once its row is written (src/thumbnails/).
    pub thumbnails: crate::thumbnails::Thumbnailer,
}

/// What to record about one accepted file.
pub struct StoreRequest {
    pub name: String,
    pub title: String,
    pub owner: User,
    pub uploader: User,
    pub rule: AccessRule,
    pub readers: Vec<UserId>,
}

/// The row a stored file got.
pub struct StoredFile {
    pub id: FileId,
    pub title: String,
    pub key: StorageKey,
    pub sha256: String,
}

/// Commits one accepted file under a fresh key and writes its row; if the row cannot be
/// written, the object is removed again so nothing is left without a row. Runs as its own
/// task: a caller that goes away now cannot stop it between the object and its row (an
/// object without a row, or the reverse).
pub async fn store_accepted(
    destination: &Destination,
    received: Received,
    request: StoreRequest,
) -> Result<StoredFile, StoreError> {
    store_accepted_then(destination, received, request, |_| {}).await
}

/// `store_accepted`, calling `written` with the file as soon as its row is written, before
/// its thumbnails are made (which can take seconds): what the caller records of the upload
/// (its audit event) is then part of the store, so a process killed meanwhile leaves no row
/// without it. `written` runs on the store's task, so a caller that goes away does not skip it.
pub async fn store_accepted_then(
    destination: &Destination,
    received: Received,
    request: StoreRequest,
    written: impl FnOnce(&StoredFile) + 'static,
) -> Result<StoredFile, StoreError> {
    actix_web::rt::spawn(store(destination.clone(), received, request, written))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

async fn store(
    destination: Destination,
    received: Received,
    request: StoreRequest,
    written: impl FnOnce(&StoredFile),
) -> Result<StoredFile, StoreError> {
    let Destination {
        db,
        storage,
        storage_name,
        upload_to,
        thumbnails,
    } = destination;
    let wanted = StorageKey::for_upload(
        &upload_to,
        Utc::now(),
        request.owner.username.as_str(),
        &request.name,
    );
    let object = (
        i64::try_from(received.size).unwrap_or(i64::MAX),
        received.sha256.clone(),
    );
    let key = commit_reserved(
        &db,
        storage.as_ref(),
        &storage_name,
        storage.instance(),
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
    match db.run(move |c| FileRow::insert(c, &new)).await {
        Ok(row) => {
            tracing::info!(file = %row.id, key = %row.storage_key, size = row.size, "stored");
            let stored = StoredFile {
                id: row.id.clone(),
                title: row.title.clone(),
                key: row.storage_key.clone(),
                sha256: row.sha256.clone(),
            };
            written(&stored);
            make_thumbnails(&thumbnails, &db, &storage, &row).await;
            Ok(stored)
        }
        // The key is in another row already: the object under it is that row's (two
        // instances met on one S3 key); removing it would lose the other file.
        Err(e) if e.is_unique_violation() => {
            tracing::error!(key = %key, "two uploads met on one key; the object is kept for the row that holds it");
            release(&db, &storage_name, &key).await;
            Err(e.into())
        }
        Err(e) => {
            if let Err(cleanup) = storage.delete(&key).await {
                tracing::error!(key = %key, error = %cleanup, "could not remove an object whose row failed");
            }
            release(&db, &storage_name, &key).await;
            Err(e.into())
        }
    }
}

/// Reserves a free key for the upload (no row and no other upload holds it), then commits the
/// object under it. The reservation hides the object until its row exists and lets a start
/// after a crash remove it; the row's insert releases it. `instance` is recorded with the
/// reservation: the storage's own for an upload, a move's journal name for a move's copy.
pub(crate) async fn commit_reserved(
    db: &Db,
    storage: &dyn Storage,
    storage_name: &str,
    instance: &str,
    pending: Box<dyn PendingUpload>,
    wanted: StorageKey,
    object: &(i64, String),
) -> Result<StorageKey, StoreError> {
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
        if !taken && reserve(db, instance, storage_name, &candidate, object).await? {
            reserved = true;
            break;
        }
        candidate = candidate.with_unique_suffix();
    }
    if !reserved {
        pending.abort().await;
        return Err(StoreError::NoFreeKey);
    }
    let key = match pending.commit(candidate.clone()).await {
        Ok(key) => key,
        Err(e) => {
            release(db, storage_name, &candidate).await;
            return Err(e.into());
        }
    };
    if key != candidate {
        // A file was put at the candidate by hand in the moment since it was checked, and the
        // storage chose a fresh name: move the reservation to it.
        let moved = reserve(db, instance, storage_name, &key, object).await;
        release(db, storage_name, &candidate).await;
        if !matches!(moved, Ok(true)) {
            if let Err(e) = storage.delete(&key).await {
                tracing::error!(key = %key, error = %e, "could not remove an object whose key could not be reserved");
            }
            return Err(StoreError::Unreservable(key));
        }
    }
    Ok(key)
}

async fn reserve(
    db: &Db,
    instance: &str,
    storage_name: &str,
    key: &StorageKey,
    object: &(i64, String),
) -> Result<bool, StoreError> {
    let (name, key, instance) = (storage_name.to_owned(), key.clone(), instance.to_owned());
    let (size, sha256) = (object.0, object.1.clone());
    Ok(db
        .run(move |c| PendingKey::reserve(c, &name, &key, &instance, (size, &sha256)))
        .await?)
}

/// Ends a reservation whose upload failed. If even that fails, the next start finds it.
pub(crate) async fn release(db: &Db, storage_name: &str, key: &StorageKey) {
    let (name, owned) = (storage_name.to_owned(), key.clone());
    if let Err(e) = db.run(move |c| PendingKey::release(c, &name, &owned)).await {
        tracing::warn!(key = %key, error = %e, "could not release a failed upload's key");
    }
}

/// Makes a stored file's thumbnails before its upload answers; a failure is logged and the
/// file stays stored without them (README: "Thumbnails").
pub(super) async fn make_thumbnails(
    thumbnails: &crate::thumbnails::Thumbnailer,
    db: &Db,
    storage: &Arc<dyn Storage>,
    row: &FileRow,
) {
    match thumbnails.make(db, storage, row).await {
        Ok(_) => {}
        // An image too large or broken is no failure, but its reason is worth a line.
        Err(e) if e.is_skip() && !matches!(e, crate::thumbnails::ThumbError::Render(_)) => {}
        Err(e) => {
            tracing::warn!(file = %row.id, key = %row.storage_key, reason = %e, "no thumbnails for this image")
        }
    }
}
