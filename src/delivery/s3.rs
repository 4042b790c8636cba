//! Downloads from a storage that keeps no local files (S3): a redirect to a short-lived
//! direct URL when the storage gives one, or the object streamed through the app chunk by
//! chunk with the same HTTP semantics as a local file: `ETag`, `Last-Modified`, a single
//! `Range` (206/416, forwarded to the storage), `If-None-Match` / `If-Modified-Since` (304),
//! `If-Range`, `If-Match` / `If-Unmodified-Since` (412), and `HEAD` without touching the
//! object's bytes.
//!
//! actix-files does all of this for files on disk but cannot serve a stream, so this module
//! applies the same rules with the range parser actix-files uses and actix-web's header types.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::SizedStream;
use actix_web::http::header::{self, EntityTag, HeaderValue, HttpDate, IfNoneMatch};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use futures_util::TryStreamExt;

use super::Presentation;
use crate::domain::StorageKey;
use crate::error::AppError;
use crate::storage::{ByteRange, DirectUrl, ObjectMeta, Storage};

pub async fn redirect_or_stream(
    req: &HttpRequest,
    storage: &dyn Storage,
    key: &StorageKey,
    presentation: &Presentation,
) -> Result<HttpResponse, AppError> {
    let disposition = presentation.content_disposition().to_string();
    let content_type = presentation.content_type.to_string();
    // A presigned URL is signed for GET; a HEAD is answered here from the object's metadata.
    let direct = if req.method() == Method::HEAD {
        Ok(None)
    } else {
        storage
            .direct_url(
                key,
                &DirectUrl {
                    content_type: &content_type,
                    content_disposition: &disposition,
                    // The policy every download answer carries (`add_download_headers`).
                    cache_control: crate::cache_control::DOWNLOAD,
                },
            )
            .await
    };
    match direct {
        Ok(Some(url)) => {
            let location = HeaderValue::from_str(&url)
                .map_err(|_| AppError::Internal("the storage gave an unusable URL".into()))?;
            return Ok(HttpResponse::Found()
                .insert_header((header::LOCATION, location))
                .finish());
        }
        Ok(None) => {}
        Err(e) if e.is_not_found() => return Err(missing(key)),
        Err(e) => return Err(e.into()),
    }

    let meta = match storage.metadata(key).await {
        Ok(meta) => meta,
        Err(e) if e.is_not_found() => return Err(missing(key)),
        Err(e) => return Err(e.into()),
    };
    let etag = entity_tag(&meta);
    let last_modified = HttpDate::from(meta.modified);
    if precondition_failed(req, &etag, &meta) {
        return Ok(HttpResponse::PreconditionFailed()
            .insert_header((header::ETAG, etag))
            .finish());
    }
    let unchanged = not_modified(req, &etag, &meta);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            presentation.content_disposition_value(),
        ))
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::LAST_MODIFIED, last_modified))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
    if unchanged {
        return Ok(response.finish());
    }

    let mut span = ByteRange {
        start: 0,
        end: meta.size.saturating_sub(1),
    };
    let mut partial = false;
    // Range is defined for GET only; a header that does not parse is ignored (RFC 9110 14.2).
    if req.method() == Method::GET
        && let Some(range) = req
            .headers()
            .get(header::RANGE)
            .and_then(|r| r.to_str().ok())
        && range_applies(req, &etag, &meta)
    {
        match choose_range(range, meta.size) {
            RangeChoice::Whole => {}
            RangeChoice::Part(one) => {
                span = one;
                partial = true;
            }
            RangeChoice::NotSatisfiable => {
                return Ok(HttpResponse::RangeNotSatisfiable()
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{}", meta.size)))
                    .insert_header((header::ETAG, etag))
                    .finish());
            }
        }
    }
    if partial {
        response.status(StatusCode::PARTIAL_CONTENT).insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", span.start, span.end, meta.size),
        ));
    }
    let length = if meta.size == 0 { 0 } else { span.byte_count() };
    if req.method() == Method::HEAD || length == 0 {
        // The headers of the GET, without asking the storage for a byte: actix-web sends a
        // HEAD answer's declared length and never polls its body.
        let nothing = futures_util::stream::empty::<Result<Bytes, std::io::Error>>();
        return Ok(response.body(SizedStream::new(length, nothing)));
    }
    let stream = match storage.open(key, partial.then_some(span)).await {
        Ok(stream) => stream,
        Err(e) if e.is_not_found() => return Err(missing(key)),
        Err(e) => return Err(e.into()),
    };
    let body = stream.map_err(|e| {
        tracing::warn!(error = %e, "a download from the storage broke off");
        std::io::Error::other(e.to_string())
    });
    Ok(response.body(SizedStream::new(length, body)))
}

/// What a `Range` header gets from an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeChoice {
    /// 200 with the whole object: no usable range, several ranges (only single ranges are
    /// served, README "Downloads"; RFC 9110 lets a server ignore `Range`), or a header that
    /// does not parse (ignored, RFC 9110 14.2).
    Whole,
    /// 206 with these bytes, always inside the object.
    Part(ByteRange),
    /// 416: no range overlaps the object.
    NotSatisfiable,
}

