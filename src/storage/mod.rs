//! Where file bytes live. `Storage` is small on purpose: start an upload (bytes become
//! visible under a key only at commit), open a byte range as a stream, read size and
//! modification time, delete, an optional local path or direct URL, and a health check.
//!
//! Backends turn their own errors into `StorageError`, so callers ask `is_not_found()` and
//! never look at a backend's error types. Nothing outside a backend assumes a local path:
//! `open_local` is an optional shortcut (serving from an open file, or handing the path to
//! a front server), not a requirement.

mod beneath;
pub mod fs;
pub mod s3;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::config::{Settings, StorageSettings};
/// Every method of a storage takes one; the backends name it `super::StorageKey`.
pub use crate::domain::StorageKey;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found: {0}")]
    NotFound(String),
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage is misconfigured: {0}")]
    Config(String),
    #[error("the storage check failed: {0}")]
    Check(String),
    /// The storage server cannot be reached or fails: a 503, and nothing recorded.
    #[error("the storage is unavailable: {0}")]
    Unavailable(String),
    /// Something in the storage stands in the way of the operation (a symlink where the
    /// object's folder should be): nothing was changed, and retrying may succeed.
    #[error("the stored object could not be reached: {0}; nothing was changed")]
    Obstructed(String),
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        match self {
            StorageError::NotFound(_) => true,
            StorageError::Io(e) => e.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }
}

/// How a download presents itself, for a storage that sends it directly (a presigned URL):
/// the header values the storage's server is asked to answer with. `delivery` decides them;
/// a storage only passes them on.
pub struct DirectUrl<'a> {
    pub content_type: &'a str,
    pub content_disposition: &'a str,
    pub cache_control: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub modified: SystemTime,
}

/// An object of a local storage, already open.
#[derive(Debug)]
pub struct LocalObject {
    pub file: std::fs::File,
    /// Where it lies, for a front server that opens it again (`X-Sendfile`) and for logs.
    pub path: PathBuf,
}

/// One entry of a storage's listing (`Storage::list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// An object under a valid key.
    Object { key: StorageKey, size: u64 },
    /// Something no key can name (a symlink, a name with a control character, a folder that
    /// cannot be read): `name` as found, relative to the storage, and why it is left alone.
    Unusable { name: String, reason: String },
}

/// An inclusive byte range `start..=end`, already checked against the object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn byte_count(&self) -> u64 {
        self.end - self.start + 1
    }
}

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// `filesystem` or `s3`, for the admin and logs.
    fn kind(&self) -> &'static str;

    /// Starts an upload whose bytes stay invisible until `PendingUpload::commit`.
    async fn start_upload(&self) -> Result<Box<dyn PendingUpload>, StorageError>;

    /// Streams the object, or the given range of it, in bounded chunks.
    async fn open(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, StorageError>;

    async fn metadata(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError>;

    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError>;

    /// The object opened as a local file, when the backend keeps files locally: opened
    /// beneath the root without following symlinks and checked to be a regular file, so a
    /// caller that reads from `file` reads exactly the object. `None` for remote backends.
    fn open_local(&self, key: &StorageKey) -> Result<Option<LocalObject>, StorageError>;

    /// A URL the client may fetch the object from directly, valid for a short time, when the
    /// storage serves downloads that way (S3 with `querystring_auth`); `None` otherwise.
    async fn direct_url(
        &self,
        _key: &StorageKey,
        _presentation: &DirectUrl<'_>,
    ) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    /// The origin (`scheme://host[:port]`) of the URLs `direct_url` gives, so that pages may
    /// show those objects (a preview follows the download's redirect to it); `None` when
    /// downloads are not sent elsewhere.
    fn direct_origin(&self) -> Option<String> {
        None
    }

    /// Writes, reads back and deletes a probe object.
    async fn check(&self) -> Result<(), StorageError>;

    /// Removes the folder `folder` if nothing is left in it (a file's emptied thumbnails
    /// folder); a storage without folders (S3) has nothing to do.
    async fn remove_empty_folder(&self, _folder: &StorageKey) -> Result<(), StorageError> {
        Ok(())
    }

    /// Every object under the folder `under` (`""`: the whole storage), the temporary area
    /// of uploads aside, sorted by name: what `verify` and `import` look at. Symlinks are
    /// listed as unusable, never followed.
    async fn list(&self, under: &str) -> Result<Vec<Listed>, StorageError>;

    /// This running storage's name for itself, recorded with the keys its uploads reserve.
    fn instance(&self) -> &str;

    /// Whether an upload that `instance` reserved at `started` can no longer finish (its
    /// process is gone), so a start may remove what it left. Without a way to ask whether an
    /// instance lives, an upload an hour old is taken as abandoned: committing takes seconds.
    fn upload_abandoned(&self, instance: &str, started: SystemTime) -> bool {
        instance != self.instance()
            && started < SystemTime::now() - std::time::Duration::from_secs(60 * 60)
    }

    /// Removes what uploads cut short by a crash left behind, once at start; returns how many
    /// leftovers went. Backends that clean up when they open (filesystem) have nothing to do.
    async fn sweep_leftovers(&self) -> Result<usize, StorageError> {
        Ok(0)
    }
}

/// The check every backend runs: write a probe object, read it back, delete it.
pub async fn probe(storage: &dyn Storage) -> Result<(), StorageError> {
    use futures_util::StreamExt;
    let probe = format!("private-media-check {}", crate::ids::random_id());
    let mut upload = storage.start_upload().await?;
    upload.write(Bytes::from(probe.clone())).await?;
    upload.finish().await?;
    let key = StorageKey::parse(&format!(
        "private-media-check/{}.txt",
        crate::ids::random_id()
    ))
    .map_err(|e| StorageError::Check(e.to_string()))?;
    let key = upload.commit(key).await?;
    let mut read = Vec::new();
    let read_back = async {
        let mut stream = storage.open(&key, None).await?;
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk?);
        }
        Ok::<(), StorageError>(())
    }
    .await;
    // The probe goes whatever the read said.
    let deleted = storage.delete(&key).await;
    read_back?;
    deleted?;
    if read != probe.as_bytes() {
        return Err(StorageError::Check(
            "the probe read back differs from what was written".into(),
        ));
    }
    Ok(())
}

