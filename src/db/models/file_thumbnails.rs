//! The files columns the thumbnails own (src/thumbnails/): the image's size and whether its
//! thumbnails are stored.

use diesel::prelude::*;

use crate::db::models::file::FileRow;
use crate::db::schema::files;
use crate::db::{DbConn, DbError};
use crate::domain::{FileId, StorageKey};

/// The sniffed types thumbnails are made of.
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Which files a backfill looks at.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// Only those without thumbnails.
    pub missing: bool,
    /// Only those of this storage.
    pub storage: Option<String>,
}

impl FileRow {
    /// Records that the thumbnails of the content under `key` of `storage` are stored, with
    /// the image's size; `None` says it has none. False when the row is gone or points at other
    /// content now (a replace, or a move, in between: the new place gets its own).
    pub fn record_thumbnails(
        conn: &mut DbConn,
        id: &FileId,
        (storage, key): (&str, &StorageKey),
        size: Option<(u32, u32)>,
    ) -> Result<bool, DbError> {
        let as_column = |n: u32| i32::try_from(n).ok();
        Ok(diesel::update(
            files::table
                .filter(files::id.eq(id))
                .filter(files::storage.eq(storage))
                .filter(files::storage_key.eq(key)),
        )
        .set((
            files::image_width.eq(size.and_then(|(w, _)| as_column(w))),
            files::image_height.eq(size.and_then(|(_, h)| as_column(h))),
            files::thumbnails.eq(size.is_some()),
        ))
        .execute(conn)?
            > 0)
    }

    /// How many image files a backfill looks at.
    pub fn count_wanting_thumbnails(conn: &mut DbConn, wanted: &Wanted) -> Result<i64, DbError> {
        let mut query = files::table
            .filter(files::content_type.eq_any(IMAGE_TYPES))
            .count()
            .into_boxed();
        if wanted.missing {
            query = query.filter(files::thumbnails.eq(false));
        }
        if let Some(storage) = &wanted.storage {
            query = query.filter(files::storage.eq(storage.clone()));
        }
        Ok(query.get_result(conn)?)
    }

    /// The next `limit` image files after `after` (by id) that a backfill should look at.
    pub fn wanting_thumbnails(
        conn: &mut DbConn,
        wanted: &Wanted,
        after: Option<&FileId>,
        limit: i64,
    ) -> Result<Vec<FileRow>, DbError> {
        let mut query = files::table
            .filter(files::content_type.eq_any(IMAGE_TYPES))
            .select(FileRow::as_select())
            .order(files::id.asc())
            .limit(limit)
            .into_boxed();
        if wanted.missing {
            query = query.filter(files::thumbnails.eq(false));
        }
        if let Some(storage) = &wanted.storage {
            query = query.filter(files::storage.eq(storage.clone()));
        }
        if let Some(after) = after {
            query = query.filter(files::id.gt(after.clone()));
        }
        Ok(query.load(conn)?)
    }
}
