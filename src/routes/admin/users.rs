//! Superusers manage users: list (searched, paged), create, change role and active state, set
//! a password; deleting one is `user_delete`.
//! A superuser cannot take away their own superuser role or deactivate themselves here, so
//! nobody locks the last way in by a slip of the mouse (the CLI can still do both).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::extractors::{CurrentUser, Superuser};
use crate::auth::password::{self, NewPassword};
use crate::auth::session::TypedSession;
use crate::db::models::user::{NewUser, User, UserError};
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::{Role, UserId, Username};
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::routes::{parse_user_id, see_other};
use crate::state::AppState;

/// A user as the admin pages show one.
pub struct UserView {
    pub id: UserId,
    pub username: Username,
    pub role: &'static str,
    pub is_active: bool,
    pub last_login: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            username: user.username.clone(),
            role: user.role().as_str(),
            is_active: user.is_active,
            last_login: user
                .last_login_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "never".to_owned()),
        }
    }
}

/// Users on one page of the list.
const USERS_PER_PAGE: i64 = 50;

/// What is wrong with each field of the create form, shown beside it.
#[derive(Debug, Default)]
pub struct CreateErrors {
    username: Option<String>,
    password: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    nav: Option<Nav>,
    flash: Option<String>,
    users: Vec<UserView>,
    q: String,
    page: i64,
    pages: i64,
    total: i64,
    prev: Option<String>,
    next: Option<String>,
    errors: CreateErrors,
    /// What the create form had, when it comes back with an error.
    new_username: String,
    new_role: &'static str,
}

/// The list's search and page, as the query string has them.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<String>,
}

impl ListQuery {
    /// A page that is not a positive number is the first, like one past the end is the last.
    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.trim().parse::<i64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
            // Past any list's last page (which is shown instead), and no overflow in the
            // offset it becomes.
            .min(i64::MAX / USERS_PER_PAGE)
    }

    fn url(&self, page: i64) -> String {
        let mut url = format!("/admin/users?page={page}");
        let q = self.q.trim();
        if !q.is_empty() {
            url.push_str("&q=");
            url.push_str(
                &percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        url
    }
}

async fn list_page(
    state: &AppState,
    current: &CurrentUser,
    query: &ListQuery,
    flash: Option<String>,
    errors: CreateErrors,
    new_username: String,
    new_role: Role,
) -> Result<ListPage, AppError> {
    let search = query.q.trim().to_owned();
    let wanted = query.page();
    let (users, total, page) = state
        .db
        .read(move |c| {
            let (mut users, total) =
                User::search_page(c, &search, (wanted - 1) * USERS_PER_PAGE, USERS_PER_PAGE)?;
            let last = ((total + USERS_PER_PAGE - 1) / USERS_PER_PAGE).max(1);
            let page = wanted.min(last);
            if page != wanted {
                users =
                    User::search_page(c, &search, (page - 1) * USERS_PER_PAGE, USERS_PER_PAGE)?.0;
            }
            Ok((users, total, page))
        })
        .await?;
    let pages = ((total + USERS_PER_PAGE - 1) / USERS_PER_PAGE).max(1);
    Ok(ListPage {
        nav: Some(Nav::from(current)),
        flash,
        users: users.iter().map(UserView::from).collect(),
        q: query.q.trim().to_owned(),
        page,
        pages,
        total,
        prev: (page > 1).then(|| query.url(page - 1)),
        next: (page < pages).then(|| query.url(page + 1)),
        errors,
        new_username,
        new_role: new_role.as_str(),
    })
}

pub async fn list(
    Superuser(current): Superuser,
    session: TypedSession,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let page = list_page(
        &state,
        &current,
        &query,
        session.take_flash(),
        CreateErrors::default(),
        String::new(),
        Role::User,
    )
    .await?;
    html::page(&page)
}

#[derive(Deserialize)]
pub struct CreateForm {
    username: String,
    password: String,
    role: String,
}

pub async fn create(
    req: actix_web::HttpRequest,
    Superuser(current): Superuser,
    session: TypedSession,
    state: web::Data<AppState>,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let role = Role::parse(&form.role).unwrap_or(Role::User);
    let refuse = |errors: CreateErrors| {
        let state = state.clone();
        let current = current.clone();
        let username = form.username.trim().to_owned();
        async move {
            let query = ListQuery::default();
            let page = list_page(&state, &current, &query, None, errors, username, role).await?;
            html::render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    };
    let username = Username::parse(form.username.trim());
    let password = NewPassword::parse(form.password);
    let (username, password) = match (username, password) {
        (Ok(u), Ok(p)) => (u, p),
        (u, p) => {
            return refuse(CreateErrors {
                username: u.err().map(|e| sentence(&e.to_string())),
                password: p.err().map(|e| sentence(&e.to_string())),
            })
            .await;
        }
    };
    let name = username.clone();
    let hash = match password::hash_in_turn(password).await {
        Ok(hash) => hash,
        Err(e) => {
            return refuse(CreateErrors {
                password: Some(sentence(&e.to_string())),
                ..CreateErrors::default()
            })
            .await;
        }
    };
    let created = state
        .db
        .run(move |c| {
            match User::create(
                c,
                NewUser {
                    username: name,
                    password_hash: hash,
                    role,
                },
            ) {
                Ok(user) => Ok(Ok(user.id)),
                Err(UserError::Duplicate(u)) => Ok(Err(format!("A user named “{u}” exists."))),
                Err(UserError::Db(e)) => Err(e),
                Err(other) => Ok(Err(other.to_string())),
            }
        })
        .await?;
    let new_id = match created {
        Ok(id) => id,
        Err(message) => {
            return refuse(CreateErrors {
                username: Some(message),
                ..CreateErrors::default()
            })
            .await;
        }
    };
    state
        .record_change(&req, "user_created", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.detail = Some(format!("“{username}” ({new_id}), {}", role.as_str()));
        })
        .await;
    session.set_flash(format!("Created {} “{username}”.", role.as_str()));
    Ok(see_other("/admin/users"))
}

/// An error message as a sentence on its own: capital first letter, full stop.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct EditPage {
    nav: Option<Nav>,
    flash: Option<String>,
    error: Option<String>,
    user: UserView,
    is_self: bool,
    /// What is wrong with the new password, shown beside its field.
    password_error: Option<String>,
}

