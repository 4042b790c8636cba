//! Who calls the JSON API: `Authorization: Bearer TOKEN`, and nothing else (the session cookie
//! is taken off every `/api/` request before anything reads it, `routes::api::guard`). A token
//! opens the API while it is neither revoked nor expired and its user is active; it has that
//! user's rights, no more. Bad tokens are counted and throttled (`token_throttle`), and no
//! token's text is ever logged: only its digest is looked up and counted.

use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;

use crate::client_addr::client_address;
use crate::db::models::api_token::{TokenRow, TokenState};
use crate::db::models::user::User;
use crate::domain::{ApiToken, Role, TokenId};
use crate::error::{ApiError, AppError};
use crate::state::AppState;

/// An active user, as a valid token of theirs says.
#[derive(Debug, Clone)]
pub struct ApiUser {
    pub user: User,
    pub token_id: TokenId,
}

/// An API caller who is staff (superusers included).
#[derive(Debug, Clone)]
pub struct ApiStaff(pub ApiUser);

/// The token text of an `Authorization: Bearer …` header, if the request has one.
fn presented(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::TokenMissing)?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::TokenInvalid("the token is not one this site issues"))?;
    let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic…): as if no token came.
        return Err(ApiError::TokenMissing);
    }
    Ok(rest.trim().to_owned())
}

pub async fn authenticate(req: &HttpRequest) -> Result<ApiUser, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal("application state is missing".into()))?;
    let text = presented(req)?;
    let digest = ApiToken::digest_of(&text);
    let ip = client_address(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.settings.server.trusted_proxies,
    )
    .map(|c| c.ip());
    let started = Instant::now();
    let throttled = |wait: std::time::Duration| ApiError::Throttled {
        retry_after_secs: wait.as_secs().max(1),
    };
    if let Some(wait) = state.token_throttle.check_token(&digest, started) {
        return Err(throttled(wait));
    }
    // Too many bad tokens from this address: a bad one is answered 429, a good one served.
    let refuse = |why: &'static str| {
        let wait = ip.and_then(|ip| state.token_throttle.check_address(ip, started));
        state.token_throttle.failed(&digest, ip, started);
        match wait {
            Some(wait) => throttled(wait),
            None => ApiError::TokenInvalid(why),
        }
    };
    if ApiToken::parse(&text).is_none() {
        return Err(refuse("the token is not one this site issues"));
    }
    let lookup = digest.clone();
    let found = state
        .db
        .read(move |c| TokenRow::find_by_digest(c, &lookup))
        .await?;
    let Some((token, user)) = found else {
        return Err(refuse("unknown token"));
    };
    let now = Utc::now().naive_utc();
    match token.state(now) {
        TokenState::Revoked => return Err(refuse("the token was revoked")),
        TokenState::Expired => return Err(refuse("the token has expired")),
        TokenState::Active => {}
    }
    if !user.is_active {
        return Err(refuse("the token's user is deactivated"));
    }
    if token.last_used_is_stale(now) {
        let id = token.id.clone();
        // "Last used" is worth a write once a minute, not a failed request.
        if let Err(e) = state
            .db
            .run_uncached(move |c| TokenRow::touch(c, &id, now))
            .await
        {
            tracing::warn!(error = %e, token = %token.id, "writing a token's last use failed");
        }
    }
    Ok(ApiUser {
        user,
        token_id: token.id,
    })
}

impl FromRequest for ApiUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

impl FromRequest for ApiStaff {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = authenticate(&req).await?;
            if caller.user.role() >= Role::Staff {
                Ok(ApiStaff(caller))
            } else {
                Err(ApiError::App(AppError::Forbidden))
            }
        })
    }
}
