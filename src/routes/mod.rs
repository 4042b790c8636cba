//! The route table, in one function. Handlers parse input into typed values and call domain
//! code; they live one area per file.

mod admin;
mod assets;
mod files;
mod health;
mod login;

use actix_web::{HttpResponse, web};

use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/healthz", web::get().to(health::healthz))
        .route("/static/{name}", web::get().to(assets::asset))
        .service(
            web::resource("/login")
                .route(web::get().to(login::form))
                .route(web::post().to(login::submit)),
        )
        .route("/logout", web::post().to(login::logout))
        .route("/files", web::get().to(files::list))
        .route("/admin", web::get().to(admin::redirect_to_index))
        .route("/admin/", web::get().to(admin::index));
}

async fn root() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", "/files"))
        .finish()
}

/// Anything no route matched.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}
