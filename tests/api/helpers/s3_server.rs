//! A real S3 server for the tests: `s3s` with the `s3s-fs` backend on 127.0.0.1:0, with
//! `SimpleAuth`, so SigV4 and presigned-URL signatures and expiry are really checked. The
//! backend is wrapped to record what each write asked for (s3s-fs ignores encryption
//! headers, and the tests want to see them and the part sizes).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use private_media::config::{S3Encryption, S3Settings};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

pub const BUCKET: &str = "media";
pub const ACCESS_KEY: &str = "AKIDPRIVATEMEDIATEST";
pub const SECRET_KEY: &str = "private-media-test-secret-key-0123456789";
/// The storage's `location`: objects live under this prefix in the bucket.
pub const LOCATION: &str = "site";

/// One write the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// `put`, `create_multipart`, `part` or `copy`.
    pub operation: &'static str,
    pub key: String,
    pub encryption: Option<String>,
    pub kms_key_id: Option<String>,
    pub length: Option<i64>,
    /// The canned ACL asked for.
    pub acl: Option<String>,
}

pub struct S3Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    pub writes: Arc<Mutex<Vec<Write>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl S3Server {
    pub async fn start() -> Self {
        let root = tempfile::tempdir().expect("s3 root");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket");
        let writes = Arc::new(Mutex::new(Vec::new()));
        let backend = Recording {
            inner: s3s_fs::FileSystem::new(root.path()).expect("s3s-fs"),
            writes: Arc::clone(&writes),
        };
        let mut builder = s3s::service::S3ServiceBuilder::new(backend);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind s3");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let accept = tokio::spawn(async move {
            // Owned by this task: stopping it aborts every open connection too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                connections.spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            root,
            writes,
            accept,
        }
    }

    /// Stops listening and cuts every open connection: S3 is gone.
    pub async fn stop(&self) {
        self.accept.abort();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while !self.accept.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }

    /// Storage settings pointing at this server.
    pub fn settings(&self, querystring_auth: bool) -> S3Settings {
        S3Settings {
            bucket: BUCKET.to_owned(),
            location: LOCATION.to_owned(),
            region: "us-east-1".to_owned(),
            endpoint: Some(self.endpoint.clone()),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.into()),
            querystring_auth,
            querystring_expire: 300,
            encryption: None::<S3Encryption>,
        }
    }

    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }

    /// Object keys in the bucket (relative to the bucket), sorted.
    pub fn objects(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk(&self.bucket_dir(), &self.bucket_dir(), &mut found);
        found.sort();
        found
    }

    /// Multipart uploads that were started and neither completed nor aborted.
    pub fn open_multipart_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .expect("s3 root")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }

    pub fn object_bytes(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.bucket_dir().join(key)).expect("object")
    }

    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().expect("writes").clone()
    }
}

fn walk(base: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("dir").filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            walk(base, &path, found);
        } else {
            let relative = path.strip_prefix(base).expect("inside");
            found.push(relative.to_string_lossy().into_owned());
        }
    }
}

/// s3s-fs, recording the writes.
struct Recording {
    inner: s3s_fs::FileSystem,
    writes: Arc<Mutex<Vec<Write>>>,
}

impl Recording {
    fn record(
        &self,
        operation: &'static str,
        key: &str,
        encryption: Option<&ServerSideEncryption>,
        kms_key_id: Option<&String>,
        length: Option<i64>,
        acl: Option<&ObjectCannedACL>,
    ) {
        self.writes.lock().expect("writes").push(Write {
            operation,
            key: key.to_owned(),
            encryption: encryption.map(|e| e.as_str().to_owned()),
            kms_key_id: kms_key_id.cloned(),
            length,
            acl: acl.map(|a| a.as_str().to_owned()),
        });
    }
}

#[async_trait::async_trait]
impl S3 for Recording {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let i = &req.input;
        self.record(
            "put",
            &i.key,
            i.server_side_encryption.as_ref(),
            i.ssekms_key_id.as_ref(),
            i.content_length,
            i.acl.as_ref(),
        );
        self.inner.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let i = &req.input;
        self.record(
            "create_multipart",
            &i.key,
            i.server_side_encryption.as_ref(),
            i.ssekms_key_id.as_ref(),
            None,
            i.acl.as_ref(),
        );
        self.inner.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.record(
            "part",
            &req.input.key,
            None,
            None,
            req.input.content_length,
            None,
        );
        self.inner.upload_part(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let i = &req.input;
        self.record(
            "copy",
            &i.key,
            i.server_side_encryption.as_ref(),
            i.ssekms_key_id.as_ref(),
            None,
            i.acl.as_ref(),
        );
        self.inner.copy_object(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.inner.complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.inner.abort_multipart_upload(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.inner.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.inner.head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }
}
