//! The stylesheet and scripts, compiled into the binary so a deployment is one file.

use actix_web::{HttpResponse, web};

use crate::error::AppError;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/upload.js"),
    ),
    (
        "share.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/share.js"),
    ),
    (
        "lists.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/lists.js"),
    ),
    (
        "time.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/time.js"),
    ),
    (
        "pickers.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/pickers.js"),
    ),
];

pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(*body))
}
