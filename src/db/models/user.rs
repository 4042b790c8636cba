//! Users: the row, and its queries. The values a user is made of are in `domain`.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::{DbConn, DbError};
use crate::domain::{PasswordHash, Role, UserId, Username};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// `%…%` for LIKE over a lowered username, with `%`, `_` and `\\` matching themselves.
fn username_pattern(search: &str) -> String {
    let mut out = String::from("%");
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
diesel::define_sql_function!(#[sql_name = "lower"] fn lower_name(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub password_hash: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub session_epoch: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named `{0}` already exists")]
    Duplicate(Username),
    #[error("there is no user named `{0}`")]
    NotFound(Username),
    #[error(
        "`{0}` is the last active superuser: make another user a superuser first, or nobody could manage users"
    )]
    LastSuperuser(Username),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for UserError {
    fn from(e: diesel::result::Error) -> Self {
        UserError::Db(e.into())
    }
}

pub struct NewUser {
    pub username: Username,
    pub password_hash: PasswordHash,
    pub role: Role,
}

impl User {
    /// Superusers are staff too: the flags are kept consistent at write time.
    pub fn role(&self) -> Role {
        if self.is_superuser {
            Role::Superuser
        } else if self.is_staff {
            Role::Staff
        } else {
            Role::User
        }
    }

    pub fn is_staff_member(&self) -> bool {
        self.role() >= Role::Staff
    }
}

impl User {
    pub fn create(conn: &mut DbConn, new: NewUser) -> Result<User, UserError> {
        let now = Utc::now().naive_utc();
        let user = User {
            id: UserId::generate(),
            username: new.username.clone(),
            password_hash: new.password_hash.into_string(),
            is_active: true,
            is_staff: new.role >= Role::Staff,
            is_superuser: new.role >= Role::Superuser,
            session_epoch: 0,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let inserted = diesel::insert_into(users::table)
            .values((
                users::id.eq(&user.id),
                users::username.eq(&user.username),
                users::password_hash.eq(&user.password_hash),
                users::is_active.eq(user.is_active),
                users::is_staff.eq(user.is_staff),
                users::is_superuser.eq(user.is_superuser),
                users::session_epoch.eq(user.session_epoch),
                users::created_at.eq(user.created_at),
                users::updated_at.eq(user.updated_at),
            ))
            .execute(conn);
        match inserted.map_err(DbError::from) {
            Ok(_) => Ok(user),
            Err(e) if e.is_unique_violation() => Err(UserError::Duplicate(new.username)),
            Err(e) => Err(e.into()),
        }
    }

    pub fn find_by_id(conn: &mut DbConn, id: &UserId) -> Result<Option<User>, DbError> {
        // `get_result` rather than `first`: no bound LIMIT, so SQLite reuses the statement.
        Ok(users::table
            .filter(users::id.eq(id))
            .select(User::as_select())
            .get_result(conn)
            .optional()?)
    }

    pub fn find_by_username(
        conn: &mut DbConn,
        username: &Username,
    ) -> Result<Option<User>, DbError> {
        Ok(users::table
            .filter(users::username.eq(username))
            .select(User::as_select())
            .get_result(conn)
            .optional()?)
    }

    pub fn get_by_username(conn: &mut DbConn, username: &Username) -> Result<User, UserError> {
        Self::find_by_username(conn, username)?.ok_or_else(|| UserError::NotFound(username.clone()))
    }

    pub fn list(conn: &mut DbConn) -> Result<Vec<User>, DbError> {
        Ok(users::table
            .order(users::username.asc())
            .select(User::as_select())
            .load(conn)?)
    }

    /// Active users by name, for the owner and reader pickers.
    pub fn list_active(conn: &mut DbConn) -> Result<Vec<User>, DbError> {
        Ok(users::table
            .filter(users::is_active.eq(true))
            .order(users::username.asc())
            .select(User::as_select())
            .load(conn)?)
    }

    /// Active users whose name contains `search` (ASCII case folded, as names are ASCII), by
    /// name, at most `limit`: the pickers' search-as-you-type.
    pub fn active_names_matching(
        conn: &mut DbConn,
        search: &str,
        limit: i64,
    ) -> Result<Vec<Username>, DbError> {
        let mut pattern = String::from("%");
        for c in search.to_ascii_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        Ok(users::table
            .filter(users::is_active.eq(true))
            .filter(lower_name(users::username).like(pattern).escape('\\'))
            .order(users::username.asc())
            .select(users::username)
            .limit(limit)
            .load(conn)?)
    }

    /// The users with these names; the caller compares counts to spot unknown names.
    pub fn find_many(conn: &mut DbConn, names: &[Username]) -> Result<Vec<User>, DbError> {
        Ok(users::table
            .filter(users::username.eq_any(names))
            .select(User::as_select())
            .load(conn)?)
    }

    pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(users::table.count().get_result(conn)?)
    }

    /// Superusers who can log in: without one, nobody can manage users from the web.
    pub fn count_active_superusers(conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(users::table
            .filter(users::is_superuser.eq(true))
            .filter(users::is_active.eq(true))
            .count()
            .get_result(conn)?)
    }