#[async_trait]
pub trait PendingUpload: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError>;

    /// Says the last byte has been written: the bytes are made durable where they wait, and
    /// from here until `commit` or `abort` the upload holds no descriptor and no buffer. A
    /// batch keeps every finished file of a request waiting until the whole request has been
    /// read, so this is what keeps one request's descriptors and memory independent of its
    /// number of files. Writing after it is an error; `commit` without it still works.
    async fn finish(&mut self) -> Result<(), StorageError>;

    /// Makes the bytes visible under `key`, or under a fresh unique variant of it when `key`
    /// is taken (never overwriting), and returns the key used.
    async fn commit(self: Box<Self>, key: StorageKey) -> Result<StorageKey, StorageError>;

    /// Discards the bytes. Dropping a pending upload discards them too.
    async fn abort(self: Box<Self>);
}

/// Opens one configured storage.
pub fn open(name: &str, config: &StorageSettings) -> Result<Arc<dyn Storage>, StorageError> {
    match config {
        StorageSettings::Filesystem { root } => {
            Ok(Arc::new(fs::FilesystemStorage::open(root).map_err(
                |e| StorageError::Config(format!("storage `{name}` at {}: {e}", root.display())),
            )?))
        }
        StorageSettings::S3(s3) => Ok(Arc::new(s3::S3Storage::open(s3).map_err(|e| {
            StorageError::Config(format!("storage `{name}` (S3 bucket {}): {e}", s3.bucket))
        })?)),
    }
}

/// `private-media check` for one configured storage. A filesystem storage is inspected
/// without being opened, since opening one sweeps the temp folders of stopped instances;
/// a remote one is opened and probed (a probe object written, read back and deleted).
pub async fn check(name: &str, config: &StorageSettings) -> Result<(), StorageError> {
    match config {
        StorageSettings::Filesystem { root } => fs::FilesystemStorage::inspect(root),
        StorageSettings::S3(_) => open(name, config)?.check().await,
    }
}

/// The configured storages by name.
#[derive(Clone)]
pub struct Storages {
    by_name: BTreeMap<String, Arc<dyn Storage>>,
}

impl Storages {
    pub fn from_settings(settings: &Settings) -> Result<Self, StorageError> {
        let mut by_name: BTreeMap<String, Arc<dyn Storage>> = BTreeMap::new();
        for (name, config) in &settings.storages {
            by_name.insert(name.clone(), open(name, config)?);
        }
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Storage>> {
        self.by_name.get(name)
    }

    /// The origins downloads may be redirected to (`Storage::direct_origin`), sorted, once each.
    pub fn direct_origins(&self) -> Vec<String> {
        let origins: std::collections::BTreeSet<String> = self
            .by_name
            .values()
            .filter_map(|storage| storage.direct_origin())
            .collect();
        origins.into_iter().collect()
    }

    /// The configured storages' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Every storage's `sweep_leftovers`, each result logged.
    pub async fn sweep_leftovers(&self) {
        for (name, storage) in &self.by_name {
            match storage.sweep_leftovers().await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(storage = %name, removed, "removed leftovers of broken uploads")
                }
                Err(e) => {
                    tracing::warn!(storage = %name, error = %e, "could not sweep leftovers of broken uploads")
                }
            }
        }
    }
}
