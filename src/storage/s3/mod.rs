//! The S3 backend, for AWS S3 and S3-compatible servers (path-style addressing).
//!
//! Every rusoto type stays in this folder: rusoto is archived upstream (README, "S3"), and the
//! rest of the app sees only `Storage`. rusoto is built with `native-tls`, which speaks plain
//! `http://` to a local or test endpoint as well as `https://`, and uses the system's OpenSSL
//! rather than rusoto's pinned old rustls.
//!
//! This file sets up the client and implements `Storage`. Downloads are either a presigned GET
//! URL (`querystring_auth`, answered with the headers `delivery` asks for) or a ranged
//! `GetObject` streamed through the app. `upload.rs` streams uploads (multipart, then a copy to
//! the key), `bucket.rs` holds what the storage and its uploads share (the client, object keys
//! under the location, the fields every write sets), and `error.rs` turns rusoto's errors into
//! `StorageError`.

mod bucket;
mod error;
mod upload;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use rusoto_core::credential::{
    AutoRefreshingProvider, AwsCredentials, ChainProvider, ProvideAwsCredentials, StaticProvider,
};
use rusoto_core::{HttpClient, Region};
use rusoto_s3::util::{PreSignedRequest, PreSignedRequestOption};
use rusoto_s3::{GetObjectRequest, HeadObjectRequest, ListObjectsV2Request, S3, S3Client};
use secrecy::ExposeSecret;

use super::{
    ByteRange, ByteStream, DirectUrl, ObjectMeta, PendingUpload, Storage, StorageError, StorageKey,
};
use crate::config::S3Settings;
use bucket::Bucket;
use error::classify;
pub use upload::PART_SIZE;
use upload::{S3Upload, TMP_PREFIX};

/// A temporary object this old is a leftover (see `sweep_leftovers`).
const LEFTOVER_AGE: Duration = Duration::from_secs(60 * 60);

pub struct S3Storage {
    instance: String,
    bucket: Bucket,
    region: Region,
    credentials: Credentials,
    querystring_auth: bool,
    querystring_expire: Duration,
}

/// Where signing keys come from: the configuration, or the usual `AWS_*` variables (and the
/// other places rusoto's chain looks).
#[derive(Clone)]
enum Credentials {
    Static(StaticProvider),
    /// Cached until they expire: the chain may ask the instance metadata service.
    Chain(Box<AutoRefreshingProvider<ChainProvider>>),
}

impl Credentials {
    async fn get(&self) -> Result<AwsCredentials, StorageError> {
        let found = match self {
            Credentials::Static(p) => p.credentials().await,
            Credentials::Chain(p) => p.credentials().await,
        };
        found.map_err(|e| StorageError::Config(format!("no S3 credentials: {e}")))
    }
}

impl S3Storage {
    pub fn open(settings: &S3Settings) -> Result<Self, StorageError> {
        let region = match &settings.endpoint {
            Some(endpoint) => Region::Custom {
                name: settings.region.clone(),
                endpoint: endpoint.trim_end_matches('/').to_owned(),
            },
            None => settings.region.parse().map_err(|_| {
                StorageError::Config(format!("unknown region `{}`", settings.region))
            })?,
        };
        let credentials = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => Credentials::Static(StaticProvider::new_minimal(
                id.clone(),
                secret.expose_secret().to_owned(),
            )),
            _ => {
                let mut chain = ChainProvider::new();
                chain.set_timeout(Duration::from_secs(2));
                let cached = AutoRefreshingProvider::new(chain).map_err(|e| {
                    StorageError::Config(format!("cannot set up S3 credentials: {e}"))
                })?;
                Credentials::Chain(Box::new(cached))
            }
        };
        let http = HttpClient::new()
            .map_err(|e| StorageError::Config(format!("cannot set up TLS for S3: {e}")))?;
        let client = match &credentials {
            Credentials::Static(p) => S3Client::new_with(http, p.clone(), region.clone()),
            Credentials::Chain(p) => S3Client::new_with(http, (**p).clone(), region.clone()),
        };
        Ok(Self {
            instance: crate::ids::random_id(),
            bucket: Bucket::new(
                client,
                settings.bucket.clone(),
                &settings.location,
                settings.encryption.clone(),
            ),
            region,
            credentials,
            querystring_auth: settings.querystring_auth,
            querystring_expire: Duration::from_secs(settings.querystring_expire),
        })
    }
}

