//! Ended sessions: ids of logged-out cookie sessions, kept until they would have expired.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::ended_sessions;
use crate::db::{DbConn, DbError};

pub struct EndedSession;

impl EndedSession {
    /// Records `sid` as ended until `expires_at` (unix seconds), and forgets expired ones.
    pub fn end(conn: &mut DbConn, sid: &str, expires_at: i64) -> Result<(), DbError> {
        let now = Utc::now().naive_utc();
        let expires_at: NaiveDateTime = DateTime::from_timestamp(expires_at, 0)
            .map(|t| t.naive_utc())
            .unwrap_or(now);
        diesel::delete(ended_sessions::table.filter(ended_sessions::expires_at.lt(now)))
            .execute(conn)?;
        let inserted = diesel::insert_into(ended_sessions::table)
            .values((
                ended_sessions::sid.eq(sid),
                ended_sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .map_err(DbError::from);
        match inserted {
            // Two logouts of one session at once: it is ended either way.
            Err(e) if e.is_unique_violation() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    pub fn is_ended(conn: &mut DbConn, sid: &str) -> Result<bool, DbError> {
        Ok(diesel::select(diesel::dsl::exists(
            ended_sessions::table.filter(ended_sessions::sid.eq(sid)),
        ))
        .get_result(conn)?)
    }
}
