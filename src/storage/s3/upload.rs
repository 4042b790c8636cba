//! An upload to S3: the bytes stream as a multipart upload to a temporary key under
//! `LOCATION/.tmp/`, one bounded part at a time (small files as one `PutObject`); `finish`
//! makes them a whole temporary object, so a finished upload waiting for the rest of its
//! batch holds no buffer; `commit` copies the finished object to its key (a fresh unique name if the key is taken) and deletes
//! the temporary one. A refused or broken upload aborts the multipart upload, so nothing is
//! left.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rusoto_s3::{
    AbortMultipartUploadRequest, CompleteMultipartUploadRequest, CompletedMultipartUpload,
    CompletedPart, CopyObjectRequest, CreateMultipartUploadRequest, PutObjectRequest, S3,
    UploadPartRequest,
};

use super::bucket::{Bucket, WriteFields};
use super::error::classify;
use crate::storage::{PendingUpload, StorageError, StorageKey};

/// One part of a multipart upload: the most an upload holds in memory. S3 wants at least
/// 5 MiB per part but the last; 8 MiB parts reach 80 GB within S3's 10,000 parts.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Where unfinished uploads live, under the storage's location.
pub(super) const TMP_PREFIX: &str = ".tmp/";
/// Tries at a fresh unique name before giving up.
const MAX_NAME_TRIES: usize = 16;
/// Characters kept as they are in `x-amz-copy-source` (the rest is percent-encoded).
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

pub(super) struct S3Upload {
    bucket: Bucket,
    tmp_key: String,
    buffer: BytesMut,
    multipart: Option<Multipart>,
    /// The temporary object is whole (`finish`): nothing more is written or sent.
    complete: bool,
    /// Committed or aborted: nothing for `Drop` to clean up.
    finished: bool,
}

impl S3Upload {
    /// An upload to a fresh temporary key; nothing is sent before the first full part.
    pub(super) fn start(bucket: Bucket) -> Self {
        Self {
            tmp_key: bucket.object_key(&format!("{TMP_PREFIX}{}", crate::ids::random_id())),
            bucket,
            buffer: BytesMut::new(),
            multipart: None,
            complete: false,
            finished: false,
        }
    }

    /// Sends the buffered bytes as the next part, starting the multipart upload if needed.
    async fn send_part(&mut self) -> Result<(), StorageError> {
        let body = self.buffer.split().freeze();
        if self.multipart.is_none() {
            let WriteFields {
                acl,
                server_side_encryption,
                ssekms_key_id,
            } = self.bucket.write_fields();
            let created = self
                .bucket
                .client
                .create_multipart_upload(CreateMultipartUploadRequest {
                    bucket: self.bucket.name.clone(),
                    key: self.tmp_key.clone(),
                    acl,
                    server_side_encryption,
                    ssekms_key_id,
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
            .bucket
            .client
            .upload_part(UploadPartRequest {
                bucket: self.bucket.name.clone(),
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

    /// Makes the bytes a whole object at the temporary key, once.
    async fn finish_tmp_object(&mut self) -> Result<(), StorageError> {
        if self.complete {
            return Ok(());
        }
        if self.multipart.is_none() {
            let body = self.buffer.split().freeze();
            let WriteFields {
                acl,
                server_side_encryption,
                ssekms_key_id,
            } = self.bucket.write_fields();
            self.bucket
                .client
                .put_object(PutObjectRequest {
                    bucket: self.bucket.name.clone(),
                    key: self.tmp_key.clone(),
                    content_length: Some(body.len() as i64),
                    body: Some(body.to_vec().into()),
                    acl,
                    server_side_encryption,
                    ssekms_key_id,
                    ..Default::default()
                })
                .await
                .map_err(|e| classify(e, &self.tmp_key))?;
            self.complete_tmp_object();
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let Some(multipart) = self.multipart.as_ref() else {
            return Err(StorageError::Unavailable("no multipart upload".into()));
        };
        let completed = self
            .bucket
            .client
            .complete_multipart_upload(CompleteMultipartUploadRequest {
                bucket: self.bucket.name.clone(),
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
        self.complete_tmp_object();
        Ok(())
    }

    fn complete_tmp_object(&mut self) {
        self.complete = true;
        // The allocation goes too: a waiting upload holds no memory.
        self.buffer = BytesMut::new();
    }

    /// Cleans up in a task of its own, so it runs to the end even if the request that waits
    /// for it goes away.
    async fn discard(&mut self) {
        self.finished = true;
        let cleanup = tokio::spawn(discard(
            self.bucket.clone(),
            self.tmp_key.clone(),
            self.multipart.take().map(|m| m.upload_id),
        ));
        let _ = cleanup.await;
    }
}

/// Aborts a multipart upload, or deletes the temporary object; failures are only logged
/// (there is nobody left to tell).
async fn discard(bucket: Bucket, tmp_key: String, upload_id: Option<String>) {
    let aborted = match upload_id {
        Some(upload_id) => bucket
            .client
            .abort_multipart_upload(AbortMultipartUploadRequest {
                bucket: bucket.name.clone(),
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
    let deleted = bucket.delete(&tmp_key).await;
    for result in [aborted, deleted] {
        if let Err(e) = result
            && !e.is_not_found()
        {
            tracing::warn!(key = %tmp_key, error = %e, "could not discard an unfinished S3 upload");
        }
    }
}

#[async_trait]
impl PendingUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        if self.complete {
            return Err(StorageError::Io(std::io::Error::other(
                "a finished upload was written to",
            )));
        }
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

    async fn finish(&mut self) -> Result<(), StorageError> {
        self.finish_tmp_object().await
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
            let target = self.bucket.object_key(key.as_str());
            // Never over another file: a taken key gets a fresh unique name (the configuration
            // refuses `file_overwrite = true`).
            if self.bucket.exists(&target).await? {
                key = key.with_unique_suffix();
                continue;
            }
            let WriteFields {
                acl,
                server_side_encryption,
                ssekms_key_id,
            } = self.bucket.write_fields();
            self.bucket
                .client
                .copy_object(CopyObjectRequest {
                    bucket: self.bucket.name.clone(),
                    key: target.clone(),
                    copy_source: utf8_percent_encode(
                        &format!("{}/{}", self.bucket.name, self.tmp_key),
                        COPY_SOURCE,
                    )
                    .to_string(),
                    acl,
                    server_side_encryption,
                    ssekms_key_id,
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

impl Drop for S3Upload {
    /// A request that ends midway (the client went away) drops its upload without a word:
    /// abort the multipart upload in the background so no parts are left behind.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(discard(
                self.bucket.clone(),
                self.tmp_key.clone(),
                self.multipart.take().map(|m| m.upload_id),
            ));
        }
    }
}
