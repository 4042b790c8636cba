//! Replacing a stored file's content: the new upload is committed under a fresh key (reserved
//! as any upload's), the row is pointed at it, and only then is the old object removed. The
//! file keeps its id, and with it its share links, its rule and its readers. If the row
//! cannot be written the new object goes again and the old one stays: nothing is lost.

use chrono::Utc;

use crate::db::models::file::{FileRow, NewContent};
use crate::domain::{FileId, StorageKey, Username};
use crate::storage::Storages;

use super::Received;
use super::store::{Destination, StoreError, commit_reserved, make_thumbnails, release};

/// Which file gets the new content, and where its current object lives.
pub struct ReplaceRequest {
    pub file_id: FileId,
    /// The name the new content was sent under.
    pub name: String,
    /// For the new key's folder (`[upload] upload_to` may name the owner).
    pub owner: Username,
    /// The configured storages: the object the row pointed at until the new one is removed
    /// from the storage that row named, read in the same transaction that moved it (another
    /// replace may have moved the row since this request began, to another storage).
    pub storages: Storages,
}

/// What changed.
pub struct Replaced {
    pub before: FileRow,
    pub content: NewContent,
    /// Whether the old object is gone (false: it was already missing, or removing it failed
    /// and it is logged).
    pub old_removed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file was deleted while its new content arrived; the new content is removed.
    #[error("the file is gone")]
    Gone,
}

/// Runs as its own task, like `store_accepted`: a caller that goes away cannot stop it between
/// the commit, the row and the removal of the old object.
pub async fn replace_content(
    destination: &Destination,
    received: Received,
    request: ReplaceRequest,
) -> Result<Replaced, ReplaceError> {
    actix_web::rt::spawn(replace(destination.clone(), received, request))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

async fn replace(
    destination: Destination,
    received: Received,
    request: ReplaceRequest,
) -> Result<Replaced, ReplaceError> {
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
        request.owner.as_str(),
        &request.name,
    );
    let size = i64::try_from(received.size).unwrap_or(i64::MAX);
    let object = (size, received.sha256.clone());
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
    let content = NewContent {
        original_name: if request.name.is_empty() {
            key.file_name().to_owned()
        } else {
            request.name
        },
        storage: storage_name.clone(),
        storage_key: key.clone(),
        size,
        content_type: received.content_type,
        sha256: received.sha256,
    };
    let (id, written) = (request.file_id.clone(), content.clone());
    let before = match db
        .run(move |c| FileRow::replace_content(c, &id, &written))
        .await
    {
        Ok(Some(before)) => before,
        outcome => {
            // No row took the new object: it goes, and the old content stays as it was.
            if let Err(e) = storage.delete(&key).await {
                tracing::error!(key = %key, error = %e, "could not remove a replacement whose row was not written");
            }
            release(&db, &storage_name, &key).await;
            return match outcome {
                Err(e) => Err(StoreError::from(e).into()),
                Ok(_) => Err(ReplaceError::Gone),
            };
        }
    };
    if let Some(old_storage) = request.storages.get(&before.storage) {
        crate::thumbnails::remove_derived(old_storage.as_ref(), &before.storage_key).await;
    }
    let old_removed = match request.storages.get(&before.storage) {
        Some(old_storage) => match old_storage.delete(&before.storage_key).await {
            Ok(()) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => {
                tracing::error!(file = %before.id, storage = %before.storage, key = %before.storage_key, error = %e, "could not remove the replaced object; it has no row now");
                false
            }
        },
        None => {
            tracing::error!(file = %before.id, storage = %before.storage, key = %before.storage_key, "the replaced object's storage is not configured; it was not removed");
            false
        }
    };
    tracing::info!(file = %before.id, old = %before.storage_key, new = %content.storage_key, "replaced");
    let id = before.id.clone();
    match db.read(move |c| FileRow::find(c, &id)).await {
        Ok(Some(row)) if row.storage_key == content.storage_key => {
            make_thumbnails(&thumbnails, &db, &storage, &row).await;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(file = %before.id, error = %e, "could not read a replaced file back for its thumbnails")
        }
    }
    Ok(Replaced {
        before,
        content,
        old_removed,
    })
}
