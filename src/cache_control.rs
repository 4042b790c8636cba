//! The caching policy, for every answer in one place: downloads (their errors and redirects
//! included) are `private, no-cache`, so no shared cache keeps them and the access check runs
//! on every request; everything else (pages, login, redirects, errors) is `no-store`, because
//! pages name files and users and carry CSRF tokens. An answer that chose its own policy (a
//! served download, the static assets) keeps it.
//!
//! Beside it, the one other policy that depends on where an answer goes: anything under
//! `/s/` (a share link's pages and downloads, and whatever refuses them before a handler
//! runs: CSRF, routing, body limits) carries `Referrer-Policy: no-referrer`, since the token
//! is in the URL, and `X-Robots-Tag: noindex, nofollow`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

use crate::routes;

pub const DOWNLOAD: &str = "private, no-cache";
pub const PAGE: &str = "no-store";
/// A download refused with a page that names the user and carries their CSRF token (the
/// navigation): still a download's `private, no-cache`, and never stored.
pub const REFUSED_DOWNLOAD_PAGE: &str = "private, no-cache, no-store";

/// The policy for an answer to a request whose path matched `pattern` in the route table.
fn policy(pattern: Option<&str>) -> &'static str {
    match pattern {
        Some(pattern) if routes::is_download(pattern) => DOWNLOAD,
        _ => PAGE,
    }
}

/// Whether `req` is for a download (its answers, refusals included, are `DOWNLOAD`).
pub fn is_download(req: &actix_web::HttpRequest) -> bool {
    policy(req.match_pattern().as_deref()) == DOWNLOAD
}

pub async fn apply(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    // The pattern routing matched; a request refused before routing (CSRF) is matched
    // against the table instead, so it is still a download's.
    let pattern = response.request().match_pattern();
    let value = policy(pattern.as_deref());
    let share = is_share_path(response.request().path());
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    if share {
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            header::HeaderName::from_static("x-robots-tag"),
            HeaderValue::from_static("noindex, nofollow"),
        );
    }
    Ok(response)
}

/// Whether a path is under `/s/` as the router reads it: percent-decoded (`/%73/…` is
/// `/s/…`), and with the empty segments a client may put in front (`//s/…`).
fn is_share_path(path: &str) -> bool {
    let under = |p: &str| {
        let p = p.trim_start_matches('/');
        p == "s" || p.starts_with("s/")
    };
    if under(path) {
        return true;
    }
    path.contains('%') && under(&percent_encoding::percent_decode_str(path).decode_utf8_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_paths_are_found_however_they_are_spelt() {
        for share in [
            "/s/abc",
            "/s/abc/download",
            "//s/abc",
            "/%73/abc",
            "/%2Fs/x",
            "/s",
        ] {
            assert!(is_share_path(share), "{share}");
        }
        for other in ["/files/s/abc", "/sx/abc", "/static/s.css", "/"] {
            assert!(!is_share_path(other), "{other}");
        }
    }

    #[test]
    fn downloads_are_private_and_everything_else_is_not_stored() {
        assert_eq!(policy(Some(routes::DOWNLOAD_BY_ID)), DOWNLOAD);
        assert_eq!(policy(Some(routes::DOWNLOAD_BY_PATH)), DOWNLOAD);
        assert_eq!(policy(Some("/files")), PAGE);
        assert_eq!(policy(Some("/admin/files/{id}")), PAGE);
        assert_eq!(policy(None), PAGE);
    }
}
