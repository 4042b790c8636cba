//! Deleting a user, and what becomes of what was theirs (README: "Users").
//!
//! Their files go to another user chosen for them, or the delete is refused while they own
//! any: a file never loses its owner, and nobody's payslip goes to whoever happens to press
//! the button. Files they uploaded for someone else keep their owner and count as uploaded by
//! the new owner of their files (or by their owner, when none was chosen); the audit log keeps
//! who really uploaded them. The share links they made are removed, so nothing an account
//! handed out outlives it, and so are their API tokens; their place in other files' reader lists goes too. The last active
//! superuser is never deleted, so somebody can always manage users from the web.

use diesel::prelude::*;

use crate::db::models::api_token::TokenRow as ApiTokenRow;
use crate::db::models::user::User;
use crate::db::schema::{file_readers, files, share_links, users};
use crate::db::{DbConn, DbError};
use crate::domain::{Role, UserId, Username};

/// What a delete changed beside removing the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub files_reassigned: i64,
    pub links_removed: i64,
    pub reader_places_removed: i64,
    pub tokens_removed: i64,
}

/// What a delete would touch, for the confirmation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdings {
    pub files_owned: i64,
    pub links_made: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RemovalError {
    #[error("there is no user named `{0}`")]
    NotFound(Username),
    #[error("there is no active user named `{0}` to give the files to")]
    NoSuchHeir(Username),
    #[error("the files cannot be given to the user who is being deleted")]
    HeirIsTheUser,
    #[error(
        "`{username}` owns {count} file{s}: choose a user to give them to, or delete or \
         reassign the files first",
        s = if *count == 1 { "" } else { "s" }
    )]
    OwnsFiles { username: Username, count: i64 },
    #[error(
        "`{0}` is the last active superuser: make another user superuser first, or nobody could \
         manage users from the web"
    )]
    LastSuperuser(Username),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for RemovalError {
    fn from(e: diesel::result::Error) -> Self {
        RemovalError::Db(e.into())
    }
}

/// What `user` owns and made that a delete would move or remove.
pub fn holdings(conn: &mut DbConn, user: &UserId) -> Result<Holdings, DbError> {
    let files_owned = files::table
        .filter(files::owner_id.eq(user))
        .count()
        .get_result(conn)?;
    let links_made = share_links::table
        .filter(share_links::created_by_id.eq(user))
        .count()
        .get_result(conn)?;
    Ok(Holdings {
        files_owned,
        links_made,
    })
}

/// Deletes `username`, giving their files to `heir` (see the module's doc for the rest), in
/// one transaction: either all of it happens or nothing does.
pub fn delete(
    conn: &mut DbConn,
    username: &Username,
    heir: Option<&Username>,
) -> Result<(User, Removed), RemovalError> {
    conn.transaction(|conn| {
        // A write first: the transaction holds the write lock (SQLite) or the superusers' rows
        // (PostgreSQL) before it counts them, so two superusers deleting each other take turns
        // and the last one stays (a transaction that read first was refused by SQLite at the
        // other's commit, "database is locked").
        User::lock_superusers(conn)?;
        let user = User::find_by_username(conn, username)?
            .ok_or_else(|| RemovalError::NotFound(username.clone()))?;
        if user.role() == Role::Superuser
            && user.is_active
            && User::count_active_superusers(conn)? <= 1
        {
            return Err(RemovalError::LastSuperuser(username.clone()));
        }
        let heir = match heir {
            Some(name) if name == username => return Err(RemovalError::HeirIsTheUser),
            Some(name) => Some(
                User::find_by_username(conn, name)?
                    .filter(|u| u.is_active)
                    .ok_or_else(|| RemovalError::NoSuchHeir(name.clone()))?,
            ),
            None => None,
        };
        let owned = holdings(conn, &user.id)?.files_owned;
        let files_reassigned = match &heir {
            Some(heir) => {
                let moved = diesel::update(files::table.filter(files::owner_id.eq(&user.id)))
                    .set(files::owner_id.eq(&heir.id))
                    .execute(conn)?;
                diesel::update(files::table.filter(files::uploaded_by_id.eq(&user.id)))
                    .set(files::uploaded_by_id.eq(&heir.id))
                    .execute(conn)?;
                moved as i64
            }
            None if owned > 0 => {
                return Err(RemovalError::OwnsFiles {
                    username: username.clone(),
                    count: owned,
                });
            }
            None => {
                // They own nothing, so every file they uploaded is someone else's.
                diesel::update(files::table.filter(files::uploaded_by_id.eq(&user.id)))
                    .set(files::uploaded_by_id.eq(files::owner_id))
                    .execute(conn)?;
                0
            }
        };
        let reader_places_removed =
            diesel::delete(file_readers::table.filter(file_readers::user_id.eq(&user.id)))
                .execute(conn)? as i64;
        let links_removed =
            diesel::delete(share_links::table.filter(share_links::created_by_id.eq(&user.id)))
                .execute(conn)? as i64;
        // Their API tokens go with them (the foreign key cascades too): none outlives its user.
        let tokens_removed = ApiTokenRow::delete_of_user(conn, &user.id)?;
        diesel::delete(users::table.filter(users::id.eq(&user.id))).execute(conn)?;
        Ok((
            user,
            Removed {
                files_reassigned,
                links_removed,
                reader_places_removed,
                tokens_removed,
            },
        ))
    })
}
