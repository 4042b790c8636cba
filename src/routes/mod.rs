//! The route table, in one list. Handlers parse input into typed values and call domain code;
//! they live one area per file.
//!
//! `endpoints` is the only place routes are declared: `configure` registers exactly what it
//! lists and `table` reads the same list, so the tests that walk every route (CSRF on every
//! POST, caching headers) cannot miss one.

mod account;
mod account_tokens;
mod admin;
pub mod api;
mod assets;
mod download;
mod file_list;
mod health;
mod login;
mod readable;
mod share;
mod thumbnail;

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, HttpResponse, Responder, Route, web};

use crate::domain::{FileId, UserId};
use crate::error::AppError;

/// The two download routes; their answers, errors included, are cached as downloads.
pub const DOWNLOAD_BY_ID: &str = "/files/{id}/download";
pub const DOWNLOAD_BY_PATH: &str = "/private-media/{key:.*}";
/// A share link's download: cached as a download, like the two above.
pub const DOWNLOAD_BY_LINK: &str = "/s/{token}/download";
/// A file's thumbnails, by id and by share link: cached as downloads too.
pub const THUMBNAIL_BY_ID: &str = "/files/{id}/thumbnail";
pub const THUMBNAIL_BY_LINK: &str = "/s/{token}/thumbnail";

/// One route of the table: a method and the path pattern it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
}

/// A path and what each method runs there.
struct Endpoint {
    path: &'static str,
    routes: Vec<(Method, Route)>,
}

fn at(path: &'static str) -> Endpoint {
    Endpoint {
        path,
        routes: Vec::new(),
    }
}

impl Endpoint {
    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes
            .push((method.clone(), web::method(method).to(handler)));
        self
    }
}

fn endpoints() -> Vec<Endpoint> {
    use admin::{
        audit, bulk, files as admin_files, links, pickers, replace, upload, user_delete, users,
    };
    let (get, head, post, delete) = (Method::GET, Method::HEAD, Method::POST, Method::DELETE);
    vec![
        at("/").on(get.clone(), root),
        at("/healthz").on(get.clone(), health::healthz),
        at("/static/{name}").on(get.clone(), assets::asset),
        at("/login")
            .on(get.clone(), login::form)
            .on(post.clone(), login::submit),
        at("/logout").on(post.clone(), login::logout),
        at("/files").on(get.clone(), readable::list),
        // HEAD runs the same handler; actix-web sends the headers without the body.
        at(DOWNLOAD_BY_ID)
            .on(get.clone(), download::by_id)
            .on(head.clone(), download::by_id),
        at(THUMBNAIL_BY_ID)
            .on(get.clone(), thumbnail::by_id)
            .on(head.clone(), thumbnail::by_id),
        at(DOWNLOAD_BY_PATH)
            .on(get.clone(), download::by_path)
            .on(head.clone(), download::by_path),
        at("/s/{token}")
            .on(get.clone(), share::landing)
            .on(post.clone(), share::unlock),
        at(DOWNLOAD_BY_LINK)
            .on(get.clone(), share::download)
            .on(head.clone(), share::download),
        at(THUMBNAIL_BY_LINK)
            .on(get.clone(), share::thumbnail)
            .on(head.clone(), share::thumbnail),
        at("/admin").on(get.clone(), admin::redirect_to_index),
        at("/admin/").on(get.clone(), admin::index),
        at("/admin/files")
            .on(get.clone(), admin_files::list)
            .on(post.clone(), upload::create),
        at("/admin/files/new").on(get.clone(), upload::new),
        // Before `/admin/files/{id}`, which would take `bulk` for an id.
        at("/admin/files/bulk").on(get.clone(), bulk::confirm),
        at("/admin/files/bulk/delete").on(post.clone(), bulk::delete),
        at("/admin/files/bulk/access").on(post.clone(), bulk::access),
        at("/admin/files/bulk/owner").on(post.clone(), bulk::owner),
        at("/admin/files/{id}")
            .on(get.clone(), admin_files::detail)
            .on(post.clone(), admin_files::update),
        at("/admin/files/{id}/links").on(post.clone(), links::create),
        at("/admin/files/{id}/replace").on(post.clone(), replace::replace),
        at("/admin/usernames").on(get.clone(), pickers::usernames),
        at("/admin/links").on(get.clone(), links::list),
        at("/admin/links/{id}/revoke").on(post.clone(), links::revoke),
        at("/admin/files/{id}/delete")
            .on(get.clone(), admin_files::confirm_delete)
            .on(post.clone(), admin_files::delete),
        at("/admin/audit").on(get.clone(), audit::page),
        at("/admin/audit.csv").on(get.clone(), audit::csv),
        at("/admin/users")
            .on(get.clone(), users::list)
            .on(post.clone(), users::create),
        at("/admin/users/{id}")
            .on(get.clone(), users::edit)
            .on(post.clone(), users::update),
        at("/admin/users/{id}/password").on(post.clone(), users::set_password),
        at("/admin/users/{id}/delete")
            .on(get.clone(), user_delete::confirm)
            .on(post.clone(), user_delete::delete),
        at("/account").on(get.clone(), account::page),
        at("/account/password").on(post.clone(), account::change_password),
        at("/account/tokens")
            .on(get.clone(), account_tokens::page)
            .on(post.clone(), account_tokens::create),
        at("/account/tokens/{id}/revoke").on(post.clone(), account_tokens::revoke),
        // The JSON API: a token, never the session (`api::guard`).
        at(api::FILES)
            .on(get.clone(), api::list)
            .on(post, api::create),
        at(api::FILE)
            .on(get.clone(), api::detail)
            .on(delete, api::delete),
        at(api::DOWNLOAD)
            .on(get.clone(), api::download)
            .on(head, api::download),
        at(api::OPENAPI).on(get, api::document),
    ]
}

