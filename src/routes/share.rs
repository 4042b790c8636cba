//! What a share link's recipient sees (README: "Share links"): `/s/{token}`, a landing page
//! (with a password form when the link has one) that never counts as a download, and
//! `/s/{token}/download`, the file served as every download is, after the link is checked.
//!
//! Every answer here, errors included, carries `Referrer-Policy: no-referrer` (the token is
//! in the URL) and `X-Robots-Tag: noindex, nofollow`: `cache_control` adds them to anything
//! under `/s/`, also what is refused before these handlers run.

use std::rc::Rc;

use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use chrono::{NaiveDateTime, Utc};
use serde::Deserialize;

use crate::audit::{DownloadEvent, Route};
use crate::auth::password::verify_in_turn;
use crate::auth::session::TypedSession;
use crate::db::models::share_link::{LinkState, OpenedLink, PASSWORD_WINDOW_MINUTES, ShareLink};
use crate::delivery::{self, Download, Presentation};
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::domain::ShareToken;
use crate::error::AppError;
use crate::html;
use crate::routes::see_other;
use crate::state::AppState;

/// How long the right password opens a link for the browser that gave it.
const PASSWORD_GRANT_SECS: i64 = 3600;
/// How long after a counted download the same browser may fetch the rest of it (a resumed
/// download's later ranges), even once the link is used up.
const RESUME_GRANT_SECS: i64 = 24 * 3600;

#[derive(Template)]
#[template(path = "share.html")]
struct LandingPage {
    name: String,
    size: String,
    type_label: String,
    expires_at: String,
    downloads_left: Option<i64>,
    download_url: String,
    /// `Some(token)`: the password form, with this CSRF token.
    password_form: Option<String>,
    error: Option<String>,
    unlock_url: String,
    /// The medium thumbnail, for an image that has one (shown once the link is open).
    preview_url: Option<String>,
}

#[derive(Deserialize)]
pub struct UnlockForm {
    #[serde(default)]
    password: String,
}

/// `GET /s/{token}`.
pub async fn landing(
    req: HttpRequest,
    session: TypedSession,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let answer = async {
        let (token, opened, _) = open_usable(&state, &token).await?;
        landing_page(&req, &session, &token, &opened, None, StatusCode::OK)
    };
    marked(answer.await)
}

/// `POST /s/{token}`: the password. Right: the browser may use the link for an hour.
pub async fn unlock(
    req: HttpRequest,
    session: TypedSession,
    token: web::Path<String>,
    form: web::Form<UnlockForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let answer = async {
        let (token, opened, now) = open_usable(&state, &token).await?;
        let Some(hash) = opened.link.password_hash.clone() else {
            return Ok(see_other(&format!("/s/{}", token.as_str())));
        };
        let link_id = opened.link.id.clone();
        let attempt = link_id.clone();
        let allowed = state
            .db
            .run(move |c| ShareLink::take_password_attempt(c, &attempt, now))
            .await?;
        if !allowed {
            return Err(AppError::TooManyAttempts {
                message: format!(
                    "Too many wrong passwords for this link. Please wait {PASSWORD_WINDOW_MINUTES} \
                     minutes and try again."
                ),
                retry_after_secs: (PASSWORD_WINDOW_MINUTES * 60) as u64,
            });
        }
        let right = verify_in_turn(form.into_inner().password, Some(hash))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        if !right {
            tracing::info!(link = %link_id, "wrong share link password");
            return landing_page(
                &req,
                &session,
                &token,
                &opened,
                Some("That password is not right.".into()),
                StatusCode::FORBIDDEN,
            );
        }
        let back = link_id.clone();
        state
            .db
            .run(move |c| ShareLink::return_password_attempt(c, &back))
            .await?;
        session.grant_share_password(&link_id, Utc::now().timestamp() + PASSWORD_GRANT_SECS);
        Ok(see_other(&format!("/s/{}", token.as_str())))
    };
    marked(answer.await)
}

/// `GET|HEAD /s/{token}/download`.
pub async fn download(
    req: HttpRequest,
    session: TypedSession,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut what = DownloadEvent {
        route: Some(Route::Share),
        ..DownloadEvent::default()
    };
    let answer = async {
        let (token, opened) = open(&state, &token).await?;
        what.link_id = Some(opened.link.id.to_string());
        what.file_id = Some(opened.file.id.to_string());
        what.file_name = Some(opened.file.original_name.clone());
        let now = Utc::now().naive_utc();
        let resuming = resumed_range(&req) && session.share_may_resume(&opened.link.id);
        refuse_unusable(&opened, now, resuming)?;
        if opened.link.password_hash.is_some() && !session.share_password_given(&opened.link.id) {
            return Ok(see_other(&format!("/s/{}", token.as_str())));
        }
        let file = &opened.file;
        let storage = state.storage_of(file)?;
        what.local = storage.kind() == "filesystem";
        let presentation = Presentation::decide(&file.content_type, &file.original_name, false);
        let response = delivery::deliver(
            &req,
            &state.settings.delivery,
            Download {
                storage: storage.as_ref(),
                key: &file.storage_key,
                presentation,
            },
        )
        .await?;
        if counts_as_download(&req, &response) {
            if opened.link.max_downloads.is_some() {
                let link = opened.link.id.clone();
                let taken = state
                    .db
                    .run(move |c| ShareLink::take_download(c, &link, now))
                    .await?;
                if !taken {
                    // Another request took the last download since this one looked (or the
                    // link changed since it was cached).
                    return Err(gone(LinkState::UsedUp));
                }
            } else {
                state.share_tally.add(&opened.link.id, now);
            }
            session.grant_share_resume(&opened.link.id, Utc::now().timestamp() + RESUME_GRANT_SECS);
        }
        Ok(response)
    };
    let answer = answer.await;
    marked(Ok(crate::routes::download::recorded(
        &req, &state, what, answer,
    )
    .await))
}

