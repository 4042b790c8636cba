//! The filesystem backend: objects are files under a root folder.
//!
//! Uploads are written to a temp file in `ROOT/.tmp/<instance>/` (same filesystem, so the
//! final step is a rename) and only then moved to their key. Each running instance holds an
//! exclusive lock on its own temp folder; at start, folders whose lock can be taken belong to
//! instances that are gone (crashed, killed), and are removed with their leftover temp files.
//! Several instances can share one root this way without removing each other's uploads.
//! `private-media check` does not open the storage (that would sweep): `inspect` looks
//! without changing anything.
//!
//! This file opens the root and implements `Storage`. `upload.rs` writes an upload to its temp
//! file and links it to its key, `instances.rs` tells live instances' temp folders from dead
//! ones and sweeps the dead, `listing.rs` lists the objects, and `inspect.rs` is `private-media check`'s look at a root.

mod inspect;
mod instances;
mod listing;
mod upload;

use std::fs::File;
use std::io::{ErrorKind, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::beneath::{self, Root, SymlinkInPath};
use super::{
    ByteRange, ByteStream, LocalObject, ObjectMeta, PendingUpload, Storage, StorageError,
    StorageKey,
};
use instances::{instance_alive, sweep_dead_instances};
use upload::FsUpload;

const TMP_DIR: &str = ".tmp";
const LOCK_FILE: &str = "lock";
/// Chunk size when streaming a file out.
const READ_CHUNK: usize = 256 * 1024;

pub struct FilesystemStorage {
    root: Arc<Root>,
    /// This instance's temp folder, held open: temp files are made and linked from this
    /// handle, never by path.
    tmp_dir: Arc<OwnedFd>,
    tmp: PathBuf,
    /// This instance's temp folder name.
    instance: String,
    /// Held for the life of the storage: marks `tmp` as belonging to a live instance.
    _lock: File,
}

impl FilesystemStorage {
    /// Opens (creating if needed) the root, sweeps temp folders of dead instances, and
    /// claims a temp folder for this one.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(root)?;
        let root = Root::open(&root.canonicalize()?)?;
        sweep_dead_instances(&root)?;
        let instance = crate::ids::random_id();
        let tmp_dir = root.open_dir(&format!("{TMP_DIR}/{instance}"), true)?;
        let lock = Root::create_new_in(tmp_dir.as_fd(), LOCK_FILE)?;
        let tmp = root.path().join(TMP_DIR).join(&instance);
        lock.try_lock().map_err(|e| {
            StorageError::Io(std::io::Error::other(format!(
                "cannot lock {}: {e}",
                tmp.display()
            )))
        })?;
        Ok(Self {
            root: Arc::new(root),
            tmp_dir: Arc::new(tmp_dir),
            tmp,
            instance,
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The temp folder of this instance (tests check it is left empty).
    pub fn temp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The object's file, opened beneath the root with no symlink followed, checked to be a
    /// regular file (README: "What the filesystem storage guarantees").
    fn open_object(&self, key: &StorageKey) -> Result<File, StorageError> {
        self.root
            .open_file(key.as_str())
            .map_err(|e| map_io(e, key))
    }
}

/// A storage that closes leaves no temp folder behind (a test, a clean stop).
impl Drop for FilesystemStorage {
    fn drop(&mut self) {
        let _ = beneath::remove_in(self.tmp_dir.as_fd(), LOCK_FILE, false);
        // Fails, and so keeps the folder, if an upload's temp file is somehow still there.
        let _ = self
            .root
            .remove_empty_dir(&format!("{TMP_DIR}/{}", self.instance));
    }
}

fn map_io(e: std::io::Error, key: &StorageKey) -> StorageError {
    if e.kind() == ErrorKind::NotFound {
        StorageError::NotFound(key.to_string())
    } else {
        StorageError::Io(e)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?
}

#[async_trait]
impl Storage for FilesystemStorage {
    fn kind(&self) -> &'static str {
        "filesystem"
    }

    async fn start_upload(&self) -> Result<Box<dyn PendingUpload>, StorageError> {
        let upload = FsUpload::start(Arc::clone(&self.tmp_dir), Arc::clone(&self.root)).await?;
        Ok(Box::new(upload))
    }

    async fn open(
        &self,
        key: &StorageKey,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, StorageError> {
        let mut file = tokio::fs::File::from_std(self.open_object(key)?);
        let stream = match range {
            Some(range) => {
                use tokio::io::AsyncSeekExt;
                file.seek(SeekFrom::Start(range.start)).await?;
                tokio_util::io::ReaderStream::with_capacity(
                    file.take(range.byte_count()),
                    READ_CHUNK,
                )
                .boxed()
            }
            None => tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).boxed(),
        };
        Ok(stream.map(|r| r.map_err(StorageError::Io)).boxed())
    }

    async fn metadata(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        let meta = self.open_object(key)?.metadata()?;
        Ok(ObjectMeta {
            size: meta.len(),
            modified: meta.modified()?,
        })
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        let root = Arc::clone(&self.root);
        let owned = key.clone();
        blocking(move || {
            root.remove_file(owned.as_str()).map_err(|e| {
                if e.get_ref().is_some_and(|inner| inner.is::<SymlinkInPath>()) {
                    // Somebody who can rename entries in the root is at work: say so loudly.
                    tracing::error!(key = %owned, "{e}; the object was not removed");
                    StorageError::Obstructed(format!("{owned}: {e}"))
                } else {
                    map_io(e, &owned)
                }
            })
        })
        .await
    }

    async fn remove_empty_folder(&self, folder: &StorageKey) -> Result<(), StorageError> {
        let root = Arc::clone(&self.root);
        let owned = folder.clone();
        blocking(move || match root.remove_empty_dir(owned.as_str()) {
            Ok(()) => Ok(()),
            // Still in use (a thumbnail being made again), or gone already.
            Err(e)
                if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::DirectoryNotEmpty =>
            {
                Ok(())
            }
            Err(e) => Err(map_io(e, &owned)),
        })
        .await
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    /// An upload is abandoned when its instance's temp folder is gone or unlocked: that
    /// process has ended, however recently.
    fn upload_abandoned(&self, instance: &str, _started: std::time::SystemTime) -> bool {
        // Only names this backend makes (hex) are looked up as folders.
        if instance == self.instance
            || instance.is_empty()
            || !instance.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return false;
        }
        match self.root.open_dir(&format!("{TMP_DIR}/{instance}"), false) {
            Ok(folder) => !instance_alive(folder.as_fd()).unwrap_or(true),
            Err(e) => e.kind() == ErrorKind::NotFound,
        }
    }

    fn open_local(&self, key: &StorageKey) -> Result<Option<LocalObject>, StorageError> {
        let file = self.open_object(key)?;
        Ok(Some(LocalObject {
            file,
            path: self.root.path().join(key.as_str()),
        }))
    }

    async fn check(&self) -> Result<(), StorageError> {
        super::probe(self).await?;
        let _ = self.root.remove_empty_dir("private-media-check");
        Ok(())
    }

    async fn list(&self, under: &str) -> Result<Vec<super::Listed>, StorageError> {
        let (root, under) = (Arc::clone(&self.root), under.to_owned());
        blocking(move || listing::list(&root, &under)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// `pub(super)`: the upload's tests store objects the same way.
    pub(super) async fn store(storage: &FilesystemStorage, key: &str, data: &[u8]) -> StorageKey {
        let mut upload = storage.start_upload().await.unwrap();
        upload.write(Bytes::copy_from_slice(data)).await.unwrap();
        upload
            .commit(StorageKey::parse(key).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_committed_upload_can_be_read_back_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let key = store(&storage, "a/b.txt", b"hello world").await;
        assert_eq!(key.as_str(), "a/b.txt");
        assert_eq!(storage.metadata(&key).await.unwrap().size, 11);
        let mut stream = storage
            .open(&key, Some(ByteRange { start: 6, end: 10 }))
            .await
            .unwrap();
        let mut read = Vec::new();
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(read, b"world");
        storage.delete(&key).await.unwrap();
        assert!(storage.metadata(&key).await.unwrap_err().is_not_found());
        assert!(storage.delete(&key).await.unwrap_err().is_not_found());
        assert_eq!(std::fs::read_dir(storage.temp_dir()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("link.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dir")).unwrap();
        for key in ["link.txt", "dir/secret.txt"] {
            let key = StorageKey::parse(key).unwrap();
            assert!(storage.open(&key, None).await.err().unwrap().is_not_found());
            assert!(storage.open_local(&key).err().unwrap().is_not_found());
        }
    }

    #[tokio::test]
    async fn a_closed_storage_leaves_no_temp_folder() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        store(&storage, "k.txt", b"x").await;
        drop(storage);
        assert_eq!(
            std::fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(),
            0
        );
    }
}
