//! An upload in flight: bytes gathered in a bounded buffer, written to a temp file in this
//! instance's temp folder off the async threads, and at commit hard-linked to their key.
//!
//! Once the last byte is in (`finish`), the temp file is synced and closed: a batch keeps
//! many finished uploads waiting for the rest of its request, and each holding its file open
//! made one request hold a descriptor per file. `commit` opens the temp file again from the
//! temp folder's handle without following a symlink, checks it is the very file written
//! (device, inode, size, change time), and links it while holding it open, so the key gets
//! that file or nothing.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

use super::{blocking, map_io};
use crate::storage::beneath::{self, Root, SwappedFile};
use crate::storage::{PendingUpload, StorageError, StorageKey};

/// Bytes gathered before one write to disk, off the async threads. Every upload in flight
/// holds at most two of these (one being written while the next fills): with 256 KiB a 1 GiB
/// upload was as fast as with 1 MiB, at a quarter of the memory (bench/README.md, "Memory").
const WRITE_BUFFER: usize = 256 * 1024;
/// Bytes written to a temp file between two starts of its writeback to disk.
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;
/// What an upload may hold before it is given the whole write buffer.
const SMALL_BUFFER: usize = 64 * 1024;
/// Tries at a fresh unique name before giving up (each clash is a 1 in 36^7 event after
/// the first, so more than a few means something else is wrong).
const MAX_NAME_TRIES: usize = 16;

/// Which file `finish` closed: the one `commit` must find again under the temp name. The
/// inode alone would not do (a file removed and made anew often gets the freed number
/// back); its change time moves with any write, and a new file has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    dev: u64,
    ino: u64,
    size: u64,
    changed: (i64, i64),
}

impl Written {
    fn of(file: &File) -> Result<Self, std::io::Error> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other(SwappedFile));
        }
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// A temp file in this instance's temp folder, removed when dropped unless it was linked to
/// its key (and then removed all the same: the key keeps the data). Removal goes by name
/// from the folder's handle, so a closed temp file is removed as surely as an open one.
struct TempFile {
    /// Open while bytes are written; `None` once `close` has synced it (or `synced_file`
    /// has handed it out).
    file: Option<File>,
    /// What `close` closed.
    written: Option<Written>,
    /// Bytes written so far, and where the range not yet handed to writeback starts.
    len: u64,
    writeback_from: u64,
    dir: Arc<OwnedFd>,
    name: String,
}

impl TempFile {
    fn create(dir: Arc<OwnedFd>) -> Result<Self, StorageError> {
        for _ in 0..MAX_NAME_TRIES {
            let name = format!("upload-{}", crate::ids::random_id());
            match Root::create_new_in(dir.as_fd(), &name) {
                Ok(file) => {
                    return Ok(Self {
                        file: Some(file),
                        written: None,
                        len: 0,
                        writeback_from: 0,
                        dir,
                        name,
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StorageError::Io(std::io::Error::other(
            "no free temp file name",
        )))
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let Some(file) = &mut self.file else {
            return Err(finished_written_to());
        };
        file.write_all(data)?;
        self.len += data.len() as u64;
        if self.len - self.writeback_from >= WRITEBACK_EVERY {
            // The kernel starts writing these pages out now (for dirty pages `DONTNEED` is
            // an asynchronous writeback, and pages still under it stay cached), so the fsync
            // at the end waits for the tail only, not for the whole file: a 1 GiB upload
            // otherwise spent ~0.7 s in that one fsync after the last byte had arrived.
            let _ = rustix::fs::fadvise(
                &*file,
                self.writeback_from,
                std::num::NonZeroU64::new(self.len - self.writeback_from),
                rustix::fs::Advice::DontNeed,
            );
            self.writeback_from = self.len;
        }
        Ok(())
    }

    /// Syncs and closes the file, remembering which file it was.
    fn close(&mut self) -> Result<(), StorageError> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
            self.written = Some(Written::of(&file)?);
        }
        Ok(())
    }

    /// The file, synced: the one still open, or the closed one opened again beneath the temp
    /// folder (no symlink followed) and checked to be the file that was written.
    fn synced_file(&mut self) -> Result<File, StorageError> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
            return Ok(file);
        }
        let obstructed = |detail: &dyn std::fmt::Display| {
            StorageError::Obstructed(format!("the temp file {}: {detail}", self.name))
        };
        let Some(written) = self.written else {
            return Err(obstructed(&"already committed"));
        };
        let file =
            beneath::open_file_in(self.dir.as_fd(), &self.name).map_err(|e| obstructed(&e))?;
        match Written::of(&file) {
            Ok(found) if found == written => Ok(file),
            Ok(_) => Err(obstructed(&SwappedFile)),
            Err(e) => Err(obstructed(&e)),
        }
    }
}

