//! `/account/tokens`: every logged-in user makes and revokes their own API tokens (README:
//! "Scripting"). A new token is shown once, on the page the form leads to, and never again;
//! only its digest is stored. A user sees and revokes only their own tokens.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::auth::extractors::CurrentUser;
use crate::auth::session::TypedSession;
use crate::db::models::api_token::{TokenRow, audit_detail as token_detail};
use crate::display::ShownTime;
use crate::display::filters; // `shown`, for the template below (src/display.rs)
use crate::domain::{TokenExpiry, TokenId, token_name};
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::routes::see_other;
use crate::state::AppState;

/// The lifetimes the form offers, the default first.
const EXPIRY_CHOICES: [(&str, &str); 4] = [
    ("90d", "90 days"),
    ("30d", "30 days"),
    ("365d", "1 year"),
    ("never", "Never"),
];

/// A token as the page lists it.
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created: ShownTime,
    pub last_used: Option<ShownTime>,
    pub expires: Option<ShownTime>,
    pub state: &'static str,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "account_tokens.html")]
struct TokensPage {
    nav: Option<Nav>,
    flash: Option<String>,
    /// The token just made, shown this once.
    new_token: Option<String>,
    tokens: Vec<TokenView>,
    expiries: [(&'static str, &'static str); 4],
}

pub async fn page(
    current: CurrentUser,
    session: TypedSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user = current.user.id.clone();
    let listed = state
        .db
        .read(move |c| TokenRow::list(c, Some(&user)))
        .await?;
    let now = Utc::now().naive_utc();
    let tokens = listed
        .into_iter()
        .map(|t| {
            let token = t.token;
            let token_state = token.state(now);
            TokenView {
                id: token.id.to_string(),
                name: token.name.clone(),
                created: ShownTime::new(token.created_at),
                last_used: token.last_used_at.map(ShownTime::new),
                expires: token.expires_at.map(ShownTime::new),
                state: token_state.as_str(),
                active: token_state == crate::db::models::api_token::TokenState::Active,
            }
        })
        .collect();
    let page = TokensPage {
        nav: Some(Nav::from(&current)),
        flash: session.take_flash(),
        new_token: session.take_new_token(),
        tokens,
        expiries: EXPIRY_CHOICES,
    };
    let mut response = html::page(&page)?;
    // The page may hold a token: never kept by any cache (pages are `no-store` anyway).
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    expires: Option<String>,
}

/// `POST /account/tokens`: makes a token and shows it once on the list.
pub async fn create(
    req: HttpRequest,
    current: CurrentUser,
    session: TypedSession,
    form: web::Form<CreateForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let name = token_name(&form.name);
    if name.is_empty() {
        session.set_flash("Give the token a name, to tell it apart later.");
        return Ok(see_other("/account/tokens"));
    }
    let expiry = match form.expires.as_deref().filter(|e| !e.is_empty()) {
        None => TokenExpiry::DEFAULT,
        Some(text) => TokenExpiry::parse(text).map_err(|e| AppError::BadRequest(e.to_string()))?,
    };
    let user = current.user.id.clone();
    let stored_name = name.clone();
    let issued = state
        .db
        .run_uncached(move |c| {
            TokenRow::issue(c, &user, &stored_name, expiry, Utc::now().naive_utc())
        })
        .await?;
    tracing::info!(token = %issued.id, user = %current.user.username, "API token created");
    state
        .record_change(&req, "token_created", |e| {
            e.user_id = Some(current.user.id.to_string());
            e.username = Some(current.user.username.to_string());
            e.detail = Some(token_detail(&issued.id, &name, &current.user.username));
        })
        .await;
    session.set_new_token(issued.token.expose());
    Ok(see_other("/account/tokens"))
}

/// `POST /account/tokens/{id}/revoke`: one of the user's own tokens; anyone else's is 404.
pub async fn revoke(
    req: HttpRequest,
    current: CurrentUser,
    session: TypedSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = TokenId::parse(&id).map_err(|_| AppError::NotFound)?;
    let lookup = id.clone();
    let owner = current.user.id.clone();
    let revoked = state
        .db
        .run_uncached(move |c| {
            let Some(found) = TokenRow::find(c, &lookup)? else {
                return Ok(None);
            };
            if found.token.user_id != owner {
                return Ok(None);
            }
            let changed = TokenRow::revoke(c, &lookup, Utc::now().naive_utc())?;
            Ok(Some((found, changed)))
        })
        .await?;
    let Some((found, changed)) = revoked else {
        return Err(AppError::NotFound);
    };
    if changed {
        tracing::info!(token = %id, user = %current.user.username, "API token revoked");
        state
            .record_change(&req, "token_revoked", |e| {
                e.user_id = Some(current.user.id.to_string());
                e.username = Some(current.user.username.to_string());
                e.detail = Some(token_detail(&id, &found.token.name, &found.username));
            })
            .await;
    }
    session.set_flash(format!("Token “{}” revoked.", found.token.name));
    Ok(see_other("/account/tokens"))
}
