//! The S3 backend, for AWS S3 and S3-compatible servers (path-style addressing).
//!
//! Every rusoto type stays in this file: rusoto is archived upstream (README, "S3"), and the
//! rest of the app sees only `Storage`. rusoto is built with `native-tls`, which speaks plain
//! `http://` to a local or test endpoint as well as `https://`, and uses the system's OpenSSL
//! rather than rusoto's pinned old rustls.
//!
//! Uploads stream as a multipart upload to a temporary key under `LOCATION/.tmp/`, one bounded
//! part at a time (small files as one `PutObject`); `commit` copies the finished object to its
//! key (a fresh unique name if the key is taken) and deletes the
//! temporary one. A refused or broken upload aborts the multipart upload, so nothing is left.
//! Downloads are either a presigned GET URL (`querystring_auth`) or a ranged `GetObject`
//! streamed through the app.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rusoto_core::credential::{
    AutoRefreshingProvider, AwsCredentials, ChainProvider, ProvideAwsCredentials, StaticProvider,
};
use rusoto_core::{HttpClient, Region, RusotoError, request::BufferedHttpResponse};
use rusoto_s3::util::{PreSignedRequest, PreSignedRequestOption};
use rusoto_s3::{
    AbortMultipartUploadRequest, CompleteMultipartUploadRequest, CompletedMultipartUpload,
    CompletedPart, CopyObjectRequest, CreateMultipartUploadRequest, DeleteObjectRequest,
    GetObjectRequest, HeadObjectRequest, ListObjectsV2Request, PutObjectRequest, S3, S3Client,
    UploadPartRequest,
};

use super::{
    ByteRange, ByteStream, DirectUrl, ObjectMeta, PendingUpload, Storage, StorageError, StorageKey,
};
use crate::config::{S3Encryption, S3Settings};

/// One part of a multipart upload: the most an upload holds in memory. S3 wants at least
/// 5 MiB per part but the last; 8 MiB parts reach 80 GB within S3's 10,000 parts.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Where unfinished uploads live, under the storage's location.
const TMP_PREFIX: &str = ".tmp/";
/// Objects are written private whatever the bucket's default says.
const PRIVATE_ACL: &str = "private";
/// A temporary object this old is a leftover (see `sweep_leftovers`).
const LEFTOVER_AGE: Duration = Duration::from_secs(60 * 60);
/// Tries at a fresh unique name before giving up.
const MAX_NAME_TRIES: usize = 16;
/// Characters kept as they are in `x-amz-copy-source` (the rest is percent-encoded).
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub struct S3Storage {
    instance: String,
    client: S3Client,
    region: Region,
    credentials: Credentials,
    bucket: String,
    /// The key prefix, empty or ending in `/`.
    prefix: String,
    querystring_auth: bool,
    querystring_expire: Duration,
    encryption: Option<S3Encryption>,
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
            (Some(id), Some(secret)) => {
                Credentials::Static(StaticProvider::new_minimal(id.clone(), secret.clone()))
            }
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
        let prefix = if settings.location.is_empty() {
            String::new()
        } else {
            format!("{}/", settings.location)
        };
        Ok(Self {
            instance: crate::ids::random_id(),
            client,
            region,
            credentials,
            bucket: settings.bucket.clone(),
            prefix,
            querystring_auth: settings.querystring_auth,
            querystring_expire: Duration::from_secs(settings.querystring_expire),
            encryption: settings.encryption.clone(),
        })
    }

    fn object_key(&self, key: &StorageKey) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    fn encryption(&self) -> (Option<String>, Option<String>) {
        match &self.encryption {
            None => (None, None),
            Some(S3Encryption::Aes256) => (Some("AES256".to_owned()), None),
            Some(S3Encryption::Kms { key_id }) => {
                (Some("aws:kms".to_owned()), Some(key_id.clone()))
            }
        }
    }

    /// Whether an object exists. A 403 here means credentials that may not read the bucket:
    /// a configuration problem, never "not found".
    async fn exists(&self, object_key: &str) -> Result<bool, StorageError> {
        head_exists(&self.client, &self.bucket, object_key).await
    }
}