fn finished_written_to() -> StorageError {
    StorageError::Io(std::io::Error::other("a finished upload was written to"))
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

pub(super) struct FsUpload {
    /// `None` only while a write is running on the blocking pool (`writing`).
    temp: Option<TempFile>,
    /// The write of the buffer filled before this one: the next bytes are received while it
    /// runs, so the disk and the socket are busy at once (a 1 GiB upload waited for each
    /// write before reading on).
    writing: Option<JoinHandle<Result<TempFile, StorageError>>>,
    buffer: BytesMut,
    root: Arc<Root>,
}

impl FsUpload {
    /// Makes the upload's temp file in `tmp_dir`, this instance's temp folder.
    pub(super) async fn start(
        tmp_dir: Arc<OwnedFd>,
        root: Arc<Root>,
    ) -> Result<Self, StorageError> {
        let temp = blocking(move || TempFile::create(tmp_dir)).await?;
        Ok(Self {
            temp: Some(temp),
            writing: None,
            // Grown only as bytes arrive: a slow or stalled upload holds little.
            buffer: BytesMut::new(),
            root,
        })
    }

    fn take_temp(&mut self) -> Result<TempFile, StorageError> {
        self.temp
            .take()
            .ok_or_else(|| StorageError::Io(std::io::Error::other("upload already failed")))
    }

    /// Starts writing the buffer once the write before it is done, and returns without
    /// waiting for this one.
    async fn start_flush(&mut self) -> Result<(), StorageError> {
        self.settle().await?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut temp = self.take_temp()?;
        let data = self.buffer.split().freeze();
        self.writing = Some(tokio::task::spawn_blocking(move || {
            temp.write_all(&data)?;
            Ok(temp)
        }));
        Ok(())
    }

    /// Writes what the buffer holds and waits until every write is done.
    async fn flush(&mut self) -> Result<(), StorageError> {
        self.start_flush().await?;
        self.settle().await
    }

    /// Waits for the write in flight, if any, and takes its temp file back.
    async fn settle(&mut self) -> Result<(), StorageError> {
        if let Some(job) = self.writing.take() {
            let temp = job
                .await
                .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))??;
            self.temp = Some(temp);
        }
        Ok(())
    }
}

#[async_trait]
impl PendingUpload for FsUpload {
    async fn write(&mut self, mut chunk: Bytes) -> Result<(), StorageError> {
        if self.temp.as_ref().is_some_and(|t| t.file.is_none()) {
            return Err(finished_written_to());
        }
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
                self.start_flush().await?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), StorageError> {
        self.flush().await?;
        // The rest of the buffer's allocation goes too: a waiting upload holds no memory.
        self.buffer = BytesMut::new();
        let mut temp = self.take_temp()?;
        let temp = blocking(move || {
            temp.close()?;
            Ok(temp)
        })
        .await?;
        self.temp = Some(temp);
        Ok(())
    }