fn choose_range(range: &str, size: u64) -> RangeChoice {
    match http_range::HttpRange::parse(range, size) {
        Ok(ranges) => match ranges.as_slice() {
            [one] if one.length > 0 => match one.start.checked_add(one.length - 1) {
                // The parser clamps to the object; checked again so a parser change can
                // never make us ask the storage for bytes past its end.
                Some(end) if end < size => RangeChoice::Part(ByteRange {
                    start: one.start,
                    end,
                }),
                _ => RangeChoice::Whole,
            },
            _ => RangeChoice::Whole,
        },
        Err(http_range::HttpRangeParseError::NoOverlap) => RangeChoice::NotSatisfiable,
        Err(http_range::HttpRangeParseError::InvalidRange) => RangeChoice::Whole,
    }
}

fn missing(key: &StorageKey) -> AppError {
    tracing::warn!(key = %key, "a download's object is missing from its storage");
    AppError::NotFound
}

/// Strong, from what changes whenever the object does: its size and modification time.
fn entity_tag(meta: &ObjectMeta) -> EntityTag {
    let modified = meta
        .modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    EntityTag::new_strong(format!("{:x}-{:x}", meta.size, modified))
}

/// `If-None-Match` when present, else `If-Modified-Since` (RFC 9110 13.2.2).
fn not_modified(req: &HttpRequest, etag: &EntityTag, meta: &ObjectMeta) -> bool {
    match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(items)) => items.iter().any(|t| t.weak_eq(etag)),
        None => match req.get_header::<header::IfModifiedSince>() {
            Some(header::IfModifiedSince(since)) => {
                let modified = HttpDate::from(meta.modified);
                // Whole seconds: that is all an HTTP date carries.
                SystemTime::from(modified) <= SystemTime::from(since)
            }
            None => false,
        },
    }
}

/// `If-Range`: the range only applies to the representation the client already has (a date
/// must match exactly, RFC 9110 13.1.5).
fn range_applies(req: &HttpRequest, etag: &EntityTag, meta: &ObjectMeta) -> bool {
    match req.get_header::<header::IfRange>() {
        None => true,
        Some(header::IfRange::EntityTag(tag)) => tag.strong_eq(etag),
        Some(header::IfRange::Date(date)) => {
            SystemTime::from(HttpDate::from(meta.modified)) == SystemTime::from(date)
        }
    }
}

/// `If-Match` when present, else `If-Unmodified-Since` (RFC 9110 13.2.2): 412 as NamedFile
/// answers for local files.
fn precondition_failed(req: &HttpRequest, etag: &EntityTag, meta: &ObjectMeta) -> bool {
    match req.get_header::<header::IfMatch>() {
        Some(header::IfMatch::Any) => false,
        Some(header::IfMatch::Items(items)) => !items.iter().any(|t| t.strong_eq(etag)),
        None => match req.get_header::<header::IfUnmodifiedSince>() {
            Some(header::IfUnmodifiedSince(since)) => {
                SystemTime::from(HttpDate::from(meta.modified)) > SystemTime::from(since)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_are_chosen_as_the_rfc_says() {
        let part = |start, end| RangeChoice::Part(ByteRange { start, end });
        assert_eq!(choose_range("bytes=0-9", 100), part(0, 9));
        assert_eq!(choose_range("bytes=90-", 100), part(90, 99));
        assert_eq!(choose_range("bytes=-10", 100), part(90, 99));
        assert_eq!(choose_range("bytes=50-5000", 100), part(50, 99));
        assert_eq!(choose_range("bytes=-500", 100), part(0, 99));
        assert_eq!(choose_range("bytes=100-", 100), RangeChoice::NotSatisfiable);
        assert_eq!(choose_range("bytes=0-", 0), RangeChoice::NotSatisfiable);
        assert_eq!(choose_range("bytes=-5", 0), RangeChoice::Whole);
        assert_eq!(choose_range("bytes=0-1,5-6", 100), RangeChoice::Whole);
        assert_eq!(choose_range("bytes=9-1", 100), RangeChoice::Whole);
        assert_eq!(choose_range("items=0-1", 100), RangeChoice::Whole);
        assert_eq!(choose_range("", 100), RangeChoice::Whole);
    }

    /// Range headers as clients send them, and as attackers do.
    fn range_header() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            Just(String::new()),
            (0u64..2048).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            Just("18446744073709551616".to_owned()),
            Just("-1".to_owned()),
        ];
        let spec = (number.clone(), number).prop_map(|(a, b)| format!("{a}-{b}"));
        prop_oneof![
            proptest::collection::vec(spec, 1..4)
                .prop_map(|specs| format!("bytes={}", specs.join(","))),
            "\\PC{0,40}",
            "bytes=[0-9, -]{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_chosen_range_always_lies_inside_the_object(
            size in prop_oneof![Just(0u64), 0u64..4096, any::<u64>()],
            range in range_header(),
        ) {
            match choose_range(&range, size) {
                RangeChoice::Part(span) => {
                    prop_assert!(span.start <= span.end, "{range:?} of {size}: {span:?}");
                    prop_assert!(span.end < size, "{range:?} of {size}: {span:?}");
                    prop_assert!(span.byte_count() <= size);
                }
                RangeChoice::Whole | RangeChoice::NotSatisfiable => {}
            }
        }
    }
}
