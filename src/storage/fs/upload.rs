//! An upload in flight: bytes gathered in a bounded buffer, written to a temp file in this
//! instance's temp folder off the async threads, and at commit hard-linked to their key.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use super::{blocking, map_io};
use crate::storage::beneath::Root;
use crate::storage::{PendingUpload, StorageError, StorageKey};

/// Bytes gathered before one write to disk, off the async threads. Every upload in flight
/// holds this much: with 256 KiB a 1 GiB upload was as fast as with 1 MiB, at a quarter of
/// the memory per upload (bench/README.md, "Memory").
const WRITE_BUFFER: usize = 256 * 1024;
/// What an upload may hold before it is given the whole write buffer.
const SMALL_BUFFER: usize = 64 * 1024;
/// Tries at a fresh unique name before giving up (each clash is a 1 in 36^7 event after
/// the first, so more than a few means something else is wrong).
const MAX_NAME_TRIES: usize = 16;

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

pub(super) struct FsUpload {
    /// `None` only while a write is running on the blocking pool.
    temp: Option<TempFile>,
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
}