    async fn commit(mut self: Box<Self>, key: StorageKey) -> Result<StorageKey, StorageError> {
        self.flush().await?;
        let mut temp = self.take_temp()?;
        let root = Arc::clone(&self.root);
        blocking(move || {
            // Held open until the link is made and checked, then closed (before `temp` goes).
            let file = temp.synced_file()?;
            let mut key = key;
            for _ in 0..MAX_NAME_TRIES {
                // A hard link never replaces: two uploads of one name can never overwrite
                // each other, and the key appears complete or not at all.
                match root.link_into(temp.dir.as_fd(), &temp.name, file.as_fd(), key.as_str()) {
                    Ok(()) => return Ok(key),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        key = key.with_unique_suffix();
                    }
                    Err(e) if e.get_ref().is_some_and(|inner| inner.is::<SwappedFile>()) => {
                        return Err(StorageError::Obstructed(format!(
                            "the temp file {}: {e}",
                            temp.name
                        )));
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

    async fn abort(mut self: Box<Self>) {
        // Dropping the temp file removes it; do it off the async threads. A write in flight
        // gives its file back first (or drops it on the pool if it failed).
        let _ = self.settle().await;
        let temp = self.temp;
        let _ = tokio::task::spawn_blocking(move || drop(temp)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::FilesystemStorage;
    use super::super::tests::store;
    use super::*;
    use crate::storage::Storage;

    #[tokio::test]
    async fn the_write_buffer_never_grows_past_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let mut upload = FsUpload {
            temp: Some(TempFile::create(Arc::clone(&storage.tmp_dir)).unwrap()),
            writing: None,
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
    async fn overlapped_writes_and_early_writeback_keep_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..(2 * WRITEBACK_EVERY as usize + 3 * WRITE_BUFFER + 999))
            .map(|i| (i % 253) as u8)
            .collect();
        let mut upload = storage.start_upload().await.unwrap();
        for chunk in data.chunks(65_521) {
            upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        upload.finish().await.unwrap();
        let key = upload
            .commit(StorageKey::parse("big.bin").unwrap())
            .await
            .unwrap();
        assert!(std::fs::read(dir.path().join(key.as_str())).unwrap() == data);
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
    async fn a_finished_upload_holds_no_descriptor_and_commits_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let mut upload = FsUpload::start(Arc::clone(&storage.tmp_dir), Arc::clone(&storage.root))
            .await
            .unwrap();
        let data = vec![7u8; WRITE_BUFFER + 10];
        upload.write(Bytes::copy_from_slice(&data)).await.unwrap();
        upload.finish().await.unwrap();
        let temp = upload.temp.as_ref().unwrap();
        assert!(temp.file.is_none(), "the temp file is still open");
        assert_eq!(upload.buffer.capacity(), 0, "the buffer is still held");
        assert!(upload.write(Bytes::from_static(b"more")).await.is_err());
        let key = Box::new(upload)
            .commit(StorageKey::parse("done.bin").unwrap())
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join(key.as_str())).unwrap(), data);
        assert_eq!(std::fs::read_dir(storage.temp_dir()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn a_temp_file_swapped_while_closed_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        for swap in ["symlink", "file"] {
            let mut upload =
                FsUpload::start(Arc::clone(&storage.tmp_dir), Arc::clone(&storage.root))
                    .await
                    .unwrap();
            upload.write(Bytes::from_static(b"mine")).await.unwrap();
            upload.finish().await.unwrap();
            let temp = storage.temp_dir().join(&upload.temp.as_ref().unwrap().name);
            std::fs::remove_file(&temp).unwrap();
            match swap {
                "symlink" => std::os::unix::fs::symlink(outside.path().join("secret"), &temp),
                _ => std::fs::write(&temp, b"mine"),
            }
            .unwrap();
            let key = format!("{swap}.bin");
            let e = Box::new(upload)
                .commit(StorageKey::parse(&key).unwrap())
                .await
                .unwrap_err();
            assert!(matches!(e, StorageError::Obstructed(_)), "{swap}: {e}");
            assert!(!dir.path().join(&key).exists(), "{swap} was committed");
            // The temp name is removed all the same.
            assert!(std::fs::symlink_metadata(&temp).is_err(), "{swap} left");
        }
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"secret"
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
        // Only the lock file remains in this instance's temp folder; a dropped upload's last
        // write may still be running on the pool, and its temp file goes when it ends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_dir(storage.temp_dir()).unwrap().count() > 1
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(std::fs::read_dir(storage.temp_dir()).unwrap().count(), 1);
    }
}
