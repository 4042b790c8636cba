//! Logging in and out.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::auth::password;
use crate::auth::session::TypedSession;
use crate::client_addr::client_address;
use crate::db::models::session::EndedSession;
use crate::db::models::user::User;
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::Username;
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::logging::Escaped;
use crate::routes::see_other;
use crate::state::AppState;

const DEFAULT_NEXT: &str = "/files";
const FIRST_SUPERUSER_LOGIN: &str = "/admin/";
/// One message for every failure, so the form never tells which usernames exist.
const GENERIC_ERROR: &str = "Please enter a correct username and password.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf_token: String,
    next: String,
    username: String,
    error: Option<String>,
}

/// `next` is followed only when it is a path on this site; anything else becomes `/files`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => DEFAULT_NEXT.to_owned(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn form(
    session: TypedSession,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    html::page(&LoginPage {
        nav: None,
        csrf_token: session.csrf_token(),
        next: safe_next(query.next.as_deref()),
        username: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn submit(
    req: HttpRequest,
    session: TypedSession,
    form: web::Form<LoginForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let LoginForm {
        username: typed_name,
        password,
        next,
    } = form.into_inner();
    let next = safe_next(next.as_deref());
    // Bounded, so a flood of huge names cannot grow the throttle's memory.
    let throttle_name: String = typed_name.chars().take(Username::MAX_LEN + 1).collect();
    let address = client_address(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.settings.server.trusted_proxies,
    );
    let throttle = state.throttle;
    let again = |status: StatusCode, error: String| {
        html::render(
            status,
            &LoginPage {
                nav: None,
                csrf_token: session.csrf_token(),
                next: next.clone(),
                username: throttle_name.clone(),
                error: Some(error),
            },
        )
    };

    let name = throttle_name.clone();
    let attempt = state
        .db
        .run(move |c| throttle.begin_attempt(c, &name, address, Utc::now()))
        .await?;
    let attempt = match attempt {
        Ok(attempt) => attempt,
        // Not recorded: no password was checked, and a flood of refused attempts would
        // otherwise fill the audit log (the throttle already has what it needs).
        Err(wait) => return too_many(again, wait),
    };
    let user = match Username::parse(&typed_name) {
        Ok(name) => {
            state
                .db
                .read(move |c| User::find_by_username(c, &name))
                .await?
        }
        Err(_) => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // Unknown users are verified against a dummy hash: same work, same answer, same time.
    let verified = password::verify_in_turn(password, stored)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;

    match user {
        Some(user) if verified && user.is_active => {
            let name = throttle_name.clone();
            state
                .db
                .run(move |c| throttle.succeeded(c, &attempt, &name))
                .await?;
            session
                .log_in(&user)
                .map_err(|e| AppError::Internal(format!("cannot store the session: {e}")))?;
            let id = user.id.clone();
            state.db.run(move |c| User::record_login(c, &id)).await?;
            tracing::info!(username = %user.username, "logged in");
            // A superuser's first login, sent nowhere in particular, starts where the site is
            // set up: the admin, whose empty state points to Upload and Users.
            let next = if user.is_superuser && user.last_login_at.is_none() && next == DEFAULT_NEXT
            {
                FIRST_SUPERUSER_LOGIN.to_owned()
            } else {
                next
            };
            state
                .record_change(&req, "login", |e| {
                    e.user_id = Some(user.id.to_string());
                    e.username = Some(user.username.to_string());
                })
                .await;
            Ok(see_other(&next))
        }
        _ => {
            // The failure was recorded before the password was checked (`begin_attempt`).
            let shown = address.map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(username = %Escaped(&throttle_name), address = %shown, "failed login");
            // The name tried, never the password.
            state
                .record_change(&req, "login_failed", |e| {
                    e.username = Some(throttle_name.clone());
                })
                .await;
            again(StatusCode::OK, GENERIC_ERROR.to_owned())
        }
    }
}

/// The answer to an attempt over a limit: the form with a message, 429 and `Retry-After`.
fn too_many(
    again: impl Fn(StatusCode, String) -> Result<HttpResponse, AppError>,
    wait: std::time::Duration,
) -> Result<HttpResponse, AppError> {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let mut response = again(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "Too many failed login attempts. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        ),
    )?;
    if let Ok(value) = wait.as_secs().max(1).to_string().parse() {
        response
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, value);
    }
    Ok(response)
}

/// Ends the session in the browser and, by its id, everywhere else a copy of the cookie exists.
pub async fn logout(
    session: TypedSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Some(identity) = session.identity() {
        state
            .db
            .run(move |c| EndedSession::end(c, &identity.session_id, identity.expires_at()))
            .await?;
    }
    session.log_out();
    Ok(see_other("/login"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_accepts_only_same_site_paths() {
        assert_eq!(safe_next(Some("/admin/files?q=a")), "/admin/files?q=a");
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "",
            "/a\nb",
            "/a b",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad)), DEFAULT_NEXT, "{bad:?}");
        }
        assert_eq!(safe_next(None), DEFAULT_NEXT);
    }
}
