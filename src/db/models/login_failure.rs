//! Failed logins, one row each, shared by every instance (the throttle's memory).

use chrono::NaiveDateTime;
use diesel::dsl::{count, count_star, min};
use diesel::prelude::*;

use crate::db::schema::login_failures;
use crate::db::{DbConn, DbError};

/// How many failures a name or an address has in a window, and when the oldest of them was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    pub count: i64,
    pub oldest: Option<NaiveDateTime>,
}

pub struct LoginFailure;

impl LoginFailure {
    /// Records one failure, and forgets every failure from before `forget_before` (no limit
    /// looks back that far), so the table holds one window's worth at most.
    pub fn record(
        conn: &mut DbConn,
        username: &str,
        address: Option<&str>,
        at: NaiveDateTime,
        forget_before: NaiveDateTime,
    ) -> Result<String, DbError> {
        diesel::delete(login_failures::table.filter(login_failures::failed_at.lt(forget_before)))
            .execute(conn)?;
        let id = crate::ids::random_id();
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::id.eq(&id),
                login_failures::username.eq(username),
                login_failures::address.eq(address),
                login_failures::cleared.eq(false),
                login_failures::failed_at.eq(at),
            ))
            .execute(conn)?;
        Ok(id)
    }

    /// Takes back one recorded attempt (it turned out to be a successful login).
    pub fn forget(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
        diesel::delete(login_failures::table.filter(login_failures::id.eq(id))).execute(conn)?;
        Ok(())
    }

    /// Failures of `username` since `since` that no successful login has cleared.
    pub fn of_name_since(
        conn: &mut DbConn,
        username: &str,
        since: NaiveDateTime,
    ) -> Result<FailureCount, DbError> {
        let (count, oldest) = login_failures::table
            .filter(login_failures::username.eq(username))
            .filter(login_failures::failed_at.ge(since))
            .filter(login_failures::cleared.eq(false))
            .select((count_star(), min(login_failures::failed_at)))
            .first::<(i64, Option<NaiveDateTime>)>(conn)?;
        Ok(FailureCount { count, oldest })
    }

    /// How many different names other than `username` failed from `address` since `since`:
    /// guessing one name's password over and over counts once here (the per-name limit is
    /// what stops that), and the name trying now is not charged twice.
    pub fn other_names_from_address_since(
        conn: &mut DbConn,
        address: &str,
        username: &str,
        since: NaiveDateTime,
    ) -> Result<FailureCount, DbError> {
        let (count, oldest) = login_failures::table
            .filter(login_failures::address.eq(address))
            .filter(login_failures::failed_at.ge(since))
            .filter(login_failures::username.ne(username))
            .select((
                count(login_failures::username).aggregate_distinct(),
                min(login_failures::failed_at),
            ))
            .first::<(i64, Option<NaiveDateTime>)>(conn)?;
        Ok(FailureCount { count, oldest })
    }

    /// A successful login: the name's failures stop counting against it. They still count
    /// against their addresses, so one good password does not reset a run against other names.
    pub fn clear_name(conn: &mut DbConn, username: &str) -> Result<(), DbError> {
        diesel::update(
            login_failures::table
                .filter(login_failures::username.eq(username))
                .filter(login_failures::cleared.eq(false)),
        )
        .set(login_failures::cleared.eq(true))
        .execute(conn)?;
        Ok(())
    }
}