/// Every path is a resource, so a known path with the wrong method answers 405, not 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for endpoint in endpoints() {
        let resource = endpoint
            .routes
            .into_iter()
            .fold(web::resource(endpoint.path), |resource, (_, route)| {
                resource.route(route)
            });
        cfg.service(resource);
    }
}

/// Every route `configure` registers, in order.
pub fn table() -> Vec<RouteInfo> {
    endpoints()
        .into_iter()
        .flat_map(|endpoint| {
            endpoint
                .routes
                .into_iter()
                .map(move |(method, _)| RouteInfo {
                    method,
                    path: endpoint.path,
                })
        })
        .collect()
}

/// Whether `pattern` (as the router matched it) is one of the download routes (the API's
/// included).
pub fn is_download(pattern: &str) -> bool {
    [
        DOWNLOAD_BY_ID,
        DOWNLOAD_BY_PATH,
        DOWNLOAD_BY_LINK,
        api::DOWNLOAD,
        THUMBNAIL_BY_ID,
        THUMBNAIL_BY_LINK,
    ]
    .contains(&pattern)
}

async fn root() -> HttpResponse {
    see_other("/files")
}

/// A 303 to `location`: where a handler sends the browser after a POST, or onwards.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

/// Anything no route matched.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// A file's id from a URL. Text that cannot be an id names no file: 404, as an unknown id.
fn parse_file_id(raw: &str) -> Result<FileId, AppError> {
    FileId::parse(raw).map_err(|_| AppError::NotFound)
}

/// A user's id from a URL. Text that cannot be an id names no user: 404, as an unknown id.
fn parse_user_id(raw: &str) -> Result<UserId, AppError> {
    UserId::parse(raw).map_err(|_| AppError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_the_table_is_declared_once() {
        // actix-web would let a second resource with the same path shadow the first silently.
        let mut paths: Vec<&str> = endpoints().iter().map(|e| e.path).collect();
        let declared = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), declared);
    }

    #[test]
    fn the_table_lists_every_method_of_a_path() {
        let table = table();
        assert!(table.contains(&RouteInfo {
            method: Method::POST,
            path: "/admin/files/{id}/delete",
        }));
        assert!(table.contains(&RouteInfo {
            method: Method::HEAD,
            path: DOWNLOAD_BY_ID,
        }));
    }
}