/// `GET|HEAD /s/{token}/thumbnail?size=…`: the file's thumbnail for whoever may open the
/// link (a password-protected one after its password, as the download); never counted as a
/// download.
pub async fn thumbnail(
    req: HttpRequest,
    session: TypedSession,
    token: web::Path<String>,
    params: web::Query<crate::routes::thumbnail::ThumbnailParams>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let answer = async {
        let (token, opened, _) = open_usable(&state, &token).await?;
        if opened.link.password_hash.is_some() && !session.share_password_given(&opened.link.id) {
            return Ok(see_other(&format!("/s/{}", token.as_str())));
        }
        let size = params.size()?;
        crate::routes::thumbnail::serve(&req, &state, &opened.file, size).await
    };
    marked(answer.await)
}

/// The link a token names. Text that cannot be a token, and a token of no link, are 404.
/// Read through the access cache: a link's download needs no trip to the blocking pool
/// while nothing changed.
async fn open(state: &AppState, raw: &str) -> Result<(ShareToken, Rc<OpenedLink>), AppError> {
    let token = ShareToken::parse(raw).ok_or(AppError::NotFound)?;
    let digest = token.digest();
    let cache = state.db.cache();
    let version = cache.version();
    let found = match version.and_then(|v| cache.link(v, &digest)) {
        Some(hit) => hit,
        None => {
            let lookup = digest.clone();
            let found = state
                .db
                .read(move |c| ShareLink::open(c, &lookup))
                .await?
                .map(Rc::new);
            if let Some(v) = version {
                cache.keep_link(v, &digest, &found);
            }
            found
        }
    };
    Ok((token, found.ok_or(AppError::NotFound)?))
}

/// `open`, then 410 unless the link still opens, and the time it was checked at.
async fn open_usable(
    state: &AppState,
    raw: &str,
) -> Result<(ShareToken, Rc<OpenedLink>, NaiveDateTime), AppError> {
    let (token, opened) = open(state, raw).await?;
    let now = Utc::now().naive_utc();
    refuse_unusable(&opened, now, false)?;
    Ok((token, opened, now))
}

/// 410 for a link that no longer opens. `resuming`: a later range for a browser that took a
/// counted download, which a used-up link still serves.
fn refuse_unusable(
    opened: &OpenedLink,
    now: NaiveDateTime,
    resuming: bool,
) -> Result<(), AppError> {
    if !opened.creator_may_share {
        return Err(AppError::Gone(
            "This link no longer works: whoever shared it can no longer share files here.".into(),
        ));
    }
    match opened.link.state(now) {
        LinkState::Active => Ok(()),
        LinkState::UsedUp if resuming => Ok(()),
        other => Err(gone(other)),
    }
}

fn gone(state: LinkState) -> AppError {
    AppError::Gone(
        match state {
            LinkState::Expired => "This link has expired.",
            LinkState::Revoked => "This link was withdrawn by whoever shared it.",
            LinkState::UsedUp | LinkState::Active => {
                "This link has been used as many times as it allows."
            }
        }
        .to_owned()
            + " Ask whoever sent it to you for a new one.",
    )
}

