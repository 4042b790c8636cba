//! Keys reserved by uploads whose object may exist before its row does (the table's
//! migration says why). Reserve before the object is committed; the row's insert releases
//! the key in its own transaction; a start after a crash removes what abandoned ones left.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{files, pending_uploads};
use crate::db::{DbConn, DbError};
use crate::domain::StorageKey;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pending_uploads)]
pub struct PendingKey {
    pub storage: String,
    pub storage_key: StorageKey,
    /// The storage instance that reserved it (for a filesystem storage, its temp folder).
    pub instance: String,
    pub size: i64,
    pub sha256: String,
    pub started_at: NaiveDateTime,
}

impl PendingKey {
    /// Reserves `key` in `storage` for an upload of `instance` that will put `object` (its
    /// size and SHA-256) there; `false` when a file row or another upload already holds it.
    pub fn reserve(
        conn: &mut DbConn,
        storage: &str,
        key: &StorageKey,
        instance: &str,
        object: (i64, &str),
    ) -> Result<bool, DbError> {
        // Two single statements, not a read-then-write transaction: SQLite answers "busy" at
        // once, without waiting, when a reading transaction of several writers tries to write.
        let inserted = diesel::insert_into(pending_uploads::table)
            .values((
                pending_uploads::storage.eq(storage),
                pending_uploads::storage_key.eq(key),
                pending_uploads::instance.eq(instance),
                pending_uploads::size.eq(object.0),
                pending_uploads::sha256.eq(object.1),
                pending_uploads::started_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)
            .map_err(DbError::from);
        match inserted {
            Err(e) if e.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // Rows are only written under a reservation, so a row found now stays.
        let taken: bool = diesel::select(diesel::dsl::exists(
            files::table
                .filter(files::storage.eq(storage))
                .filter(files::storage_key.eq(key)),
        ))
        .get_result(conn)?;
        if taken {
            Self::release(conn, storage, key)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Records, inside a caller's transaction, that the object at `key` is to go: a move
    /// that has just switched its row away from it (a stopped move removes it when run
    /// again). An entry already there for the key is left as it is.
    pub fn journal_in(
        conn: &mut DbConn,
        storage: &str,
        key: &StorageKey,
        instance: &str,
        object: (i64, &str),
    ) -> Result<(), diesel::result::Error> {
        Self::release_in(conn, storage, key)?;
        diesel::insert_into(pending_uploads::table)
            .values((
                pending_uploads::storage.eq(storage),
                pending_uploads::storage_key.eq(key),
                pending_uploads::instance.eq(instance),
                pending_uploads::size.eq(object.0),
                pending_uploads::sha256.eq(object.1),
                pending_uploads::started_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)
            .map(|_| ())
    }

    pub fn release(conn: &mut DbConn, storage: &str, key: &StorageKey) -> Result<(), DbError> {
        Self::release_in(conn, storage, key).map_err(DbError::from)
    }

    /// `release` inside a caller's transaction.
    pub fn release_in(
        conn: &mut DbConn,
        storage: &str,
        key: &StorageKey,
    ) -> Result<(), diesel::result::Error> {
        diesel::delete(
            pending_uploads::table
                .filter(pending_uploads::storage.eq(storage))
                .filter(pending_uploads::storage_key.eq(key)),
        )
        .execute(conn)
        .map(|_| ())
    }

    pub fn is_pending(conn: &mut DbConn, storage: &str, key: &StorageKey) -> Result<bool, DbError> {
        Ok(diesel::select(diesel::dsl::exists(
            pending_uploads::table
                .filter(pending_uploads::storage.eq(storage))
                .filter(pending_uploads::storage_key.eq(key)),
        ))
        .get_result(conn)?)
    }

    pub fn all(conn: &mut DbConn) -> Result<Vec<PendingKey>, DbError> {
        Ok(pending_uploads::table
            .select(PendingKey::as_select())
            .load(conn)?)
    }
}
