//! Superusers delete a user: a confirmation page that says what goes with them, then the
//! delete (`db::models::user_removal`, which says what becomes of their files and links).
//! Nobody deletes themselves here, and the last active superuser is never deleted.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::extractors::{CurrentUser, Superuser};
use crate::auth::session::TypedSession;
use crate::db::models::user::User;
use crate::db::models::user_removal::{self, Holdings, RemovalError};
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::{UserId, Username};
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::routes::admin::users::{UserView, find, sentence};
use crate::routes::{parse_user_id, see_other};
use crate::state::AppState;

/// Names the reassignment field suggests (active staff first, by name): a hint, not a limit,
/// since any active username may be typed.
const SUGGESTED_HEIRS: usize = 200;

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct ConfirmPage {
    nav: Option<Nav>,
    user: UserView,
    holdings: Holdings,
    is_self: bool,
    is_last_superuser: bool,
    suggestions: Vec<Username>,
    reassign_to: String,
    /// Beside the reassignment field.
    reassign_error: Option<String>,
    /// Above the form: why the delete cannot happen at all.
    error: Option<String>,
}

async fn confirm_page(
    state: &AppState,
    current: &CurrentUser,
    id: &UserId,
    reassign_to: String,
    reassign_error: Option<String>,
    error: Option<String>,
) -> Result<ConfirmPage, AppError> {
    let user = find(state, id).await?;
    let user_id = user.id.clone();
    let (holdings, superusers, active) = state
        .db
        .read(move |c| {
            Ok((
                user_removal::holdings(c, &user_id)?,
                User::count_active_superusers(c)?,
                User::list_active(c)?,
            ))
        })
        .await?;
    let mut suggestions: Vec<&User> = active.iter().filter(|u| u.id != user.id).collect();
    // Staff first: files usually go to whoever looks after them.
    suggestions.sort_by_key(|u| !u.is_staff_member());
    let suggestions = suggestions
        .into_iter()
        .take(SUGGESTED_HEIRS)
        .map(|u| u.username.clone())
        .collect();
    Ok(ConfirmPage {
        nav: Some(Nav::from(current)),
        is_self: user.id == current.user.id,
        is_last_superuser: user.is_superuser && user.is_active && superusers <= 1,
        user: UserView::from(&user),
        holdings,
        suggestions,
        reassign_to,
        reassign_error,
        error,
    })
}

pub async fn confirm(
    Superuser(current): Superuser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_user_id(&id)?;
    let page = confirm_page(&state, &current, &id, String::new(), None, None).await?;
    html::page(&page)
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    reassign_to: String,
}

pub async fn delete(
    req: HttpRequest,
    Superuser(current): Superuser,
    session: TypedSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, AppError> {
    let id = parse_user_id(&id)?;
    let user = find(&state, &id).await?;
    let typed = form.into_inner().reassign_to.trim().to_owned();
    let refused = |reassign_error: Option<String>, error: Option<String>| {
        let (state, current, id, typed) =
            (state.clone(), current.clone(), id.clone(), typed.clone());
        async move {
            let page = confirm_page(&state, &current, &id, typed, reassign_error, error).await?;
            html::render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    };
    if user.id == current.user.id {
        let message = "You cannot delete your own account; another superuser can.";
        return refused(None, Some(message.to_owned())).await;
    }
    let heir = if typed.is_empty() {
        None
    } else {
        match Username::parse(&typed) {
            Ok(name) => Some(name),
            Err(e) => return refused(Some(sentence(&e.to_string())), None).await,
        }
    };
    let username = user.username.clone();
    let wanted_heir = heir.clone();
    let outcome = state
        .db
        .run(
            move |c| match user_removal::delete(c, &username, wanted_heir.as_ref()) {
                Ok(done) => Ok(Ok(done)),
                Err(RemovalError::Db(e)) => Err(e),
                Err(other) => Ok(Err(other)),
            },
        )
        .await?;
    let (deleted, removed) = match outcome {
        Ok(done) => done,
        // Someone else deleted them meanwhile.
        Err(RemovalError::NotFound(_)) => return Err(AppError::NotFound),
        Err(e @ RemovalError::LastSuperuser(_)) => {
            return refused(None, Some(sentence(&e.to_string()))).await;
        }
        Err(e) => return refused(Some(sentence(&e.to_string())), None).await,
    };
    let heir_words = match &heir {
        Some(heir) => format!("{} file(s) to “{heir}”", removed.files_reassigned),
        None => "no files".to_owned(),
    };
    state
        .record_change(&req, "user_deleted", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.detail = Some(format!(
                "“{}” ({}), {}: {heir_words}, {} share link(s) removed",
                deleted.username,
                deleted.id,
                deleted.role().as_str(),
                removed.links_removed
            ));
        })
        .await;
    let files = match (&heir, removed.files_reassigned) {
        (Some(heir), n) if n > 0 => format!(
            " {n} file{} now belong{} to “{heir}”.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" }
        ),
        _ => String::new(),
    };
    let links = match removed.links_removed {
        0 => String::new(),
        1 => " 1 share link was removed.".to_owned(),
        n => format!(" {n} share links were removed."),
    };
    session.set_flash(format!(
        "Deleted “{}”; their sessions have ended.{files}{links}",
        deleted.username
    ));
    Ok(see_other("/admin/users"))
}
