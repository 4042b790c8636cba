//! Share links: rows of `share_links`, and the conditional updates that keep their counts
//! exact across requests and instances (README: "Share links").

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::file::FileRow;
use crate::db::schema::{files, share_links, users};
use crate::db::{DbConn, DbError};
use crate::domain::{FileId, LinkId, UserId, Username};

/// Wrong passwords a link takes within `PASSWORD_WINDOW_MINUTES` before it answers 429.
pub const PASSWORD_ATTEMPTS: i64 = 10;
pub const PASSWORD_WINDOW_MINUTES: i64 = 15;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = share_links)]
pub struct LinkRow {
    pub id: LinkId,
    pub file_id: FileId,
    pub label: String,
    pub created_by_id: UserId,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub max_downloads: Option<i64>,
    pub downloads: i64,
    pub password_hash: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
}

/// Where a link stands, in the order a request checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Active,
    Revoked,
    Expired,
    UsedUp,
}

impl LinkState {
    pub const ALL: [LinkState; 4] = [
        LinkState::Active,
        LinkState::Expired,
        LinkState::UsedUp,
        LinkState::Revoked,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The value of `/admin/links?state=`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Active => "active",
            LinkState::Revoked => "revoked",
            LinkState::Expired => "expired",
            LinkState::UsedUp => "used-up",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            LinkState::Active => "active",
            LinkState::Revoked => "revoked",
            LinkState::Expired => "expired",
            LinkState::UsedUp => "used up",
        }
    }
}

impl LinkRow {
    pub fn state(&self, now: NaiveDateTime) -> LinkState {
        if self.revoked_at.is_some() {
            LinkState::Revoked
        } else if self.expires_at <= now {
            LinkState::Expired
        } else if self.max_downloads.is_some_and(|max| self.downloads >= max) {
            LinkState::UsedUp
        } else {
            LinkState::Active
        }
    }
}

/// A link as lists show it: with its creator's name and its file's title.
#[derive(Debug, Clone)]
pub struct ListedLink {
    pub link: LinkRow,
    pub creator: Username,
    pub file_title: String,
}

/// Everything a request through a link decides on, read in one statement.
#[derive(Debug, Clone)]
pub struct OpenedLink {
    pub link: LinkRow,
    pub file: FileRow,
    /// The link's creator is still active staff (or a superuser): a link stops working with
    /// its creator's right to make it.
    pub creator_may_share: bool,
}

pub struct NewLink<'a> {
    pub id: &'a LinkId,
    pub file_id: &'a FileId,
    pub token_sha256: &'a str,
    pub label: &'a str,
    pub created_by_id: &'a UserId,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub max_downloads: Option<i64>,
    pub password_hash: Option<&'a str>,
}

/// What a page of `/admin/links` shows.
pub struct LinkPage {
    pub links: Vec<ListedLink>,
    pub total: i64,
}

pub struct ShareLink;

