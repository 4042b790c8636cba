//! The route table, in one function. Handlers parse input into typed values and call domain
//! code; they live one area per file.

mod admin;
mod assets;
mod download;
mod files;
mod health;
mod login;

use actix_web::{HttpResponse, web};

use crate::error::AppError;

/// Every path is a resource, so a known path with the wrong method answers 405, not 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").get(root))
        .service(web::resource("/healthz").get(health::healthz))
        .service(web::resource("/static/{name}").get(assets::asset))
        .service(web::resource("/login").get(login::form).post(login::submit))
        .service(web::resource("/logout").post(login::logout))
        .service(web::resource("/files").get(files::list))
        // HEAD runs the same handler; actix-web sends the headers without the body.
        .service(
            web::resource("/files/{id}/download")
                .get(download::by_id)
                .head(download::by_id),
        )
        .service(
            web::resource("/private-media/{key:.*}")
                .get(download::by_path)
                .head(download::by_path),
        )
        .service(web::resource("/admin").get(admin::redirect_to_index))
        .service(web::resource("/admin/").get(admin::index))
        .service(
            web::resource("/admin/files")
                .get(admin::files::list)
                .post(admin::upload::create),
        )
        .service(web::resource("/admin/files/new").get(admin::upload::new))
        .service(
            web::resource("/admin/files/{id}")
                .get(admin::files::detail)
                .post(admin::files::update),
        )
        .service(
            web::resource("/admin/files/{id}/delete")
                .get(admin::files::confirm_delete)
                .post(admin::files::delete),
        )
        .service(
            web::resource("/admin/users")
                .get(admin::users::list)
                .post(admin::users::create),
        )
        .service(
            web::resource("/admin/users/{id}")
                .get(admin::users::edit)
                .post(admin::users::update),
        )
        .service(web::resource("/admin/users/{id}/password").post(admin::users::set_password));
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
