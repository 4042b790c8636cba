//! Extractors for "logged in", "staff" and "superuser". A handler that takes one of them
//! cannot run for anyone else: anonymous requests get a 303 to the login page, logged-in users
//! without the role get the 403 page.
//!
//! The session cookie says who the user was; every request checks that against the database
//! (still active, same session epoch, session not ended), so a password change, deactivation
//! or logout ends sessions at once. The reads may come from the in-process cache, which is
//! exact: see `db/read_cache.rs` and `db/freshness.rs` for how a change reaches it.

use std::rc::Rc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::auth::session::TypedSession;
use crate::db::models::file::FileRow;
use crate::db::models::session::EndedSession;
use crate::db::models::user::User;
use crate::db::read_cache::{Readable, SessionReads};
use crate::domain::{FileId, Role, UserId};
use crate::error::AppError;
use crate::state::AppState;

/// A logged-in, active user, and the CSRF token their forms must carry.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Shared with the access cache: a request that finds it there copies nothing.
    pub user: Rc<User>,
    pub csrf_token: String,
    /// The path asked for, so the navigation can mark where the user is.
    pub path: String,
}

/// A logged-in staff member (superusers included).
#[derive(Debug, Clone)]
pub struct StaffUser(pub CurrentUser);

/// A logged-in superuser.
#[derive(Debug, Clone)]
pub struct Superuser(pub CurrentUser);

/// Where to come back to after logging in: the path of a GET, nothing for other methods.
fn next_after_login(req: &HttpRequest) -> Option<String> {
    if req.method() != actix_web::http::Method::GET {
        return None;
    }
    let uri = req.uri();
    Some(
        uri.path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| uri.path().to_owned()),
    )
}

pub async fn current_user(req: &HttpRequest) -> Result<CurrentUser, AppError> {
    current_user_and_file(req, None)
        .await
        .map(|(current, _)| current)
}

/// The logged-in user and, for a download, the file `id` with whether they are one of its
/// readers: from the in-process cache when it holds all of them at the current version
/// (`db::read_cache`), otherwise read together in one trip to the blocking pool.
pub async fn current_user_and_file(
    req: &HttpRequest,
    file: Option<FileId>,
) -> Result<(CurrentUser, Option<Readable>), AppError> {
    let login_required = || AppError::LoginRequired {
        next: next_after_login(req),
    };
    let session = TypedSession::from_request(req);
    let Some(identity) = session.identity() else {
        return Err(login_required());
    };
    if identity.is_expired() {
        session.log_out();
        return Err(login_required());
    }
    // An id that does not parse names no user, like an unknown one.
    let Ok(user_id) = UserId::parse(&identity.user_id) else {
        session.log_out();
        return Err(login_required());
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal("application state is missing".into()))?;
    let cache = state.db.cache();
    let version = cache.version();
    let cached = version.and_then(|v| {
        let reads = cache.session(v, &identity.session_id, &user_id)?;
        let found = match &file {
            Some(id) => cache.readable(v, id, &user_id)?,
            None => None,
        };
        Some((reads, found))
    });
    let (reads, found) = match cached {
        Some(hit) => hit,
        None => {
            let sid = identity.session_id.clone();
            let (id, wanted) = (user_id.clone(), file.clone());
            let (ended, user, found) = state
                .db
                .read(move |c| {
                    let ended = EndedSession::is_ended(c, &sid)?;
                    let user = User::find_by_id(c, &id)?;
                    let found = match &wanted {
                        Some(file) => FileRow::find_for_reader(c, file, &id)?,
                        None => None,
                    };
                    Ok((ended, user, found))
                })
                .await?;
            let reads = SessionReads {
                ended,
                user: user.map(Rc::new),
            };
            let found = found.map(Rc::new);
            if let Some(v) = version {
                let readable = file.as_ref().map(|id| (id, &found));
                cache.keep(v, &identity.session_id, &user_id, &reads, readable);
            }
            (reads, found)
        }
    };
    match reads.user {
        Some(user) if !reads.ended && user.is_active && user.session_epoch == identity.epoch => {
            Ok((
                CurrentUser {
                    csrf_token: session.csrf_token(),
                    user,
                    path: req.path().to_owned(),
                },
                found,
            ))
        }
        _ => {
            session.log_out();
            Err(login_required())
        }
    }
}

async fn with_role(req: &HttpRequest, role: Role) -> Result<CurrentUser, AppError> {
    let current = current_user(req).await?;
    if current.user.role() >= role {
        Ok(current)
    } else {
        Err(AppError::Forbidden)
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { current_user(&req).await })
    }
}

impl FromRequest for StaffUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { with_role(&req, Role::Staff).await.map(StaffUser) })
    }
}

impl FromRequest for Superuser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { with_role(&req, Role::Superuser).await.map(Superuser) })
    }
}