#[async_trait]
impl Storage for S3Storage {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn start_upload(&self) -> Result<Box<dyn PendingUpload>, StorageError> {
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            tmp_key: format!("{}{TMP_PREFIX}{}", self.prefix, crate::ids::random_id()),
            storage: StorageView {
                prefix: self.prefix.clone(),
                encryption: self.encryption(),
            },
            buffer: BytesMut::new(),
            multipart: None,
            finished: false,
        }))
    }

    async fn open(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, StorageError> {
        let object_key = self.object_key(key);
        let output = self
            .client
            .get_object(GetObjectRequest {
                bucket: self.bucket.clone(),
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
        let object_key = self.object_key(key);
        let head = self
            .client
            .head_object(HeadObjectRequest {
                bucket: self.bucket.clone(),
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
        let object_key = self.object_key(key);
        // S3 answers a delete of a missing key with success; ask first, so callers can say
        // "the object was already gone" as for local files.
        if !self.exists(&object_key).await? {
            return Err(StorageError::NotFound(object_key));
        }
        delete_object(&self.client, &self.bucket, &object_key).await
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
        let object_key = self.object_key(key);
        // A URL for an object that is not there would only send the user to S3's error page.
        if !self.exists(&object_key).await? {
            return Err(StorageError::NotFound(object_key));
        }
        let credentials = self.credentials.get().await?;
        let request = GetObjectRequest {
            bucket: self.bucket.clone(),
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

    async fn check(&self) -> Result<(), StorageError> {
        super::probe(self).await
    }

    /// Temporary objects older than an hour: an upload's temporary object lives only between
    /// its completion and its copy, so an old one belongs to a process that died there.
    /// (Unfinished multipart uploads are left to the bucket's lifecycle rule, see README.)
    async fn sweep_leftovers(&self) -> Result<usize, StorageError> {
        let prefix = format!("{}{TMP_PREFIX}", self.prefix);
        let cutoff = SystemTime::now() - LEFTOVER_AGE;
        let mut removed = 0;
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2(ListObjectsV2Request {
                    bucket: self.bucket.clone(),
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
                    delete_object(&self.client, &self.bucket, &key).await?;
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

/// What an upload needs to know of its storage.
struct StorageView {
    prefix: String,
    encryption: (Option<String>, Option<String>),
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

struct S3Upload {
    client: S3Client,
    bucket: String,
    tmp_key: String,
    storage: StorageView,
    buffer: BytesMut,
    multipart: Option<Multipart>,
    /// Committed or aborted: nothing for `Drop` to clean up.
    finished: bool,
}

impl S3Upload {
    /// Sends the buffered bytes as the next part, starting the multipart upload if needed.
    async fn send_part(&mut self) -> Result<(), StorageError> {
        let body = self.buffer.split().freeze();
        if self.multipart.is_none() {
            let (sse, kms) = self.storage.encryption.clone();
            let created = self
                .client
                .create_multipart_upload(CreateMultipartUploadRequest {
                    bucket: self.bucket.clone(),
                    key: self.tmp_key.clone(),
                    acl: Some(PRIVATE_ACL.to_owned()),
                    server_side_encryption: sse,
                    ssekms_key_id: kms,
                    ..Default::default()
                })
                .await
                .map_err(|e| classify(e, &self.tmp_key))?;
            let upload_id = created.upload_id.ok_or_else(|| {
                StorageError::Unavailable("S3 started a multipart upload without an id".into())
            })?;
            self.multipart = Some(Multipart {
                upload_id,
                parts: Vec::new(),
            });
        }
        let Some(multipart) = self.multipart.as_mut() else {
            return Err(StorageError::Unavailable("no multipart upload".into()));
        };
        let part_number = multipart.parts.len() as i64 + 1;
        let length = body.len() as i64;
        let uploaded = self
            .client
            .upload_part(UploadPartRequest {
                bucket: self.bucket.clone(),
                key: self.tmp_key.clone(),
                upload_id: multipart.upload_id.clone(),
                part_number,
                content_length: Some(length),
                body: Some(body.to_vec().into()),
                ..Default::default()
            })
            .await
            .map_err(|e| classify(e, &self.tmp_key))?;
        multipart.parts.push(CompletedPart {
            e_tag: uploaded.e_tag,
            part_number: Some(part_number),
        });
        Ok(())
    }

    /// Makes the bytes a whole object at the temporary key.
    async fn finish_tmp_object(&mut self) -> Result<(), StorageError> {
        if self.multipart.is_none() {
            let body = self.buffer.split().freeze();
            let (sse, kms) = self.storage.encryption.clone();
            self.client
                .put_object(PutObjectRequest {
                    bucket: self.bucket.clone(),
                    key: self.tmp_key.clone(),
                    content_length: Some(body.len() as i64),
                    body: Some(body.to_vec().into()),
                    acl: Some(PRIVATE_ACL.to_owned()),
                    server_side_encryption: sse,
                    ssekms_key_id: kms,
                    ..Default::default()
                })
                .await
                .map_err(|e| classify(e, &self.tmp_key))?;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let Some(multipart) = self.multipart.as_ref() else {
            return Err(StorageError::Unavailable("no multipart upload".into()));
        };
        let completed = self
            .client
            .complete_multipart_upload(CompleteMultipartUploadRequest {
                bucket: self.bucket.clone(),
                key: self.tmp_key.clone(),
                upload_id: multipart.upload_id.clone(),
                multipart_upload: Some(CompletedMultipartUpload {
                    parts: Some(multipart.parts.clone()),
                }),
                ..Default::default()
            })
            .await
            .map_err(|e| classify(e, &self.tmp_key))?;
        // S3 may answer 200 with an error in the body, which rusoto reads as an empty output:
        // without an ETag the upload is not complete (and is aborted on discard).
        if completed.e_tag.is_none() {
            return Err(StorageError::Unavailable(
                "S3 did not complete the multipart upload".into(),
            ));
        }
        // Complete: what is left to clean up is the temporary object, not the upload.
        self.multipart = None;
        Ok(())
    }

    /// Cleans up in a task of its own, so it runs to the end even if the request that waits
    /// for it goes away.
    async fn discard(&mut self) {
        self.finished = true;
        let cleanup = tokio::spawn(discard(
            self.client.clone(),
            self.bucket.clone(),
            self.tmp_key.clone(),
            self.multipart.take().map(|m| m.upload_id),
        ));
        let _ = cleanup.await;
    }
}

/// Aborts a multipart upload, or deletes the temporary object; failures are only logged
/// (there is nobody left to tell).
async fn discard(client: S3Client, bucket: String, tmp_key: String, upload_id: Option<String>) {
    let aborted = match upload_id {
        Some(upload_id) => client
            .abort_multipart_upload(AbortMultipartUploadRequest {
                bucket: bucket.clone(),
                key: tmp_key.clone(),
                upload_id,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| classify(e, &tmp_key)),
        None => Ok(()),
    };
    // Also when an upload was aborted: its completion may have happened with the answer lost.
    let deleted = delete_object(&client, &bucket, &tmp_key).await;
    for result in [aborted, deleted] {
        if let Err(e) = result
            && !e.is_not_found()
        {
            tracing::warn!(key = %tmp_key, error = %e, "could not discard an unfinished S3 upload");
        }
    }
}

async fn delete_object(client: &S3Client, bucket: &str, key: &str) -> Result<(), StorageError> {
    client
        .delete_object(DeleteObjectRequest {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|e| classify(e, key))
}

#[async_trait]
impl PendingUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        let mut rest = chunk;
        while !rest.is_empty() {
            let room = PART_SIZE - self.buffer.len();
            let take = room.min(rest.len());
            self.buffer.extend_from_slice(&rest.split_to(take));
            if self.buffer.len() == PART_SIZE {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, key: StorageKey) -> Result<StorageKey, StorageError> {
        let result = self.commit_inner(key).await;
        self.discard().await;
        result
    }

    async fn abort(mut self: Box<Self>) {
        self.discard().await;
    }
}

impl S3Upload {
    async fn commit_inner(&mut self, key: StorageKey) -> Result<StorageKey, StorageError> {
        self.finish_tmp_object().await?;
        let mut key = key;
        for _ in 0..MAX_NAME_TRIES {
            let target = format!("{}{}", self.storage.prefix, key.as_str());
            // Never over another file: a taken key gets a fresh unique name (the configuration
            // refuses `file_overwrite = true`).
            if head_exists(&self.client, &self.bucket, &target).await? {
                key = key.with_unique_suffix();
                continue;
            }
            let (sse, kms) = self.storage.encryption.clone();
            self.client
                .copy_object(CopyObjectRequest {
                    bucket: self.bucket.clone(),
                    key: target.clone(),
                    copy_source: utf8_percent_encode(
                        &format!("{}/{}", self.bucket, self.tmp_key),
                        COPY_SOURCE,
                    )
                    .to_string(),
                    acl: Some(PRIVATE_ACL.to_owned()),
                    server_side_encryption: sse,
                    ssekms_key_id: kms,
                    ..Default::default()
                })
                .await
                .map_err(|e| classify(e, &target))?;
            return Ok(key);
        }
        Err(StorageError::Unavailable(
            "no free name found for the upload".into(),
        ))
    }
}

async fn head_exists(client: &S3Client, bucket: &str, key: &str) -> Result<bool, StorageError> {
    let head = client
        .head_object(HeadObjectRequest {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            ..Default::default()
        })
        .await;
    match head {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = classify(e, key);
            if e.is_not_found() { Ok(false) } else { Err(e) }
        }
    }
}

impl Drop for S3Upload {
    /// A request that ends midway (the client went away) drops its upload without a word:
    /// abort the multipart upload in the background so no parts are left behind.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(discard(
                self.client.clone(),
                self.bucket.clone(),
                self.tmp_key.clone(),
                self.multipart.take().map(|m| m.upload_id),
            ));
        }
    }
}

/// Turns rusoto's errors into ours: a bare 404 is "not found", 401/403 a configuration
/// problem (wrong keys, or keys without rights on the bucket), and an unreachable server
/// or a 5xx "unavailable" (503 to the user, and nothing recorded).
fn classify<E: std::fmt::Display + std::fmt::Debug>(
    error: RusotoError<E>,
    object_key: &str,
) -> StorageError {
    match error {
        RusotoError::Service(e) => {
            let text = e.to_string();
            if format!("{e:?}").starts_with("NoSuchKey") {
                StorageError::NotFound(object_key.to_owned())
            } else {
                StorageError::Unavailable(format!("S3 refused: {text}"))
            }
        }
        RusotoError::HttpDispatch(e) => StorageError::Unavailable(format!("cannot reach S3: {e}")),
        RusotoError::Credentials(e) => StorageError::Config(format!("no S3 credentials: {e}")),
        RusotoError::Unknown(response) => from_status(&response, object_key),
        RusotoError::Validation(e) | RusotoError::ParseError(e) => {
            StorageError::Unavailable(format!("S3 answered something unexpected: {e}"))
        }
        RusotoError::Blocking => StorageError::Unavailable("S3 call failed".into()),
    }
}

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
