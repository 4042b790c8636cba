//! Extractors for "logged in", "staff" and "superuser". A handler that takes one of them
//! cannot run for anyone else: anonymous requests get a 303 to the login page, logged-in users
//! without the role get the 403 page.
//!
//! The session cookie says who the user was; every request checks that against the database
//! (still active, same session epoch), so a password change or deactivation ends sessions at
//! once on every instance.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::auth::session::TypedSession;
use crate::db::models::session::EndedSession;
use crate::db::models::user::User;
use crate::db::{DbConn, DbError};
use crate::domain::{Role, UserId};
use crate::error::AppError;
use crate::state::AppState;

/// A logged-in, active user, and the CSRF token their forms must carry.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub csrf_token: String,
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
    current_user_and(req, |_, _| Ok(()))
        .await
        .map(|(current, ())| current)
}

/// The logged-in user, and `then` run for them on the same database connection: a download
/// checks the session and loads its file in one trip to the blocking pool.
pub async fn current_user_and<T, F>(
    req: &HttpRequest,
    then: F,
) -> Result<(CurrentUser, T), AppError>
where
    F: FnOnce(&mut DbConn, &User) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
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
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal("application state is missing".into()))?;
    let found = state
        .db
        .run(move |c| {
            if EndedSession::is_ended(c, &identity.session_id)? {
                return Ok(None);
            }
            // An id that does not parse names no user, like an unknown one.
            let user = match UserId::parse(&identity.user_id) {
                Ok(id) => User::find_by_id(c, &id)?,
                Err(_) => None,
            };
            match user {
                Some(user) if user.is_active && user.session_epoch == identity.epoch => {
                    let extra = then(c, &user)?;
                    Ok(Some((user, extra)))
                }
                _ => Ok(None),
            }
        })
        .await?;
    match found {
        Some((user, extra)) => Ok((
            CurrentUser {
                csrf_token: session.csrf_token(),
                user,
            },
            extra,
        )),
        None => {
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