/// A later range: exactly one well-formed `bytes=N-` or `bytes=N-M` with `0 < N` (and
/// `N <= M`), as a resumed download or a piece of one sends. Anything else (several ranges, a suffix `bytes=-N`, a range
/// that does not parse) is not one: a front server or S3 may read such a header otherwise
/// (ignore the bad part, send every range) and send byte 0 after all.
fn resumed_range(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((unit, range)) = value.split_once('=') else {
        return false;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || range.contains(',') {
        return false;
    }
    let Some((start, end)) = range.trim().split_once('-') else {
        return false;
    };
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let (start, end) = (start.trim(), end.trim());
    if !digits(start) || !(end.is_empty() || digits(end)) {
        return false;
    }
    let Ok(first) = start.parse::<u64>() else {
        return false;
    };
    first > 0 && (end.is_empty() || end.parse::<u64>().is_ok_and(|last| last >= first))
}

/// Whether this answer takes one of the link's downloads: a GET answered 200, or 206 for a
/// range from byte 0. HEAD, 304, 412, 416 and a range that starts later send no download (a
/// download manager fetching in pieces, or resuming, is counted once). When the bytes leave
/// elsewhere (nginx or Apache after `X-Accel-Redirect` / `X-Sendfile`, S3 after a redirect)
/// the app never sees the final answer: it counts every GET but one plain later range, since
/// those servers read an odd `Range` their own way (nginx sends all of `bytes=1-0,0-`), so a
/// conditional request there may count once without bytes, never the other way round.
fn counts_as_download(req: &HttpRequest, response: &HttpResponse) -> bool {
    if req.method() != Method::GET {
        return false;
    }
    // A redirect to S3 carries a `Location`; a 304 is a 3xx without one.
    let handed_over = (response.status().is_redirection()
        && response.headers().contains_key(header::LOCATION))
        || response.headers().contains_key("x-accel-redirect")
        || response.headers().contains_key("x-sendfile");
    if handed_over {
        return !resumed_range(req);
    }
    match response.status() {
        StatusCode::OK => true,
        // What was sent, as the answer says it: byte 0 or not.
        StatusCode::PARTIAL_CONTENT => response
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("bytes 0-")),
        _ => false,
    }
}

fn landing_page(
    req: &HttpRequest,
    session: &TypedSession,
    token: &ShareToken,
    opened: &OpenedLink,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let _ = req;
    let link = &opened.link;
    let file = &opened.file;
    let locked = link.password_hash.is_some() && !session.share_password_given(&link.id);
    html::render(
        status,
        &LandingPage {
            name: file.original_name.clone(),
            size: crate::upload::human_size(u64::try_from(file.size).unwrap_or(0)),
            type_label: crate::domain::FileType::of(&file.original_name, &file.content_type).label,
            expires_at: link.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            downloads_left: link.max_downloads.map(|max| (max - link.downloads).max(0)),
            download_url: format!("/s/{}/download", token.as_str()),
            password_form: locked.then(|| session.csrf_token()),
            error,
            unlock_url: format!("/s/{}", token.as_str()),
            preview_url: file
                .thumbnails
                .then(|| format!("/s/{}/thumbnail?size=medium", token.as_str())),
        },
    )
}

/// An error as its page (the privacy headers come from `cache_control`).
fn marked(answer: Result<HttpResponse, AppError>) -> HttpResponse {
    answer.unwrap_or_else(|e| e.error_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn get(range: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::get();
        if let Some(range) = range {
            req = req.insert_header((header::RANGE, range));
        }
        req.to_http_request()
    }

    #[test]
    fn only_one_well_formed_range_after_byte_zero_is_a_resumed_range() {
        for resumed in [
            "bytes=100-",
            "bytes=1-1",
            " BYTES = 5-9",
            "bytes=5-900000000000",
        ] {
            assert!(resumed_range(&get(Some(resumed))), "{resumed}");
        }
        for not in [
            None,
            Some("bytes=0-"),
            Some("bytes=0-99"),
            Some("bytes=-500"),
            Some("bytes=1-0,0-"),
            Some("bytes=1-,0-0"),
            Some("bytes=5-4"),
            Some("bytes=1-0"),
            Some("bytes=+1-"),
            Some("bytes=1-x"),
            Some("items=5-9"),
            Some("nonsense"),
            Some("bytes=99999999999999999999999-"),
        ] {
            assert!(!resumed_range(&get(not)), "{not:?}");
        }
    }

    #[test]
    fn a_download_counts_when_it_sends_byte_zero_or_cannot_be_seen() {
        let with_range = |value: &str| {
            HttpResponse::PartialContent()
                .insert_header((header::CONTENT_RANGE, value))
                .finish()
        };
        let ok = HttpResponse::Ok().finish();
        assert!(counts_as_download(&get(None), &ok));
        let first = with_range("bytes 0-9/100");
        assert!(counts_as_download(&get(Some("bytes=0-9")), &first));
        let later = with_range("bytes 10-99/100");
        assert!(!counts_as_download(&get(Some("bytes=10-")), &later));
        for nothing in [
            HttpResponse::NotModified().finish(),
            HttpResponse::RangeNotSatisfiable().finish(),
            HttpResponse::PreconditionFailed().finish(),
        ] {
            assert!(!counts_as_download(&get(None), &nothing));
        }
        let head = TestRequest::default()
            .method(Method::HEAD)
            .to_http_request();
        assert!(!counts_as_download(&head, &ok));
        let redirect = HttpResponse::Found()
            .insert_header((header::LOCATION, "https://s3.example/x?sig"))
            .finish();
        let accel = HttpResponse::Ok()
            .insert_header(("X-Accel-Redirect", "/x/y"))
            .finish();
        for handed in [&redirect, &accel] {
            assert!(counts_as_download(&get(None), handed));
            assert!(!counts_as_download(&get(Some("bytes=5-")), handed));
            assert!(counts_as_download(&get(Some("bytes=1-0,0-")), handed));
            assert!(counts_as_download(&get(Some("bytes=-5")), handed));
        }
    }
}