#[async_trait]
impl Storage for S3Storage {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn start_upload(&self) -> Result<Box<dyn PendingUpload>, StorageError> {
        Ok(Box::new(S3Upload::start(self.bucket.clone())))
    }

    async fn open(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, StorageError> {
        let object_key = self.bucket.object_key(key.as_str());
        let output = self
            .bucket
            .client
            .get_object(GetObjectRequest {
                bucket: self.bucket.name.clone(),
                key: object_key.clone(),
                range: range.map(|r| format!("bytes={}-{}", r.start, r.end)),
                ..Default::default()
            })
            .await
            .map_err(|e| classify(e, &object_key))?;
        let body = output
            .body
            .ok_or_else(|| StorageError::Unavailable(format!("{object_key}: no body")))?;
        // rusoto hands the body over in the chunks hyper received: bounded, never whole.
        Ok(Box::pin(body.map_err(|e| {
            StorageError::Unavailable(format!("reading from S3 failed: {e}"))
        })))
    }

    async fn metadata(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        let object_key = self.bucket.object_key(key.as_str());
        let head = self
            .bucket
            .client
            .head_object(HeadObjectRequest {
                bucket: self.bucket.name.clone(),
                key: object_key.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| classify(e, &object_key))?;
        let size = head
            .content_length
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| StorageError::Unavailable(format!("{object_key}: no length")))?;
        let modified = head
            .last_modified
            .as_deref()
            .and_then(httpdate_or_iso)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(ObjectMeta { size, modified })
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        let object_key = self.bucket.object_key(key.as_str());
        // S3 answers a delete of a missing key with success; ask first, so callers can say
        // "the object was already gone" as for local files.
        if !self.bucket.exists(&object_key).await? {
            return Err(StorageError::NotFound(object_key));
        }
        self.bucket.delete(&object_key).await
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn open_local(&self, _key: &StorageKey) -> Result<Option<super::LocalObject>, StorageError> {
        Ok(None)
    }

    async fn direct_url(
        &self,
        key: &StorageKey,
        presentation: &DirectUrl<'_>,
    ) -> Result<Option<String>, StorageError> {
        if !self.querystring_auth {
            return Ok(None);
        }
        let object_key = self.bucket.object_key(key.as_str());
        // A URL for an object that is not there would only send the user to S3's error page.
        if !self.bucket.exists(&object_key).await? {
            return Err(StorageError::NotFound(object_key));
        }
        let credentials = self.credentials.get().await?;
        let request = GetObjectRequest {
            bucket: self.bucket.name.clone(),
            key: object_key,
            response_content_disposition: Some(presentation.content_disposition.to_owned()),
            response_content_type: Some(presentation.content_type.to_owned()),
            response_cache_control: Some(presentation.cache_control.to_owned()),
            ..Default::default()
        };
        Ok(Some(request.get_presigned_url(
            &self.region,
            &credentials,
            &PreSignedRequestOption {
                expires_in: self.querystring_expire,
            },
        )))
    }

    fn direct_origin(&self) -> Option<String> {
        if !self.querystring_auth {
            return None;
        }
        // The host a presigned URL names depends on the region and endpoint alone: sign one
        // for a made-up object with made-up credentials and keep its origin.
        let request = GetObjectRequest {
            bucket: self.bucket.name.clone(),
            key: "origin".to_owned(),
            ..Default::default()
        };
        let url = request.get_presigned_url(
            &self.region,
            &AwsCredentials::new("origin", "origin", None, None),
            &PreSignedRequestOption {
                expires_in: Duration::from_secs(1),
            },
        );
        origin_of(&url)
    }

    async fn check(&self) -> Result<(), StorageError> {
        super::probe(self).await
    }

    async fn list(&self, under: &str) -> Result<Vec<super::Listed>, StorageError> {
        use super::Listed;
        let base = self.bucket.object_key("");
        let prefix = match under.trim_end_matches('/') {
            "" => base.clone(),
            folder => self.bucket.object_key(&format!("{folder}/")),
        };
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .bucket
                .client
                .list_objects_v2(ListObjectsV2Request {
                    bucket: self.bucket.name.clone(),
                    prefix: Some(prefix.clone()),
                    continuation_token: token.take(),
                    ..Default::default()
                })
                .await
                .map_err(|e| classify(e, &prefix))?;
            for object in page.contents.unwrap_or_default() {
                let Some(name) = object.key.as_deref().and_then(|k| k.strip_prefix(&base)) else {
                    continue;
                };
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let size = object.size.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
                found.push(match StorageKey::parse(name) {
                    Ok(key) => Listed::Object { key, size },
                    Err(e) => Listed::Unusable {
                        name: name.to_owned(),
                        reason: e.to_string(),
                    },
                });
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated == Some(true) => token = Some(next),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Temporary objects older than an hour: an upload's temporary object lives only between
    /// its completion and its copy, so an old one belongs to a process that died there.
    /// (Unfinished multipart uploads are left to the bucket's lifecycle rule, see README.)
    async fn sweep_leftovers(&self) -> Result<usize, StorageError> {
        let prefix = self.bucket.object_key(TMP_PREFIX);
        let cutoff = SystemTime::now() - LEFTOVER_AGE;
        let mut removed = 0;
        let mut token = None;
        loop {
            let page = self
                .bucket
                .client
                .list_objects_v2(ListObjectsV2Request {
                    bucket: self.bucket.name.clone(),
                    prefix: Some(prefix.clone()),
                    continuation_token: token.take(),
                    ..Default::default()
                })
                .await
                .map_err(|e| classify(e, &prefix))?;
            for object in page.contents.unwrap_or_default() {
                let old = object
                    .last_modified
                    .as_deref()
                    .and_then(httpdate_or_iso)
                    .is_some_and(|t| t < cutoff);
                if let (true, Some(key)) = (old, object.key) {
                    self.bucket.delete(&key).await?;
                    removed += 1;
                }
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated == Some(true) => token = Some(next),
                _ => break,
            }
        }
        Ok(removed)
    }
}

/// S3 lists times as ISO 8601 (`2026-11-27T09:00:00.000Z`), heads them as HTTP dates.
fn httpdate_or_iso(value: &str) -> Option<SystemTime> {
    if let Ok(date) = httpdate::parse_http_date(value) {
        return Some(date);
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
}

/// `scheme://authority` of an absolute URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_and_headed_times_are_both_read() {
        let headed = httpdate_or_iso("Fri, 27 Nov 2026 09:00:00 GMT");
        let listed = httpdate_or_iso("2026-11-27T09:00:00.000Z");
        assert!(headed.is_some());
        assert_eq!(headed, listed);
        assert_eq!(httpdate_or_iso("yesterday"), None);
    }

    #[test]
    fn a_presigned_urls_origin() {
        assert_eq!(
            origin_of("http://127.0.0.1:9000/bucket/a/b.pdf?X-Amz-Signature=1").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            origin_of("https://s3.eu-west-1.amazonaws.com/b/k").as_deref(),
            Some("https://s3.eu-west-1.amazonaws.com")
        );
        assert_eq!(origin_of("/relative/path"), None);
        assert_eq!(origin_of("https:///nohost"), None);
    }

    #[test]
    fn every_region_kind_has_an_origin() {
        let mut settings = crate::config::S3Settings {
            bucket: "bucket".to_owned(),
            location: String::new(),
            region: "us-east-1".to_owned(),
            endpoint: Some("http://127.0.0.1:9000/".to_owned()),
            access_key_id: Some("id".to_owned()),
            secret_access_key: Some("secret".to_owned().into()),
            querystring_auth: true,
            querystring_expire: 300,
            encryption: None,
        };
        let storage = S3Storage::open(&settings).expect("storage");
        assert_eq!(
            storage.direct_origin().as_deref(),
            Some("http://127.0.0.1:9000")
        );
        settings.querystring_auth = false;
        let storage = S3Storage::open(&settings).expect("storage");
        assert_eq!(storage.direct_origin(), None);
        settings.querystring_auth = true;
        settings.endpoint = None;
        settings.region = "eu-west-1".to_owned();
        let storage = S3Storage::open(&settings).expect("storage");
        let origin = storage.direct_origin().expect("an AWS origin");
        assert!(
            origin.starts_with("https://") && origin.contains("eu-west-1"),
            "{origin}"
        );
    }
}
