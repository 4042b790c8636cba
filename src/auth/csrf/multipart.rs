//! Finding the CSRF token in a `multipart/form-data` body before any file of it is read.
//!
//! Forms put `csrf_token` first. Text fields before it are read and skipped (the caller bounds
//! how much is read in all); a file part before it, a token that is too long, or a body that
//! ends without one is refused.

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};

use super::FIELD;

/// Tokens are 43 characters; anything much longer is not one.
const MAX_TOKEN: usize = 256;

/// Why no token was found; all of them answer 403, the reason goes to the debug log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoToken {
    #[error("a file came before the CSRF token")]
    FileFirst,
    #[error("the CSRF token field is too long")]
    TooLong,
    #[error("the CSRF token is not UTF-8")]
    NotUtf8,
    #[error("the form could not be read up to its CSRF token: {0}")]
    Unreadable(String),
    #[error("the form has no CSRF token")]
    Missing,
}

/// The value of the first `csrf_token` field of the multipart body in `body`.
pub async fn find_token<S>(headers: &HeaderMap, body: S) -> Result<String, NoToken>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + 'static,
{
    let unreadable = |e: actix_multipart::MultipartError| NoToken::Unreadable(e.to_string());
    let mut multipart = Multipart::new(headers, body);
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(unreadable)?;
        // A file part: the upload's `file` field whatever its parameters, or any part with a
        // `filename`, `filename*` or continuation (`filename*0`) parameter.
        let names_a_file = field.name() == Some(UPLOAD_FILE_FIELD)
            || field.content_disposition().is_some_and(|d| {
                d.get_filename().is_some()
                    || d.get_filename_ext().is_some()
                    || d.to_string().to_ascii_lowercase().contains("filename")
            });
        if names_a_file {
            return Err(NoToken::FileFirst);
        }
        let is_token = field.name() == Some(FIELD);
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(unreadable)?;
            if is_token {
                if value.len() + chunk.len() > MAX_TOKEN {
                    return Err(NoToken::TooLong);
                }
                value.extend_from_slice(&chunk);
            }
        }
        if is_token {
            return String::from_utf8(value).map_err(|_| NoToken::NotUtf8);
        }
    }
    Err(NoToken::Missing)
}

/// The upload form's file field: a part by this name is a file even without a file name.
const UPLOAD_FILE_FIELD: &str = "file";

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{CONTENT_TYPE, HeaderValue};

    const BOUNDARY: &str = "b0undary";

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=b0undary"),
        );
        headers
    }

    fn text(name: &str, value: &str) -> String {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    }

    fn file(name: &str) -> String {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nbytes\r\n"
        )
    }

    async fn find(parts: &[String]) -> Result<String, NoToken> {
        let body = format!("{}--{BOUNDARY}--\r\n", parts.concat());
        let stream = futures_util::stream::once(async move { Ok(Bytes::from(body)) });
        find_token(&headers(), stream).await
    }

    #[actix_web::test]
    async fn the_token_is_found_after_text_fields() {
        let found = find(&[text("title", "x"), text(FIELD, "tok"), file("a.txt")]).await;
        assert_eq!(found, Ok("tok".to_owned()));
    }

    #[actix_web::test]
    async fn a_file_before_the_token_is_refused() {
        let found = find(&[file("a.txt"), text(FIELD, "tok")]).await;
        assert_eq!(found, Err(NoToken::FileFirst));
    }

    #[actix_web::test]
    async fn a_file_named_only_by_filename_star_before_the_token_is_refused() {
        let sneaky = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename*=UTF-8''sneaky.bin\r\n\r\nbytes\r\n"
        );
        let found = find(&[sneaky, text(FIELD, "tok")]).await;
        assert_eq!(found, Err(NoToken::FileFirst));
    }

    #[actix_web::test]
    async fn a_file_field_without_a_file_name_or_with_a_continued_one_is_refused() {
        for disposition in [
            "form-data; name=\"file\"",
            "form-data; name=\"other\"; filename*0=\"sneaky.bin\"",
        ] {
            let part =
                format!("--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\nbytes\r\n");
            let found = find(&[part, text(FIELD, "tok")]).await;
            assert_eq!(found, Err(NoToken::FileFirst), "{disposition}");
        }
    }

    #[actix_web::test]
    async fn a_form_without_a_token_is_refused() {
        assert_eq!(find(&[text("x", "y")]).await, Err(NoToken::Missing));
        assert_eq!(find(&[]).await, Err(NoToken::Missing));
    }

    #[actix_web::test]
    async fn an_overlong_token_is_refused() {
        let found = find(&[text(FIELD, &"t".repeat(MAX_TOKEN + 1))]).await;
        assert_eq!(found, Err(NoToken::TooLong));
    }

    #[actix_web::test]
    async fn a_body_that_is_not_multipart_is_refused() {
        let stream = futures_util::stream::once(async { Ok(Bytes::from_static(b"garbage")) });
        let found = find_token(&headers(), stream).await;
        assert!(
            matches!(found, Err(NoToken::Unreadable(_) | NoToken::Missing)),
            "{found:?}"
        );
    }
}