    /// In a transaction that may take away a superuser: a write first, so that it holds the
    /// write lock (SQLite) or every superuser's row (PostgreSQL) before it counts them. Two
    /// superusers demoting or deactivating each other then take turns, and the last one stays.
    pub fn lock_superusers(conn: &mut DbConn) -> Result<(), DbError> {
        diesel::update(users::table.filter(users::is_superuser.eq(true)))
            .set(users::is_superuser.eq(users::is_superuser))
            .execute(conn)?;
        Ok(())
    }

    /// Refuses a change that would leave no active superuser: `user` (read after
    /// `lock_superusers`) would stop being one, and is the last.
    fn keep_a_superuser(
        conn: &mut DbConn,
        user: &User,
        role: Role,
        active: bool,
    ) -> Result<(), UserError> {
        let stays = role == Role::Superuser && active;
        if user.is_superuser
            && user.is_active
            && !stays
            && Self::count_active_superusers(conn)? <= 1
        {
            return Err(UserError::LastSuperuser(user.username.clone()));
        }
        Ok(())
    }

    /// Sets a new password and ends every session of the user.
    pub fn set_password(
        conn: &mut DbConn,
        username: &Username,
        hash: PasswordHash,
    ) -> Result<(), UserError> {
        let updated = diesel::update(users::table.filter(users::username.eq(username)))
            .set((
                users::password_hash.eq(hash.into_string()),
                users::session_epoch.eq(users::session_epoch + 1),
                users::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)?;
        if updated == 0 {
            return Err(UserError::NotFound(username.clone()));
        }
        Ok(())
    }

    /// Activates or deactivates; deactivation ends every session of the user. The last active
    /// superuser is not deactivated.
    pub fn set_active(
        conn: &mut DbConn,
        username: &Username,
        active: bool,
    ) -> Result<(), UserError> {
        conn.transaction(|conn| {
            Self::lock_superusers(conn)?;
            let user = Self::get_by_username(conn, username)?;
            Self::keep_a_superuser(conn, &user, user.role(), active)?;
            let target = users::table.filter(users::id.eq(&user.id));
            let now = Utc::now().naive_utc();
            if active {
                diesel::update(target)
                    .set((users::is_active.eq(true), users::updated_at.eq(now)))
                    .execute(conn)?;
            } else {
                diesel::update(target)
                    .set((
                        users::is_active.eq(false),
                        users::session_epoch.eq(users::session_epoch + 1),
                        users::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    /// Sets the role and the active flag from the admin; deactivation ends every session. The
    /// last active superuser keeps both.
    pub fn set_role_and_active(
        conn: &mut DbConn,
        id: &UserId,
        role: Role,
        active: bool,
    ) -> Result<(), UserError> {
        conn.transaction(|conn| {
            Self::lock_superusers(conn)?;
            let user = Self::find_by_id(conn, id)?.ok_or(UserError::Db(DbError::Query(
                diesel::result::Error::NotFound,
            )))?;
            Self::keep_a_superuser(conn, &user, role, active)?;
            let target = users::table.filter(users::id.eq(id));
            let now = Utc::now().naive_utc();
            let flags = (
                users::is_staff.eq(role >= Role::Staff),
                users::is_superuser.eq(role == Role::Superuser),
                users::is_active.eq(active),
                users::updated_at.eq(now),
            );
            if active {
                diesel::update(target).set(flags).execute(conn)?;
            } else {
                diesel::update(target)
                    .set((flags, users::session_epoch.eq(users::session_epoch + 1)))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    /// One page of the users whose name contains `search` (any case), by name, and how many
    /// match in all. Usernames are ASCII (`Username::parse`), so SQL's `lower()` folds them
    /// alike on SQLite and PostgreSQL.
    pub fn search_page(
        conn: &mut DbConn,
        search: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<User>, i64), DbError> {
        let search = search.trim();
        let query = || {
            let mut query = users::table.into_boxed();
            if !search.is_empty() {
                query = query.filter(
                    lower(users::username)
                        .like(username_pattern(search))
                        .escape('\\'),
                );
            }
            query
        };
        let total = query().count().get_result(conn)?;
        let rows = query()
            .order(users::username.asc())
            .offset(offset)
            .limit(limit)
            .select(User::as_select())
            .load(conn)?;
        Ok((rows, total))
    }

    /// Sets the role alone (the command line's `user set-role`); the active flag and the
    /// sessions stay as they are, since a role is checked on every request anyway. The last
    /// active superuser stays one.
    pub fn set_role(conn: &mut DbConn, username: &Username, role: Role) -> Result<(), UserError> {
        conn.transaction(|conn| {
            Self::lock_superusers(conn)?;
            let user = Self::get_by_username(conn, username)?;
            Self::keep_a_superuser(conn, &user, role, user.is_active)?;
            diesel::update(users::table.filter(users::id.eq(&user.id)))
                .set((
                    users::is_staff.eq(role >= Role::Staff),
                    users::is_superuser.eq(role == Role::Superuser),
                    users::updated_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    pub fn record_login(conn: &mut DbConn, id: &UserId) -> Result<(), DbError> {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set(users::last_login_at.eq(Utc::now().naive_utc()))
            .execute(conn)?;
        Ok(())
    }
}
