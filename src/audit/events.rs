//! What an event says, built from the request it records: the time, who (a user or a share
//! link), what (a file, or a key of the path view), the outcome and how the bytes left, the
//! range asked for, the client as `trusted_proxies` lets the app believe it, and the first
//! 200 characters of the user agent.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;

use crate::client_addr::client_address;
use crate::db::models::audit_event::NewEvent;
use crate::domain::TrustedProxies;

/// Characters of the user agent kept.
const USER_AGENT_CHARS: usize = 200;
/// Characters of a `Range` header kept (a client chooses its length).
const RANGE_CHARS: usize = 100;

/// Which way a download came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Detail,
    Path,
    Share,
    Api,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Detail => "detail",
            Route::Path => "path",
            Route::Share => "share",
            Route::Api => "api",
        }
    }
}

/// How a granted download's bytes left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    App,
    Nginx,
    Apache,
    Presigned,
    Proxied,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::App => "app",
            Delivery::Nginx => "nginx",
            Delivery::Apache => "apache",
            Delivery::Presigned => "presigned",
            Delivery::Proxied => "proxied",
        }
    }

    /// Read off the answer: a hand-over header, a redirect to the storage, or the app's own
    /// body (`local`: from a local file, else streamed from S3).
    fn of(response: &HttpResponse, local: bool) -> Self {
        let headers = response.headers();
        if headers.contains_key("x-accel-redirect") {
            Delivery::Nginx
        } else if headers.contains_key("x-sendfile") {
            Delivery::Apache
        } else if is_storage_redirect(response) {
            Delivery::Presigned
        } else if local {
            Delivery::App
        } else {
            Delivery::Proxied
        }
    }
}

/// A redirect away from the site (to a presigned URL), not to one of its pages (a login, a
/// share link's password form).
fn is_storage_redirect(response: &HttpResponse) -> bool {
    response.status().is_redirection()
        && response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| !l.starts_with('/'))
}

/// Who asked for which download.
#[derive(Debug, Clone, Default)]
pub struct DownloadEvent {
    pub route: Option<Route>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub link_id: Option<String>,
    pub file_id: Option<String>,
    pub file_name: Option<String>,
    pub storage_key: Option<String>,
    /// Whether the object is a local file (for `Delivery::of`).
    pub local: bool,
}

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

fn base(req: &HttpRequest, trusted: &TrustedProxies, event: &str) -> NewEvent {
    let client = client_address(req.peer_addr().map(|a| a.ip()), req.headers(), trusted)
        .map(|c| c.ip().to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| cut(&String::from_utf8_lossy(v.as_bytes()), USER_AGENT_CHARS));
    NewEvent {
        at: Utc::now().naive_utc(),
        event: event.to_owned(),
        client,
        user_agent,
        ..NewEvent::default()
    }
}

/// A download decision: `granted` for an answer that serves (or hands over, or redirects to
/// the storage, or says 304), else `refused` with its status.
pub fn download(
    req: &HttpRequest,
    trusted: &TrustedProxies,
    what: DownloadEvent,
    response: &HttpResponse,
) -> NewEvent {
    let status = response.status();
    let granted = status.is_success()
        || status == actix_web::http::StatusCode::NOT_MODIFIED
        || is_storage_redirect(response);
    NewEvent {
        outcome: Some(if granted { "granted" } else { "refused" }.to_owned()),
        status: Some(i32::from(status.as_u16())),
        route: what.route.map(|r| r.as_str().to_owned()),
        delivery: granted.then(|| Delivery::of(response, what.local).as_str().to_owned()),
        method: Some(req.method().as_str().to_owned()),
        byte_range: req
            .headers()
            .get(header::RANGE)
            .map(|v| cut(&String::from_utf8_lossy(v.as_bytes()), RANGE_CHARS)),
        user_id: what.user_id,
        username: what.username,
        link_id: what.link_id,
        file_id: what.file_id,
        file_name: what.file_name,
        storage_key: what.storage_key,
        ..base(req, trusted, "download")
    }
}

/// A change: `event` names it (`upload`, `edit`, `owner`, `replace`, `delete`, `link_created`,
/// `link_revoked`, `user_created`, `user_changed`, `user_deleted`, `password_set`,
/// `password_changed`, `login`, `login_failed`, `token_created`, `token_revoked`; `moved`
/// from the command line), `detail` says what changed.
pub fn change(
    req: &HttpRequest,
    trusted: &TrustedProxies,
    event: &str,
    fill: impl FnOnce(&mut NewEvent),
) -> NewEvent {
    let mut recorded = base(req, trusted, event);
    fill(&mut recorded);
    recorded
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_download_event_says_how_it_went_and_how_the_bytes_left() {
        let req = TestRequest::get()
            .insert_header((header::RANGE, "bytes=0-"))
            .insert_header((header::USER_AGENT, "x".repeat(500)))
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .to_http_request();
        let trusted = TrustedProxies::default();
        let what = DownloadEvent {
            route: Some(Route::Detail),
            local: true,
            ..DownloadEvent::default()
        };
        let served = download(&req, &trusted, what.clone(), &HttpResponse::Ok().finish());
        assert_eq!(served.outcome.as_deref(), Some("granted"));
        assert_eq!(served.delivery.as_deref(), Some("app"));
        assert_eq!(served.byte_range.as_deref(), Some("bytes=0-"));
        assert_eq!(served.client.as_deref(), Some("10.1.2.3"));
        assert_eq!(served.user_agent.as_ref().map(|u| u.len()), Some(200));
        let refused = download(
            &req,
            &trusted,
            what.clone(),
            &HttpResponse::Forbidden().finish(),
        );
        assert_eq!(refused.outcome.as_deref(), Some("refused"));
        assert_eq!(refused.status, Some(403));
        assert_eq!(refused.delivery, None);
        let to_login = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/login?next=%2F"))
            .finish();
        assert_eq!(
            download(&req, &trusted, what.clone(), &to_login)
                .outcome
                .as_deref(),
            Some("refused")
        );
        let presigned = HttpResponse::Found()
            .insert_header((header::LOCATION, "https://s3.example/b/k?X-Amz-Signature=1"))
            .finish();
        let event = download(&req, &trusted, what.clone(), &presigned);
        assert_eq!(event.delivery.as_deref(), Some("presigned"));
        let accel = HttpResponse::Ok()
            .insert_header(("X-Accel-Redirect", "/internal/k"))
            .finish();
        assert_eq!(
            download(&req, &trusted, what.clone(), &accel)
                .delivery
                .as_deref(),
            Some("nginx")
        );
        let streamed = DownloadEvent {
            local: false,
            ..what
        };
        assert_eq!(
            download(&req, &trusted, streamed, &HttpResponse::Ok().finish())
                .delivery
                .as_deref(),
            Some("proxied")
        );
        let not_modified = download(
            &req,
            &trusted,
            DownloadEvent::default(),
            &HttpResponse::NotModified().finish(),
        );
        assert_eq!(not_modified.outcome.as_deref(), Some("granted"));
        assert_eq!(not_modified.status, Some(304));
    }
}
