//! `/account`: every logged-in user sees their own details and changes their own password.
//!
//! The current password is asked for, so a session left open on someone else's screen cannot
//! take the account over; a wrong one counts against the name like a failed login (the same
//! throttle), so the form is no way around the login's limits. A change ends every other
//! session of the user at once (the epoch moves on) and renews this one: a fresh session id
//! and CSRF token, so whoever held a copy of the old cookie holds nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::auth::extractors::CurrentUser;
use crate::auth::password::{self, NewPassword};
use crate::auth::session::TypedSession;
use crate::client_addr::client_address;
use crate::db::models::user::User;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::routes::admin::users::sentence;
use crate::routes::see_other;
use crate::state::AppState;

/// What is wrong with each field of the password form, shown beside it.
#[derive(Debug, Default)]
struct PasswordErrors {
    current: Option<String>,
    new: Option<String>,
    again: Option<String>,
}

impl PasswordErrors {
    fn any(&self) -> bool {
        self.current.is_some() || self.new.is_some() || self.again.is_some()
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Option<Nav>,
    flash: Option<String>,
    username: String,
    role: &'static str,
    role_words: &'static str,
    created_at: String,
    created_at_iso: String,
    last_login: String,
    errors: PasswordErrors,
}

fn role_words(user: &User) -> &'static str {
    match user.role() {
        crate::domain::Role::Superuser => "You manage files, share links, users and the audit log.",
        crate::domain::Role::Staff => "You upload and manage files and share links.",
        crate::domain::Role::User => "You download the files whose access rules include you.",
    }
}

fn account_page(
    current: &CurrentUser,
    flash: Option<String>,
    errors: PasswordErrors,
) -> AccountPage {
    let user = &current.user;
    AccountPage {
        nav: Some(Nav::from(current)),
        flash,
        username: user.username.to_string(),
        role: user.role().as_str(),
        role_words: role_words(user),
        created_at: user.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        created_at_iso: user.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        last_login: user
            .last_login_at
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "never".to_owned()),
        errors,
    }
}

pub async fn page(current: CurrentUser, session: TypedSession) -> Result<HttpResponse, AppError> {
    html::page(&account_page(
        &current,
        session.take_flash(),
        PasswordErrors::default(),
    ))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_again: String,
}

pub async fn change_password(
    req: HttpRequest,
    current: CurrentUser,
    session: TypedSession,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let PasswordForm {
        current_password,
        new_password,
        new_password_again,
    } = form.into_inner();
    let refused = |status: StatusCode, errors: PasswordErrors| {
        html::render(status, &account_page(&current, None, errors))
    };

    // The new password first: a typo there costs no attempt against the throttle.
    let mut errors = PasswordErrors::default();
    let parsed = match NewPassword::parse(new_password.clone()) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.new = Some(sentence(&e.to_string()));
            None
        }
    };
    if new_password != new_password_again {
        errors.again = Some("The two new passwords differ.".to_owned());
    }
    if current_password.is_empty() {
        errors.current = Some("Enter your current password.".to_owned());
    }
    let new = match parsed {
        Some(new) if !errors.any() => new,
        _ => return refused(StatusCode::UNPROCESSABLE_ENTITY, errors),
    };

    let username = current.user.username.clone();
    let name = username.to_string();
    let address = client_address(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.settings.server.trusted_proxies,
    );
    let throttle = state.throttle;
    let attempt = state
        .db
        .run(move |c| throttle.begin_attempt(c, &name, address, Utc::now()))
        .await?;
    let attempt = match attempt {
        Ok(attempt) => attempt,
        Err(wait) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            let errors = PasswordErrors {
                current: Some(format!(
                    "Too many wrong passwords. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )),
                ..PasswordErrors::default()
            };
            let mut response = refused(StatusCode::TOO_MANY_REQUESTS, errors)?;
            if let Ok(value) = wait.as_secs().max(1).to_string().parse() {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
    };
    let verified =
        password::verify_in_turn(current_password, Some(current.user.password_hash.clone()))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    if !verified {
        // The failure stays counted (`begin_attempt` recorded it).
        state
            .record_change(&req, "login_failed", |e| {
                e.user_id = Some(current.user.id.to_string());
                e.username = Some(username.to_string());
                e.detail = Some("wrong current password at /account".to_owned());
            })
            .await;
        let errors = PasswordErrors {
            current: Some("That is not your current password.".to_owned()),
            ..PasswordErrors::default()
        };
        return refused(StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    let hash = password::hash_in_turn(new)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let (name, target) = (username.to_string(), username.clone());
    let renewed = state
        .db
        .run(move |c| {
            throttle.succeeded(c, &attempt, &name)?;
            match User::set_password(c, &target, hash) {
                Ok(()) => {}
                Err(crate::db::models::user::UserError::Db(e)) => return Err(e),
                // Deleted between the check and now: nothing to renew.
                Err(_) => return Ok(None),
            }
            User::find_by_username(c, &target)
        })
        .await?;
    let Some(user) = renewed else {
        session.log_out();
        return Ok(see_other("/login"));
    };
    // Every session of the user ended with the new epoch; this one starts afresh with it.
    session
        .log_in(&user)
        .map_err(|e| AppError::Internal(format!("cannot store the session: {e}")))?;
    state
        .record_change(&req, "password_changed", |e| {
            e.user_id = Some(user.id.to_string());
            e.username = Some(user.username.to_string());
            e.detail = Some("their own, at /account; their other sessions ended".to_owned());
        })
        .await;
    session.set_flash("Your password was changed. Your other sessions have ended.");
    Ok(see_other("/account"))
}
