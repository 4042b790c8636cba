//! API tokens: rows of `api_tokens`, looked up by the SHA-256 of the token (README:
//! "Scripting"). A token works while it is neither revoked nor expired and its user is
//! active; its "last used" time is written at most once a minute, not on every request.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::user::User;
use crate::db::schema::{api_tokens, users};
use crate::db::{DbConn, DbError};
use crate::domain::{ApiToken, TokenExpiry, TokenId, UserId, Username};

/// How stale "last used" may be before a request writes it again.
pub const LAST_USED_PRECISION_SECS: i64 = 60;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

impl TokenRow {
    pub fn state(&self, now: NaiveDateTime) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }

    /// Whether a request at `now` should write "last used".
    pub fn last_used_is_stale(&self, now: NaiveDateTime) -> bool {
        self.last_used_at
            .is_none_or(|at| now - at >= chrono::Duration::seconds(LAST_USED_PRECISION_SECS))
    }
}

/// A token with its user's name, for lists.
#[derive(Debug, Clone)]
pub struct ListedToken {
    pub token: TokenRow,
    pub username: Username,
}

/// How the audit log names a token (its id, name and user; never the secret).
pub fn audit_detail(id: &TokenId, name: &str, owner: &impl std::fmt::Display) -> String {
    format!("token {id} “{name}” of “{owner}”")
}

pub struct NewToken<'a> {
    pub id: &'a TokenId,
    pub user_id: &'a UserId,
    pub token_sha256: &'a str,
    pub name: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

/// A token just made: the secret, to be shown once and never again.
#[derive(Debug)]
pub struct Issued {
    pub id: TokenId,
    pub token: ApiToken,
    pub expires_at: Option<NaiveDateTime>,
}

impl TokenRow {
    /// Makes a new token for `user`: only its digest is written.
    pub fn issue(
        conn: &mut DbConn,
        user: &UserId,
        name: &str,
        expiry: TokenExpiry,
        now: NaiveDateTime,
    ) -> Result<Issued, DbError> {
        let id = TokenId::generate();
        let token = ApiToken::generate();
        let expires_at = expiry.expires_at(now);
        Self::insert(
            conn,
            &NewToken {
                id: &id,
                user_id: user,
                token_sha256: &token.digest(),
                name,
                created_at: now,
                expires_at,
            },
        )?;
        Ok(Issued {
            id,
            token,
            expires_at,
        })
    }

    pub fn insert(conn: &mut DbConn, new: &NewToken<'_>) -> Result<(), DbError> {
        diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::id.eq(new.id),
                api_tokens::user_id.eq(new.user_id),
                api_tokens::token_sha256.eq(new.token_sha256),
                api_tokens::name.eq(new.name),
                api_tokens::created_at.eq(new.created_at),
                api_tokens::expires_at.eq(new.expires_at),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// The token whose digest is `sha256`, with its user: all a request decides on, in one
    /// statement.
    pub fn find_by_digest(
        conn: &mut DbConn,
        sha256: &str,
    ) -> Result<Option<(TokenRow, User)>, DbError> {
        Ok(api_tokens::table
            .inner_join(users::table)
            .filter(api_tokens::token_sha256.eq(sha256))
            .select((TokenRow::as_select(), User::as_select()))
            .get_result(conn)
            .optional()?)
    }

    pub fn find(conn: &mut DbConn, id: &TokenId) -> Result<Option<ListedToken>, DbError> {
        Ok(api_tokens::table
            .inner_join(users::table)
            .filter(api_tokens::id.eq(id))
            .select((TokenRow::as_select(), users::username))
            .get_result::<(TokenRow, Username)>(conn)
            .optional()?
            .map(|(token, username)| ListedToken { token, username }))
    }

    /// The tokens of `user` (every user's when `None`), newest first.
    pub fn list(conn: &mut DbConn, user: Option<&UserId>) -> Result<Vec<ListedToken>, DbError> {
        let mut query = api_tokens::table
            .inner_join(users::table)
            .select((TokenRow::as_select(), users::username))
            .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
            .into_boxed();
        if let Some(user) = user {
            query = query.filter(api_tokens::user_id.eq(user.clone()));
        }
        Ok(query
            .load::<(TokenRow, Username)>(conn)?
            .into_iter()
            .map(|(token, username)| ListedToken { token, username })
            .collect())
    }

    /// Revokes `id` if it is not revoked yet; whether this call revoked it.
    pub fn revoke(conn: &mut DbConn, id: &TokenId, now: NaiveDateTime) -> Result<bool, DbError> {
        let changed = diesel::update(
            api_tokens::table
                .filter(api_tokens::id.eq(id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)?;
        Ok(changed > 0)
    }

    /// Writes "last used", unless another request (or instance) wrote it within the last
    /// minute: concurrent requests of one token write it about once.
    pub fn touch(conn: &mut DbConn, id: &TokenId, now: NaiveDateTime) -> Result<(), DbError> {
        let stale_before = now - chrono::Duration::seconds(LAST_USED_PRECISION_SECS);
        diesel::update(
            api_tokens::table.filter(api_tokens::id.eq(id)).filter(
                api_tokens::last_used_at
                    .is_null()
                    .or(api_tokens::last_used_at.le(stale_before)),
            ),
        )
        .set(api_tokens::last_used_at.eq(now))
        .execute(conn)?;
        Ok(())
    }

    /// Removes every token of `user` (a user delete); how many there were.
    pub fn delete_of_user(conn: &mut DbConn, user: &UserId) -> Result<i64, DbError> {
        Ok(
            diesel::delete(api_tokens::table.filter(api_tokens::user_id.eq(user))).execute(conn)?
                as i64,
        )
    }
}
