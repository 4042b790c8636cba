//! What the owner and readers pickers ask as one types: active usernames containing the
//! text. Staff only, like the pages that use it; without JavaScript the pickers are plain
//! text fields and this is never asked.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::auth::extractors::StaffUser;
use crate::db::models::user::User;
use crate::error::AppError;
use crate::state::AppState;

/// Enough to pick from; typing more narrows it.
const MATCHES: i64 = 20;
/// Longer than any username: nothing could match.
const MAX_QUERY: usize = 200;

#[derive(Deserialize)]
pub struct NameQuery {
    #[serde(default)]
    q: String,
}

#[derive(Serialize)]
struct Names {
    users: Vec<String>,
}

pub async fn usernames(
    StaffUser(_): StaffUser,
    query: web::Query<NameQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner().q.trim().to_owned();
    let users = if q.is_empty() || q.len() > MAX_QUERY {
        Vec::new()
    } else {
        state
            .db
            .read(move |c| User::active_names_matching(c, &q, MATCHES))
            .await?
            .into_iter()
            .map(|name| name.into_string())
            .collect()
    };
    Ok(HttpResponse::Ok().json(Names { users }))
}
