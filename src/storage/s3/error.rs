//! rusoto's errors turned into ours, read from their types: a call's own error variants, the
//! status code of an answer rusoto did not recognise, or the kind of failure (dispatch,
//! credentials, an unparsable answer). Nothing is read from an error's `Debug` text.

use rusoto_core::RusotoError;
use rusoto_core::request::BufferedHttpResponse;
use rusoto_s3::{
    AbortMultipartUploadError, CompleteMultipartUploadError, CopyObjectError,
    CreateMultipartUploadError, DeleteObjectError, GetObjectError, HeadObjectError,
    ListObjectsV2Error, PutObjectError, UploadPartError,
};

use crate::storage::StorageError;

/// The error type of one S3 call, as rusoto parses it from S3's answer.
pub(super) trait ServiceError: std::fmt::Display {
    /// Whether S3 said the object does not exist (`NoSuchKey`).
    fn is_no_such_key(&self) -> bool;
}

/// `ServiceError` for a call's error type, from an exhaustive match on its variants: each
/// variant is listed with whether it means "no such key", so a variant rusoto adds is a
/// compile error here rather than a silent "unavailable".
macro_rules! service_error {
    ($error:ident { $($variant:ident => $no_such_key:expr),* $(,)? }) => {
        impl ServiceError for $error {
            fn is_no_such_key(&self) -> bool {
                match *self {
                    $($error::$variant(_) => $no_such_key,)*
                }
            }
        }
    };
}

service_error!(GetObjectError { InvalidObjectState => false, NoSuchKey => true });
service_error!(HeadObjectError { NoSuchKey => true });
service_error!(AbortMultipartUploadError { NoSuchUpload => false });
service_error!(CopyObjectError { ObjectNotInActiveTierError => false });
service_error!(ListObjectsV2Error { NoSuchBucket => false });
service_error!(CompleteMultipartUploadError {});
service_error!(CreateMultipartUploadError {});
service_error!(DeleteObjectError {});
service_error!(PutObjectError {});
service_error!(UploadPartError {});

/// Turns rusoto's errors into ours: a bare 404 is "not found", 401/403 a configuration
/// problem (wrong keys, or keys without rights on the bucket), and an unreachable server
/// or a 5xx "unavailable" (503 to the user, and nothing recorded).
pub(super) fn classify<E: ServiceError>(error: RusotoError<E>, object_key: &str) -> StorageError {
    match error {
        RusotoError::Service(e) if e.is_no_such_key() => {
            StorageError::NotFound(object_key.to_owned())
        }
        RusotoError::Service(e) => StorageError::Unavailable(format!("S3 refused: {e}")),
        RusotoError::HttpDispatch(e) => StorageError::Unavailable(format!("cannot reach S3: {e}")),
        RusotoError::Credentials(e) => StorageError::Config(format!("no S3 credentials: {e}")),
        RusotoError::Unknown(response) => from_status(&response, object_key),
        RusotoError::Validation(e) | RusotoError::ParseError(e) => {
            StorageError::Unavailable(format!("S3 answered something unexpected: {e}"))
        }
        RusotoError::Blocking => StorageError::Unavailable("S3 call failed".into()),
    }
}

/// An answer rusoto did not turn into a call's error: by its status code, and the `<Code>` of
/// S3's error document when it has one (a `HEAD` answer has no body).
fn from_status(response: &BufferedHttpResponse, object_key: &str) -> StorageError {
    let status = response.status.as_u16();
    let body = String::from_utf8_lossy(&response.body);
    let code = body
        .split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap_or("");
    match status {
        404 if code.is_empty() || code == "NoSuchKey" => {
            StorageError::NotFound(object_key.to_owned())
        }
        401 | 403 => StorageError::Config(format!(
            "S3 refused access to {object_key} ({status} {code}): check the credentials and \
             that they may read, write and list the bucket"
        )),
        _ => StorageError::Unavailable(format!("S3 answered {status} {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusoto_core::HttpDispatchError;
    use rusoto_core::credential::CredentialsError;

    const KEY: &str = "media/a.txt";

    fn answer(status: u16, body: &str) -> RusotoError<GetObjectError> {
        RusotoError::Unknown(BufferedHttpResponse {
            status: http::StatusCode::from_u16(status).expect("a status code"),
            body: body.to_owned().into(),
            headers: Default::default(),
        })
    }

    fn error_document(code: &str) -> String {
        format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
    }

    #[test]
    fn no_such_key_is_not_found_and_other_service_errors_are_unavailable() {
        let missing = RusotoError::Service(GetObjectError::NoSuchKey("gone".into()));
        assert!(matches!(classify(missing, KEY), StorageError::NotFound(k) if k == KEY));
        let missing = RusotoError::Service(HeadObjectError::NoSuchKey("gone".into()));
        assert!(classify(missing, KEY).is_not_found());
        let archived = RusotoError::Service(GetObjectError::InvalidObjectState("cold".into()));
        assert!(
            matches!(classify(archived, KEY), StorageError::Unavailable(m) if m == "S3 refused: cold")
        );
        let no_upload = RusotoError::Service(AbortMultipartUploadError::NoSuchUpload("u".into()));
        assert!(classify(no_upload, KEY).is_unavailable());
        let no_bucket = RusotoError::Service(ListObjectsV2Error::NoSuchBucket("b".into()));
        assert!(classify(no_bucket, KEY).is_unavailable());
    }

    #[test]
    fn unrecognised_answers_are_classified_by_status_and_code() {
        assert!(classify(answer(404, ""), KEY).is_not_found());
        assert!(classify(answer(404, &error_document("NoSuchKey")), KEY).is_not_found());
        assert!(classify(answer(404, &error_document("NoSuchBucket")), KEY).is_unavailable());
        for status in [401, 403] {
            let error = classify(answer(status, &error_document("AccessDenied")), KEY);
            assert!(
                matches!(&error, StorageError::Config(m) if m.contains(KEY)),
                "{error}"
            );
        }
        let error = classify(answer(503, &error_document("SlowDown")), KEY);
        assert!(
            matches!(&error, StorageError::Unavailable(m) if m == "S3 answered 503 SlowDown"),
            "{error}"
        );
        assert!(classify(answer(500, ""), KEY).is_unavailable());
    }

    #[test]
    fn transport_credential_and_parse_failures_keep_their_kind() {
        let unreachable: RusotoError<PutObjectError> =
            RusotoError::HttpDispatch(HttpDispatchError::new("connection refused".into()));
        assert!(classify(unreachable, KEY).is_unavailable());
        let no_keys: RusotoError<PutObjectError> =
            RusotoError::Credentials(CredentialsError::new("none found"));
        assert!(matches!(classify(no_keys, KEY), StorageError::Config(_)));
        let garbled: RusotoError<PutObjectError> = RusotoError::ParseError("<".into());
        assert!(classify(garbled, KEY).is_unavailable());
        let invalid: RusotoError<PutObjectError> = RusotoError::Validation("key".into());
        assert!(classify(invalid, KEY).is_unavailable());
        assert!(classify(RusotoError::<PutObjectError>::Blocking, KEY).is_unavailable());
    }
}
