//! The filesystem backend: objects are files under a root folder.
//!
//! Uploads are written to a temp file in `ROOT/.tmp/<instance>/` (same filesystem, so the
//! final step is a rename) and only then moved to their key. Each running instance holds an
//! exclusive lock on its own temp folder; at start, folders whose lock can be taken belong to
//! instances that are gone (crashed, killed), and are removed with their leftover temp files.
//! Several instances can share one root this way without removing each other's uploads.
//! `private-media check` does not open the storage (that would sweep): `inspect` looks
//! without changing anything.

use std::fs::File;
use std::io::{ErrorKind, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::beneath::{self, Root, SymlinkInPath};
use super::{
    ByteRange, ByteStream, LocalObject, ObjectMeta, PendingUpload, Storage, StorageError,
    StorageKey,
};

const TMP_DIR: &str = ".tmp";
const LOCK_FILE: &str = "lock";
/// Bytes gathered before one write to disk, off the async threads. Every upload in flight
/// holds this much: with 256 KiB a 1 GiB upload was as fast as with 1 MiB, at a quarter of
/// the memory per upload (bench/README.md, "Memory").
const WRITE_BUFFER: usize = 256 * 1024;
/// What an upload may hold before it is given the whole write buffer.
const SMALL_BUFFER: usize = 64 * 1024;
/// Chunk size when streaming a file out.
const READ_CHUNK: usize = 256 * 1024;
/// Tries at a fresh unique name before giving up (each clash is a 1 in 36^7 event after
/// the first, so more than a few means something else is wrong).
const MAX_NAME_TRIES: usize = 16;

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

    /// What `open` needs of an existing root, checked without changing anything in it (for
    /// `private-media check`, which must not touch a data dir in use): the root is a folder
    /// entries can be made in, and so is its temp area if there is one, a real folder. Nothing
    /// is swept, created or written: the temp folders of stopped instances stay for the next
    /// start to remove, and a missing temp area is made by that start.
    pub fn inspect(root: &Path) -> Result<(), StorageError> {
        let root = Root::open(&root.canonicalize()?)?;
        let top = root.open_dir("", false)?;
        let unwritable =
            |path: &Path| StorageError::Check(format!("{} cannot be written to", path.display()));
        if !beneath::is_writable(top.as_fd())? {
            return Err(unwritable(root.path()));
        }
        let tmp = root.path().join(TMP_DIR);
        match beneath::kind_in(top.as_fd(), TMP_DIR)? {
            None => Ok(()),
            Some(rustix::fs::FileType::Directory) => {
                let dir = beneath::open_subdir(top.as_fd(), TMP_DIR)?;
                if beneath::is_writable(dir.as_fd())? {
                    Ok(())
                } else {
                    Err(unwritable(&tmp))
                }
            }
            // `open` refuses these too (a symlink is never followed): say so before a start.
            Some(_) => Err(StorageError::Check(format!(
                "{} is not a folder",
                tmp.display()
            ))),
        }
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

/// Whether the instance owning the temp folder `folder` still runs: it holds the lock.
fn instance_alive(folder: BorrowedFd<'_>) -> Result<bool, std::io::Error> {
    let lock = match beneath::open_file_in(folder, LOCK_FILE) {
        Ok(lock) => lock,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(matches!(
        lock.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    ))
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

/// Removes the temp folders of instances that are gone, and anything else in the temp area.
/// Every step works on directory handles opened beneath the root without following a
/// symlink: a `.tmp` or an instance folder swapped for a symlink makes this fail (or removes
/// the symlink itself), never removes anything elsewhere.
fn sweep_dead_instances(root: &Root) -> Result<(), StorageError> {
    let tmp = root.open_dir(TMP_DIR, true)?;
    for (name, is_dir) in beneath::entries(tmp.as_fd())? {
        if !is_dir {
            beneath::remove_in(tmp.as_fd(), &name, false)?;
            continue;
        }
        let folder = beneath::open_subdir(tmp.as_fd(), &name)?;
        if instance_alive(folder.as_fd())? {
            continue;
        }
        let mut leftovers = 0usize;
        let mut kept = 0usize;
        for (entry, entry_is_dir) in beneath::entries(folder.as_fd())? {
            if entry_is_dir {
                // We never make folders in there: leave whatever it is for a person to see.
                kept += 1;
                continue;
            }
            beneath::remove_in(folder.as_fd(), &entry, false)?;
            if entry != LOCK_FILE {
                leftovers += 1;
            }
        }
        if kept == 0 {
            beneath::remove_in(tmp.as_fd(), &name, true)?;
        } else {
            tracing::warn!(folder = %name, kept, "a dead instance's temp folder holds folders; left in place");
        }
        if leftovers > 0 {
            tracing::info!(folder = %name, leftovers, "removed temp files of an earlier run");
        }
    }
    Ok(())
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
        let tmp_dir = Arc::clone(&self.tmp_dir);
        let temp = blocking(move || TempFile::create(tmp_dir)).await?;
        Ok(Box::new(FsUpload {
            temp: Some(temp),
            // Grown only as bytes arrive: a slow or stalled upload holds little.
            buffer: BytesMut::new(),
            root: Arc::clone(&self.root),
        }))
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
}

/// A temp file in this instance's temp folder, removed when dropped unless it was linked to
/// its key (and then removed all the same: the key keeps the data).
struct TempFile {
    file: File,
    dir: Arc<OwnedFd>,
    name: String,
}

impl TempFile {
    fn create(dir: Arc<OwnedFd>) -> Result<Self, StorageError> {
        for _ in 0..MAX_NAME_TRIES {
            let name = format!("upload-{}", crate::ids::random_id());
            match Root::create_new_in(dir.as_fd(), &name) {
                Ok(file) => return Ok(Self { file, dir, name }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StorageError::Io(std::io::Error::other(
            "no free temp file name",
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = rustix::fs::unlinkat(
            self.dir.as_fd(),
            self.name.as_str(),
            rustix::fs::AtFlags::empty(),
        );
    }
}

struct FsUpload {
    /// `None` only while a write is running on the blocking pool.
    temp: Option<TempFile>,
    buffer: BytesMut,
    root: Arc<Root>,
}

impl FsUpload {
    fn take_temp(&mut self) -> Result<TempFile, StorageError> {
        self.temp
            .take()
            .ok_or_else(|| StorageError::Io(std::io::Error::other("upload already failed")))
    }

    async fn flush(&mut self) -> Result<(), StorageError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut temp = self.take_temp()?;
        let data = self.buffer.split().freeze();
        let temp = blocking(move || {
            temp.file.write_all(&data)?;
            Ok(temp)
        })
        .await?;
        self.temp = Some(temp);
        Ok(())
    }
}

#[async_trait]
impl PendingUpload for FsUpload {
    async fn write(&mut self, mut chunk: Bytes) -> Result<(), StorageError> {
        while !chunk.is_empty() {
            // Past the first few chunks, take the whole buffer at once rather than doubling up to it.
            if self.buffer.len() + chunk.len() > SMALL_BUFFER
                && self.buffer.capacity() < WRITE_BUFFER
            {
                self.buffer.reserve(WRITE_BUFFER - self.buffer.len());
            }
            // Filled to its size and never past it: a chunk that ran over would make `BytesMut`
            // double the allocation, and every upload in flight would hold twice the buffer.
            let room = WRITE_BUFFER - self.buffer.len();
            let part = chunk.split_to(room.min(chunk.len()));
            self.buffer.extend_from_slice(&part);
            if self.buffer.len() >= WRITE_BUFFER {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, key: StorageKey) -> Result<StorageKey, StorageError> {
        self.flush().await?;
        let temp = self.take_temp()?;
        let root = Arc::clone(&self.root);
        blocking(move || {
            temp.file.sync_all()?;
            let mut key = key;
            for _ in 0..MAX_NAME_TRIES {
                // A hard link never replaces: two uploads of one name can never overwrite
                // each other, and the key appears complete or not at all.
                match root.link_into(temp.dir.as_fd(), &temp.name, key.as_str()) {
                    Ok(()) => return Ok(key),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        key = key.with_unique_suffix();
                    }
                    Err(e) => return Err(map_io(e, &key)),
                }
            }
            Err(StorageError::Io(std::io::Error::other(
                "no free name found for the upload",
            )))
        })
        .await
    }

    async fn abort(self: Box<Self>) {
        // Dropping the temp file removes it; do it off the async threads.
        let temp = self.temp;
        let _ = tokio::task::spawn_blocking(move || drop(temp)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(storage: &FilesystemStorage, key: &str, data: &[u8]) -> StorageKey {
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
    async fn the_write_buffer_never_grows_past_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let mut upload = FsUpload {
            temp: Some(TempFile::create(Arc::clone(&storage.tmp_dir)).unwrap()),
            buffer: BytesMut::new(),
            root: Arc::clone(&storage.root),
        };
        // Chunks that do not divide the buffer's size, as a multipart body's do not.
        let data: Vec<u8> = (0..3 * WRITE_BUFFER + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        for chunk in data.chunks(SMALL_BUFFER + 7) {
            upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
            assert!(
                upload.buffer.capacity() <= WRITE_BUFFER,
                "buffer grew to {} bytes",
                upload.buffer.capacity()
            );
        }
        let key = Box::new(upload)
            .commit(StorageKey::parse("big.bin").unwrap())
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join(key.as_str())).unwrap(), data);
    }

    #[tokio::test]
    async fn a_taken_key_gets_a_fresh_name() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let first = store(&storage, "x.txt", b"one").await;
        let second = store(&storage, "x.txt", b"two").await;
        assert_ne!(first, second);
        assert_eq!(std::fs::read(dir.path().join("x.txt")).unwrap(), b"one");
        assert_eq!(
            std::fs::read(dir.path().join(second.as_str())).unwrap(),
            b"two"
        );
    }

    #[tokio::test]
    async fn an_aborted_or_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let mut upload = storage.start_upload().await.unwrap();
        upload
            .write(Bytes::from(vec![1u8; 3 * WRITE_BUFFER]))
            .await
            .unwrap();
        upload.abort().await;
        let mut dropped = storage.start_upload().await.unwrap();
        dropped
            .write(Bytes::from(vec![1u8; 3 * WRITE_BUFFER]))
            .await
            .unwrap();
        drop(dropped);
        // Only the lock file remains in this instance's temp folder.
        assert_eq!(std::fs::read_dir(storage.temp_dir()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn temp_folders_of_dead_instances_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = FilesystemStorage::open(dir.path()).unwrap();
        let mut in_flight = live.start_upload().await.unwrap();
        in_flight
            .write(Bytes::from_static(b"partial"))
            .await
            .unwrap();
        let dead = dir.path().join(TMP_DIR).join("deadbeef");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("tmp123"), b"left over").unwrap();
        std::fs::write(dead.join(LOCK_FILE), b"").unwrap();

        let _second = FilesystemStorage::open(dir.path()).unwrap();
        assert!(!dead.exists(), "a dead instance's temp folder was kept");
        assert_eq!(
            std::fs::read_dir(live.temp_dir()).unwrap().count(),
            2,
            "a live instance's upload was removed"
        );
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
    async fn the_sweep_never_removes_anything_outside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("victim.txt"), b"keep").unwrap();
        std::fs::create_dir_all(outside.path().join("deadbeef")).unwrap();
        std::fs::write(outside.path().join("deadbeef/lock"), b"").unwrap();
        std::fs::write(outside.path().join("deadbeef/notes.txt"), b"keep").unwrap();

        // `.tmp` itself a symlink: the start fails, nothing outside goes.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(TMP_DIR)).unwrap();
        assert!(FilesystemStorage::open(dir.path()).is_err());

        // Symlinks inside `.tmp`: removed themselves, never followed.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(TMP_DIR)).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(TMP_DIR).join("linked"))
            .unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("deadbeef"),
            dir.path().join(TMP_DIR).join("cafe"),
        )
        .unwrap();
        let _storage = FilesystemStorage::open(dir.path()).unwrap();
        assert!(!dir.path().join(TMP_DIR).join("linked").exists());
        for kept in ["victim.txt", "deadbeef/lock", "deadbeef/notes.txt"] {
            assert_eq!(
                std::fs::read(outside.path().join(kept)).unwrap(),
                if kept.ends_with("lock") {
                    &b""[..]
                } else {
                    &b"keep"[..]
                },
                "{kept}"
            );
        }
    }

    #[test]
    fn inspecting_changes_nothing_and_finds_what_a_start_would_refuse() {
        let dir = tempfile::tempdir().unwrap();
        FilesystemStorage::inspect(dir.path()).unwrap();
        assert!(!dir.path().join(TMP_DIR).exists(), "a temp area was made");

        let dead = dir.path().join(TMP_DIR).join("deadbeef");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join(LOCK_FILE), b"").unwrap();
        std::fs::write(dead.join("upload-1"), b"left over").unwrap();
        FilesystemStorage::inspect(dir.path()).unwrap();
        assert_eq!(std::fs::read(dead.join("upload-1")).unwrap(), b"left over");
        assert_eq!(
            std::fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(),
            1
        );

        let outside = tempfile::tempdir().unwrap();
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), linked.path().join(TMP_DIR)).unwrap();
        let refused = FilesystemStorage::inspect(linked.path()).unwrap_err();
        assert!(refused.to_string().contains("is not a folder"), "{refused}");
        assert!(FilesystemStorage::open(linked.path()).is_err());

        assert!(FilesystemStorage::inspect(&dir.path().join("missing")).is_err());
        assert!(!dir.path().join("missing").exists());
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
