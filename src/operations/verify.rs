//! `private-media verify`: every row's object read back in full and compared with the row
//! (size, SHA-256), and every object of the storage looked up for its row. What it finds:
//! `missing` (a row without its object), `corrupt` (an object whose bytes differ from its
//! row), `unreadable` (the storage failed while reading it), `orphan` (an object no row
//! names; the temporary files of uploads, and objects reserved by an upload or a move still
//! under way, aside) and `unusable` (an entry no key can name, such as a symlink).

use serde::Serialize;

use crate::db::Db;
use crate::db::models::file::FileRow;
use crate::db::models::pending_upload::PendingKey;
use crate::storage::{Listed, Storage};

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

/// Reads `row`'s object back; `None` when it matches the row.
pub async fn check_row(
    storage_name: &str,
    storage: &dyn Storage,
    row: &FileRow,
) -> Option<Finding> {
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
    // A thumbnail belongs to its original's row.
    let lookup = if crate::thumbnails::is_derived(&key) {
        crate::thumbnails::original_of(&key).unwrap_or_else(|| key.clone())
    } else {
        key.clone()
    };
    let name = storage_name.to_owned();
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
