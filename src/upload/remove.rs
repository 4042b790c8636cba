//! Deleting a file: its stored object, then its row (the detail page's delete and the bulk
//! delete alike). The row goes only if it still points at the object just removed: a replace
//! that committed in between has moved it to new content, which is then removed too, so a
//! delete never leaves content behind without a row (the path view would still serve it).

use crate::db::Db;
use crate::db::models::file::FileRow;
use crate::storage::{StorageError, Storages};

/// How often a delete follows the row to newer content before it gives up.
const FOLLOW_REPLACES: usize = 3;

/// What the delete found of the stored object it removed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    Removed,
    AlreadyGone,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("the file is gone")]
    Gone,
    #[error("the file is in the storage `{0}`, which is not configured")]
    NoStorage(String),
    #[error("the file's content was replaced again and again while it was being deleted")]
    KeptChanging,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// Removes `file`'s object and then its row; returns the row as it was deleted (its last
/// content) and what became of the first object.
pub async fn remove_file(
    db: &Db,
    storages: &Storages,
    mut file: FileRow,
) -> Result<(FileRow, ObjectState), RemoveError> {
    let mut first = None;
    for _ in 0..FOLLOW_REPLACES {
        let storage = storages
            .get(&file.storage)
            .ok_or_else(|| RemoveError::NoStorage(file.storage.clone()))?;
        crate::thumbnails::remove_derived(storage.as_ref(), &file.storage_key).await;
        let state = match storage.delete(&file.storage_key).await {
            Ok(()) => ObjectState::Removed,
            Err(e) if e.is_not_found() => ObjectState::AlreadyGone,
            Err(e) => return Err(e.into()),
        };
        let first = *first.get_or_insert(state);
        let (id, name, key) = (
            file.id.clone(),
            file.storage.clone(),
            file.storage_key.clone(),
        );
        if db
            .run(move |c| FileRow::delete_at(c, &id, &name, &key))
            .await?
        {
            return Ok((file, first));
        }
        let id = file.id.clone();
        match db.read(move |c| FileRow::find(c, &id)).await? {
            Some(moved) => file = moved,
            None => return Err(RemoveError::Gone),
        }
    }
    Err(RemoveError::KeptChanging)
}
