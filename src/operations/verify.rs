//! `private-media verify`: every row's object read back in full and compared with the row
//! (size, SHA-256), and every object of the storage looked up for its row. What it finds:
//! `missing` (a row without its object), `corrupt` (an object whose bytes differ from its
//! row), `unreadable` (the storage failed while reading it), `orphan` (an object no row
//! names; the temporary files of uploads, and objects reserved by an upload or a move still
//! under way, aside) and `unusable` (an entry no key can name, such as a symlink). A file's
//! thumbnails are checked with it: one its row records but the storage lacks is `missing`,
//! one its row does not record (or of no file at all) is an `orphan`.

use serde::Serialize;

use crate::domain::StorageKey;

use crate::db::Db;
use crate::db::models::file::FileRow;
use crate::db::models::pending_upload::PendingKey;
use crate::storage::{Listed, Storage};
use crate::thumbnails::{self, ThumbSize};

use super::{OperationError, read_back};

/// One thing found wrong. Its JSON form is part of `verify --format json` (README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub storage: String,
    pub key: String,
    /// `missing`, `corrupt`, `unreadable`, `orphan` or `unusable`.
    pub problem: &'static str,
    /// The row's file id (none for an orphan or an unusable entry).
    pub file: Option<String>,
    pub detail: String,
}

/// How long after a file's row was written its thumbnails may still be under way (they are
/// made after the row, before the upload answers), so objects of them not yet recorded are
/// no orphans.
const THUMBNAILS_UNDER_WAY: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Reads `row`'s object back and looks up the thumbnails it records; empty when all is as
/// the row says.
pub async fn check_row(storage_name: &str, storage: &dyn Storage, row: &FileRow) -> Vec<Finding> {
    let mut found: Vec<Finding> = check_object(storage_name, storage, row)
        .await
        .into_iter()
        .collect();
    if row.thumbnails {
        for size in ThumbSize::ALL {
            let Some(key) = thumbnails::derived_key(&row.storage_key, size) else {
                continue;
            };
            let (problem, detail) = match storage.metadata(&key).await {
                Ok(_) => continue,
                Err(e) if e.is_not_found() => (
                    "missing",
                    format!(
                        "its {} thumbnail is not stored (`private-media thumbnails` makes it again)",
                        size.as_str()
                    ),
                ),
                Err(e) => ("unreadable", e.to_string()),
            };
            found.push(Finding {
                storage: storage_name.to_owned(),
                key: key.to_string(),
                problem,
                file: Some(row.id.to_string()),
                detail,
            });
        }
    }
    found
}

async fn check_object(storage_name: &str, storage: &dyn Storage, row: &FileRow) -> Option<Finding> {
    let finding = |problem, detail: String| Finding {
        storage: storage_name.to_owned(),
        key: row.storage_key.to_string(),
        problem,
        file: Some(row.id.to_string()),
        detail,
    };
    match read_back(storage, &row.storage_key).await {
        Ok(read) if i64::try_from(read.size).ok() != Some(row.size) => Some(finding(
            "corrupt",
            format!("{} bytes, the row says {}", read.size, row.size),
        )),
        Ok(read) if read.sha256 != row.sha256 => Some(finding(
            "corrupt",
            format!("SHA-256 {}, the row says {}", read.sha256, row.sha256),
        )),
        Ok(_) => None,
        Err(OperationError::Storage(e)) if e.is_not_found() => {
            Some(finding("missing", "no object under the key".to_owned()))
        }
        Err(e) => Some(finding("unreadable", e.to_string())),
    }
}

/// Looks up one listed entry of the storage; `None` when a row (or a reservation) holds it.
pub async fn check_listed(
    db: &Db,
    storage_name: &str,
    entry: Listed,
) -> Result<Option<Finding>, OperationError> {
    let key = match entry {
        Listed::Unusable { name, reason } => {
            return Ok(Some(Finding {
                storage: storage_name.to_owned(),
                key: name,
                problem: "unusable",
                file: None,
                detail: reason,
            }));
        }
        Listed::Object { key, .. } => key,
    };
    if thumbnails::is_derived(&key) {
        return check_derived(db, storage_name, key).await;
    }
    let (name, lookup) = (storage_name.to_owned(), key.clone());
    let held = db
        .read(move |c| {
            Ok(FileRow::find_by_key(c, &name, &lookup)?.is_some()
                || PendingKey::is_pending(c, &name, &lookup)?)
        })
        .await?;
    Ok((!held).then(|| Finding {
        storage: storage_name.to_owned(),
        key: key.to_string(),
        problem: "orphan",
        file: None,
        detail: "no file row names this object".to_owned(),
    }))
}

/// A thumbnail is held by its original's row when that row records thumbnails (or was
/// written so lately that they may be under way), or by the original's reservation (an
/// upload or a move still at work).
async fn check_derived(
    db: &Db,
    storage_name: &str,
    key: StorageKey,
) -> Result<Option<Finding>, OperationError> {
    let orphan = |file: Option<String>, detail: &str| Finding {
        storage: storage_name.to_owned(),
        key: key.to_string(),
        problem: "orphan",
        file,
        detail: detail.to_owned(),
    };
    let Some(original) = thumbnails::thumbnail_of(&key) else {
        return Ok(Some(orphan(
            None,
            "not a thumbnail of any size this app makes",
        )));
    };
    let name = storage_name.to_owned();
    let (row, pending) = db
        .read(move |c| {
            Ok((
                FileRow::find_by_key(c, &name, &original)?,
                PendingKey::is_pending(c, &name, &original)?,
            ))
        })
        .await?;
    Ok(match row {
        _ if pending => None,
        None => Some(orphan(None, "a thumbnail of no file")),
        Some(row) if row.thumbnails => None,
        Some(row)
            if chrono::Utc::now().naive_utc() - row.updated_at.max(row.uploaded_at)
                < THUMBNAILS_UNDER_WAY =>
        {
            None
        }
        Some(row) => Some(orphan(
            Some(row.id.to_string()),
            "a thumbnail its file does not record",
        )),
    })
}