impl ShareLink {
    pub fn create(conn: &mut DbConn, new: NewLink<'_>) -> Result<(), DbError> {
        diesel::insert_into(share_links::table)
            .values((
                share_links::id.eq(new.id),
                share_links::file_id.eq(new.file_id),
                share_links::token_sha256.eq(new.token_sha256),
                share_links::label.eq(new.label),
                share_links::created_by_id.eq(new.created_by_id),
                share_links::created_at.eq(new.created_at),
                share_links::expires_at.eq(new.expires_at),
                share_links::max_downloads.eq(new.max_downloads),
                share_links::downloads.eq(0_i64),
                share_links::password_hash.eq(new.password_hash),
                share_links::password_attempts.eq(0_i64),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// The link whose token has this digest, its file and whether its creator may still share.
    pub fn open(conn: &mut DbConn, token_sha256: &str) -> Result<Option<OpenedLink>, DbError> {
        Ok(share_links::table
            .inner_join(files::table)
            .inner_join(users::table)
            .filter(share_links::token_sha256.eq(token_sha256))
            .select((
                LinkRow::as_select(),
                FileRow::as_select(),
                users::is_active,
                users::is_staff,
                users::is_superuser,
            ))
            .get_result::<(LinkRow, FileRow, bool, bool, bool)>(conn)
            .optional()?
            .map(|(link, file, active, staff, superuser)| OpenedLink {
                link,
                file,
                creator_may_share: active && (staff || superuser),
            }))
    }

    pub fn find(conn: &mut DbConn, id: &LinkId) -> Result<Option<LinkRow>, DbError> {
        Ok(share_links::table
            .filter(share_links::id.eq(id))
            .select(LinkRow::as_select())
            .get_result(conn)
            .optional()?)
    }

    /// A file's links, newest first.
    pub fn of_file(conn: &mut DbConn, file_id: &FileId) -> Result<Vec<ListedLink>, DbError> {
        Ok(share_links::table
            .inner_join(files::table)
            .inner_join(users::table)
            .filter(share_links::file_id.eq(file_id))
            .order((share_links::created_at.desc(), share_links::id.desc()))
            .select((LinkRow::as_select(), users::username, files::title))
            .load::<(LinkRow, Username, String)>(conn)?
            .into_iter()
            .map(listed)
            .collect())
    }

    /// Every link, newest first, optionally only those in `state` at `now`.
    pub fn page(
        conn: &mut DbConn,
        state: Option<LinkState>,
        now: NaiveDateTime,
        offset: i64,
        limit: i64,
    ) -> Result<LinkPage, DbError> {
        let query = || {
            let mut query = share_links::table
                .inner_join(files::table)
                .inner_join(users::table)
                .into_boxed::<crate::db::Backend>();
            query = match state {
                None => query,
                Some(LinkState::Revoked) => query.filter(share_links::revoked_at.is_not_null()),
                Some(LinkState::Expired) => query
                    .filter(share_links::revoked_at.is_null())
                    .filter(share_links::expires_at.le(now)),
                Some(LinkState::UsedUp) => query
                    .filter(share_links::revoked_at.is_null())
                    .filter(share_links::expires_at.gt(now))
                    .filter(share_links::max_downloads.is_not_null())
                    .filter(
                        share_links::downloads
                            .nullable()
                            .ge(share_links::max_downloads),
                    ),
                Some(LinkState::Active) => query
                    .filter(share_links::revoked_at.is_null())
                    .filter(share_links::expires_at.gt(now))
                    .filter(
                        share_links::max_downloads
                            .is_null()
                            .or(share_links::downloads
                                .nullable()
                                .lt(share_links::max_downloads)),
                    ),
            };
            query
        };
        let total = query().count().get_result(conn)?;
        let links = query()
            .order((share_links::created_at.desc(), share_links::id.desc()))
            .offset(offset)
            .limit(limit)
            .select((LinkRow::as_select(), users::username, files::title))
            .load::<(LinkRow, Username, String)>(conn)?
            .into_iter()
            .map(listed)
            .collect();
        Ok(LinkPage { links, total })
    }

    /// Takes one download if the link still has one to give at `now`: one conditional
    /// update, so of two requests racing for the last download exactly one gets it.
    pub fn take_download(
        conn: &mut DbConn,
        id: &LinkId,
        now: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let taken = diesel::update(
            share_links::table
                .filter(share_links::id.eq(id))
                .filter(share_links::revoked_at.is_null())
                .filter(share_links::expires_at.gt(now))
                .filter(
                    share_links::max_downloads
                        .is_null()
                        .or(share_links::downloads
                            .nullable()
                            .lt(share_links::max_downloads)),
                ),
        )
        .set((
            share_links::downloads.eq(share_links::downloads + 1),
            share_links::last_used_at.eq(now),
        ))
        .execute(conn)?;
        Ok(taken == 1)
    }

    /// Adds counted downloads of links without a limit (`ShareTally`), in one transaction.
    pub fn add_downloads(
        conn: &mut DbConn,
        counts: &[(LinkId, i64, NaiveDateTime)],
    ) -> Result<(), DbError> {
        conn.transaction(|conn| {
            for (id, downloads, last_used_at) in counts {
                diesel::update(share_links::table.filter(share_links::id.eq(id)))
                    .set((
                        share_links::downloads.eq(share_links::downloads + *downloads),
                        share_links::last_used_at.eq(*last_used_at),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    /// Takes one password attempt of the link's window (a fresh window once the last one is
    /// `PASSWORD_WINDOW_MINUTES` old); `false` when the window's attempts are used up. Taken
    /// before the password is checked, so guesses in flight count too, and no number of
    /// concurrent requests gets more checks than the limit.
    pub fn take_password_attempt(
        conn: &mut DbConn,
        id: &LinkId,
        now: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let window_start = now - chrono::Duration::minutes(PASSWORD_WINDOW_MINUTES);
        conn.transaction(|conn| {
            diesel::update(
                share_links::table.filter(share_links::id.eq(id)).filter(
                    share_links::password_window_at
                        .is_null()
                        .or(share_links::password_window_at.le(window_start)),
                ),
            )
            .set((
                share_links::password_attempts.eq(0_i64),
                share_links::password_window_at.eq(now),
            ))
            .execute(conn)?;
            let taken = diesel::update(
                share_links::table
                    .filter(share_links::id.eq(id))
                    .filter(share_links::password_attempts.lt(PASSWORD_ATTEMPTS)),
            )
            .set(share_links::password_attempts.eq(share_links::password_attempts + 1))
            .execute(conn)?;
            Ok(taken == 1)
        })
    }

    /// Gives back the attempt of a right password: only wrong ones count.
    pub fn return_password_attempt(conn: &mut DbConn, id: &LinkId) -> Result<(), DbError> {
        diesel::update(
            share_links::table
                .filter(share_links::id.eq(id))
                .filter(share_links::password_attempts.gt(0_i64)),
        )
        .set(share_links::password_attempts.eq(share_links::password_attempts - 1))
        .execute(conn)?;
        Ok(())
    }

    /// Revokes a link. Revoking twice keeps the first time.
    pub fn revoke(conn: &mut DbConn, id: &LinkId, now: NaiveDateTime) -> Result<(), DbError> {
        diesel::update(
            share_links::table
                .filter(share_links::id.eq(id))
                .filter(share_links::revoked_at.is_null()),
        )
        .set(share_links::revoked_at.eq(now))
        .execute(conn)?;
        Ok(())
    }
}

fn listed((link, creator, file_title): (LinkRow, Username, String)) -> ListedLink {
    ListedLink {
        link,
        creator,
        file_title,
    }
}