pub(super) async fn find(state: &AppState, id: &UserId) -> Result<User, AppError> {
    let id = id.clone();
    state
        .db
        .read(move |c| User::find_by_id(c, &id))
        .await?
        .ok_or(AppError::NotFound)
}

async fn edit_page(
    state: &AppState,
    current: &CurrentUser,
    id: &UserId,
    flash: Option<String>,
    error: Option<String>,
) -> Result<EditPage, AppError> {
    let user = find(state, id).await?;
    Ok(EditPage {
        nav: Some(Nav::from(current)),
        flash,
        error,
        password_error: None,
        is_self: user.id == current.user.id,
        user: UserView::from(&user),
    })
}

/// The edit page again with what was wrong, as 422: nothing was changed.
async fn edit_refused(
    state: &AppState,
    current: &CurrentUser,
    id: &UserId,
    message: String,
) -> Result<HttpResponse, AppError> {
    let page = edit_page(state, current, id, None, Some(message)).await?;
    html::render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn edit(
    Superuser(current): Superuser,
    session: TypedSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    // Taken before the id is looked at: every 404 here uses up the flash alike.
    let flash = session.take_flash();
    let page = edit_page(&state, &current, &parse_user_id(&id)?, flash, None).await?;
    html::page(&page)
}

#[derive(Deserialize)]
pub struct UpdateForm {
    role: String,
    /// A checkbox: present when ticked.
    active: Option<String>,
}

pub async fn update(
    req: actix_web::HttpRequest,
    Superuser(current): Superuser,
    session: TypedSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<UpdateForm>,
) -> Result<HttpResponse, AppError> {
    let id = parse_user_id(&id)?;
    let user = find(&state, &id).await?;
    let Some(role) = Role::parse(&form.role) else {
        return edit_refused(&state, &current, &id, "Choose a role.".into()).await;
    };
    let active = form.active.is_some();
    if user.id == current.user.id && (role != Role::Superuser || !active) {
        let message = "You cannot take away your own superuser role or deactivate yourself; \
                       another superuser can.";
        return edit_refused(&state, &current, &id, message.into()).await;
    }
    let user_id = user.id.clone();
    let changed = state
        .db
        .run(
            move |c| match User::set_role_and_active(c, &user_id, role, active) {
                Ok(()) => Ok(Ok(())),
                Err(UserError::Db(e)) => Err(e),
                Err(other) => Ok(Err(other)),
            },
        )
        .await?;
    match changed {
        Ok(()) => {}
        Err(UserError::LastSuperuser(_)) => {
            let message = "This is the last active superuser: make another user a superuser \
                           first, or nobody could manage users.";
            return edit_refused(&state, &current, &id, message.into()).await;
        }
        Err(other) => return Err(AppError::Internal(other.to_string())),
    }
    let state_word = if active { "active" } else { "inactive" };
    let was = if user.is_active { "active" } else { "inactive" };
    state
        .record_change(&req, "user_changed", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.detail = Some(format!(
                "“{}”: role {} → {}, {was} → {state_word}",
                user.username,
                user.role().as_str(),
                role.as_str()
            ));
        })
        .await;
    session.set_flash(format!(
        "“{}” is now {} and {state_word}.",
        user.username,
        role.as_str()
    ));
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn set_password(
    req: actix_web::HttpRequest,
    Superuser(current): Superuser,
    session: TypedSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let id = parse_user_id(&id)?;
    let user = find(&state, &id).await?;
    let password = match NewPassword::parse(form.into_inner().password) {
        Ok(p) => p,
        Err(e) => {
            let mut page = edit_page(&state, &current, &id, None, None).await?;
            page.password_error = Some(sentence(&e.to_string()));
            return html::render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let username = user.username.clone();
    let hash = match password::hash_in_turn(password).await {
        Ok(hash) => hash,
        Err(e) => return edit_refused(&state, &current, &id, e.to_string()).await,
    };
    let changed = state
        .db
        .run(move |c| match User::set_password(c, &username, hash) {
            Ok(()) => Ok(Ok(())),
            Err(UserError::Db(e)) => Err(e),
            Err(other) => Ok(Err(other.to_string())),
        })
        .await?;
    if let Err(message) = changed {
        return edit_refused(&state, &current, &id, message).await;
    }
    state
        .record_change(&req, "password_set", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.detail = Some(format!("for “{}”", user.username));
        })
        .await;
    if user.id == current.user.id {
        // Their own sessions ended with the change, this one too: log in again.
        return Ok(see_other("/login"));
    }
    session.set_flash(format!(
        "Password of “{}” changed; their sessions have ended.",
        user.username
    ));
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}
