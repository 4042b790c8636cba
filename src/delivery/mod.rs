//! Serving a download once access has been decided (README: "Downloads"). Callers hand over
//! the object and how it should present itself; this module alone picks the way the bytes
//! leave:
//!
//! - `server = "app"`: the app streams the file. actix-files' `NamedFile` does what it already
//!   does right: `ETag`, `Last-Modified`, `Range` (206/416), `If-None-Match` /
//!   `If-Modified-Since` (304), `If-Match` (412) and `HEAD`. Only the body of responses over
//!   64 KiB is ours (`body.rs`): sendfile(2) from the page cache to the socket, where NamedFile
//!   would read 64 KiB at a time, one blocking-pool hop each, well below what the page cache
//!   and the socket can do.
//! - `server = "nginx"`: an empty answer with `X-Accel-Redirect`; nginx sends the bytes.
//! - `server = "apache"`: an empty answer with `X-Sendfile` and the absolute path.
//! - A storage without local files (S3): a redirect to a presigned URL, or the app streams
//!   the object (`s3.rs`), whatever `server` says.
//!
//! Every answer, 304s included, carries `Cache-Control: private, no-cache`, so shared caches
//! never keep a private file and the access check runs on every request.

mod body;
pub use body::{ConnectionSocket, set_pressure_threshold};
pub mod presentation;
mod s3;

use std::io::ErrorKind;
use std::path::Path;

use actix_files::NamedFile;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::{DeliveryServer, DeliverySettings};
use crate::domain::StorageKey;
use crate::error::AppError;
use crate::storage::{LocalObject, Storage, StorageError};
pub use presentation::Presentation;

/// Files up to this size keep NamedFile's own body: one synchronous read of at most 64 KiB
/// (no hop to the blocking pool), the fastest way to send a small file from the page cache.
const SMALL_FILE: u64 = 64 * 1024;
/// What a download may do if a browser renders it: nothing but show itself.
const DOWNLOAD_CSP: &str = "default-src 'none'; img-src 'self'; media-src 'self'; \
                            object-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'";
/// The same for a PDF asked for inline, which the file's page frames as its preview: only a
/// page of this site may frame it (the browser's own viewer draws it; the PDF runs nothing).
const FRAMED_PDF_CSP: &str = "default-src 'none'; img-src 'self'; media-src 'self'; \
                              object-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'";
/// Percent-encoding for the path in `X-Accel-Redirect`: all but unreserved characters and `/`.
const ACCEL_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What to send: an object of a storage, and how it presents itself.
pub struct Download<'a> {
    pub storage: &'a dyn Storage,
    pub key: &'a StorageKey,
    pub presentation: Presentation,
}

pub async fn deliver(
    req: &HttpRequest,
    settings: &DeliverySettings,
    download: Download<'_>,
) -> Result<HttpResponse, AppError> {
    let Download {
        storage,
        key,
        presentation,
    } = download;
    // The object is opened beneath its root with no symlink followed; the app serves from
    // that very handle, so nothing swapped in after the check can be sent.
    let local = match storage.open_local(key) {
        Ok(Some(local)) => local,
        // No local file (S3): a presigned redirect or the app streams it; front servers
        // cannot help with those.
        Ok(None) => {
            let mut response = s3::redirect_or_stream(req, storage, key, &presentation).await?;
            add_download_headers(&mut response, &presentation);
            return Ok(response);
        }
        Err(e) if e.is_not_found() => {
            tracing::warn!(key = %key, "a download's object is missing from its storage");
            return Err(AppError::NotFound);
        }
        Err(e) => return Err(e.into()),
    };
    let mut response = match settings.server {
        DeliveryServer::App => stream_local_file(req, local, &presentation)?,
        DeliveryServer::Nginx => {
            let target = format!(
                "{}{}",
                settings.internal_url,
                utf8_percent_encode(key.as_str(), ACCEL_PATH)
            );
            handed_over(&presentation, "X-Accel-Redirect", &target)?
        }
        DeliveryServer::Apache => {
            let path = local.path;
            let target = path.to_str().ok_or_else(|| {
                AppError::Internal(format!("{} is not valid UTF-8", path.display()))
            })?;
            handed_over(&presentation, "X-Sendfile", target)?
        }
    };
    add_download_headers(&mut response, &presentation);
    Ok(response)
}

/// What every download answer carries, 304s, 206s and redirects included.
fn add_download_headers(response: &mut HttpResponse, presentation: &Presentation) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(crate::cache_control::DOWNLOAD),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if presentation.frameable() {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(FRAMED_PDF_CSP),
        );
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    } else {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOWNLOAD_CSP),
        );
    }
}

/// The app streams the file itself.
fn stream_local_file(
    req: &HttpRequest,
    local: LocalObject,
    presentation: &Presentation,
) -> Result<HttpResponse, AppError> {
    // NamedFile guesses a type and a name from the path; both are replaced below, so it gets
    // one without an extension (the guess is then cheap).
    let file = match NamedFile::from_file(local.file, Path::new("download")) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(AppError::NotFound),
        Err(e) => return Err(StorageError::Io(e).into()),
    };
    // Our own body reader shares the open file, so it reads exactly what NamedFile checked.
    let big_body_file = if file.metadata().len() > SMALL_FILE && req.method() == Method::GET {
        Some(file.file().try_clone().map_err(StorageError::Io)?)
    } else {
        None
    };
    let file = file
        .set_content_type(presentation.content_type.clone())
        .set_content_disposition(presentation.content_disposition())
        .prefer_utf8(false)
        .read_mode_threshold(SMALL_FILE + 1);
    let mut response = file.into_response(req);
    if let Some(std_file) = big_body_file
        && matches!(
            response.status(),
            StatusCode::OK | StatusCode::PARTIAL_CONTENT
        )
        && let Some((offset, length)) = body::span_of(&response)
    {
        response = response
            .set_body(body::sized_file_body(
                std_file,
                offset,
                length,
                req.conn_data::<body::ConnectionSocket>().cloned(),
            ))
            .map_into_boxed_body();
    }
    Ok(response)
}

/// A front server sends the bytes: the answer carries the headers and no body.
fn handed_over(
    presentation: &Presentation,
    header_name: &'static str,
    target: &str,
) -> Result<HttpResponse, AppError> {
    // As bytes: an imported key may hold letters beyond ASCII, which `X-Sendfile` carries as
    // the path's own UTF-8 (nginx's target is percent-encoded ASCII). Control characters
    // are still refused (no key holds one).
    let target = HeaderValue::from_bytes(target.as_bytes())
        .map_err(|_| AppError::Internal(format!("cannot put {target:?} in {header_name}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, presentation.content_type.to_string()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            presentation.content_disposition_value(),
        ))
        .insert_header((header_name, target))
        .finish())
}
