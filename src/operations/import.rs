//! `private-media import`: files that already lie under a filesystem storage's root (an old
//! django-private-storage `PRIVATE_STORAGE_ROOT`, say) become rows that keep their keys, so
//! the old `/private-media/{key}` links keep working. Each object is read once for its size,
//! SHA-256 and sniffed type. A key a row already names is skipped, and so is one an upload in
//! progress has reserved: a second run adds nothing. Names no key can hold (a symlink, a
//! control character, a dot folder such as the uploads' `.tmp`) are reported, never followed.

use crate::db::Db;
use crate::db::models::file::{FileRow, NewFile};
use crate::db::models::pending_upload::PendingKey;
use crate::db::models::user::User;
use crate::domain::{AccessRule, FileId, StorageKey};
use crate::storage::{Listed, Storage};
use crate::upload::sniff;

use super::{OperationError, read_back};

/// What applies to every imported file.
pub struct ImportRequest {
    pub storage_name: String,
    pub owner: User,
    pub importer: User,
    pub rule: AccessRule,
}

/// What became of one entry of the folder.
pub enum Imported {
    /// A new row.
    Registered(Box<FileRow>),
    /// A row names the key already (or an upload in progress has reserved it).
    AlreadyKnown(StorageKey),
    /// A thumbnail of a registered file: made from it, never registered itself.
    Thumbnail(StorageKey),
    /// Not a name a key can hold: reported, left alone.
    Unusable { name: String, reason: String },
}

/// The entries under `under` (a folder of the storage, `""` for all of it).
pub async fn entries(storage: &dyn Storage, under: &str) -> Result<Vec<Listed>, OperationError> {
    Ok(storage.list(under).await?)
}

/// Registers one entry of `entries`.
pub async fn import_one(
    db: &Db,
    storage: &dyn Storage,
    request: &ImportRequest,
    entry: Listed,
) -> Result<Imported, OperationError> {
    let key = match entry {
        Listed::Unusable { name, reason } => return Ok(Imported::Unusable { name, reason }),
        Listed::Object { key, .. } => key,
    };
    if crate::thumbnails::is_derived(&key) {
        // A thumbnail is made from its original, never registered as a file of its own;
        // anything else in such a folder would be taken for one, so it is not imported.
        let thumbnail_of_a_file = match crate::thumbnails::thumbnail_of(&key) {
            Some(original) => known(db, &request.storage_name, &original).await?,
            None => false,
        };
        return Ok(if thumbnail_of_a_file {
            Imported::Thumbnail(key)
        } else {
            Imported::Unusable {
                name: key.into_string(),
                reason: format!(
                    "it is in a folder whose name ends in `{}`, which the app keeps for \
                     thumbnails; rename the folder to import it",
                    crate::domain::DERIVED_FOLDER_SUFFIX
                ),
            }
        });
    }
    if known(db, &request.storage_name, &key).await? {
        return Ok(Imported::AlreadyKnown(key));
    }
    let read = read_back(storage, &key).await?;
    let name = key.file_name().to_owned();
    let new = NewFile {
        id: FileId::generate(),
        title: name.clone(),
        original_name: name.clone(),
        storage: request.storage_name.clone(),
        storage_key: key.clone(),
        size: i64::try_from(read.size).unwrap_or(i64::MAX),
        content_type: sniff(&read.head, &name),
        sha256: read.sha256,
        owner_id: request.owner.id.clone(),
        uploaded_by_id: request.importer.id.clone(),
        rule: request.rule,
        readers: Vec::new(),
    };
    match db.run(move |c| FileRow::insert(c, &new)).await {
        Ok(row) => Ok(Imported::Registered(Box::new(row))),
        // Another import (or an upload) wrote a row for the key in the meantime.
        Err(e) if e.is_unique_violation() => Ok(Imported::AlreadyKnown(key)),
        Err(e) => Err(e.into()),
    }
}

/// Whether a row names the key, or an upload (or a move) holds it reserved.
async fn known(db: &Db, storage: &str, key: &StorageKey) -> Result<bool, OperationError> {
    let (storage, key) = (storage.to_owned(), key.clone());
    Ok(db
        .read(move |c| {
            Ok(FileRow::find_by_key(c, &storage, &key)?.is_some()
                || PendingKey::is_pending(c, &storage, &key)?)
        })
        .await?)
}
