//! Making a file's thumbnails and removing them: the original is read from its storage (its
//! local file, or a remote object copied to an unnamed temp file in the data dir), decoded
//! on the blocking pool by at most `MAX_DECODES` images at a time (so many large photos
//! uploaded at once keep the memory bounded), and each size is stored next to the original.

use std::io::{BufReader, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::budget::MemoryBudget;
use super::render::{MAX_BYTES_PER_PIXEL, RenderError, Rendered, render};
use super::size::{ThumbSize, derived_folder, derived_key};
use crate::config::{Settings, ThumbnailSettings};
use crate::db::models::file::FileRow;
use crate::db::models::file_thumbnails::IMAGE_TYPES;
use crate::db::{Db, DbError};
use crate::domain::StorageKey;
use crate::storage::{Storage, StorageError};

/// Images decoded at once, in the whole process.
const MAX_DECODES: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("thumbnails are turned off")]
    Disabled,
    #[error("not an image thumbnails are made of")]
    NotAnImage,
    #[error("the key is too long for thumbnails next to it")]
    KeyTooLong,
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the storage put a thumbnail under {0} instead")]
    Misplaced(StorageKey),
    #[error("the file changed or went while its thumbnails were made")]
    Changed,
    #[error("decoding failed: {0}")]
    Task(String),
}

impl ThumbError {
    /// Whether the file simply has no thumbnails to make (not a failure of a backfill): an
    /// image too large or broken stays so, and a backfill run again must not fail for ever.
    pub fn is_skip(&self) -> bool {
        match self {
            Self::Disabled | Self::NotAnImage | Self::Changed | Self::KeyTooLong => true,
            Self::Render(e) => !matches!(e, RenderError::Io(_)),
            _ => false,
        }
    }
}

/// Makes thumbnails; one per process, shared by every upload path and the backfill command.
#[derive(Clone)]
pub struct Thumbnailer {
    settings: ThumbnailSettings,
    /// Where a remote original is copied while it is decoded (the data dir).
    scratch: PathBuf,
    decodes: Arc<Semaphore>,
    /// The memory all decodes may take together: one image of `max_pixels` at 8 bytes each.
    memory: MemoryBudget,
    /// Waits for ever before an image's thumbnails, so a test can kill an upload there
    /// (`PRIVATE_MEDIA_UPLOAD_STALL=thumbnails`, read by the command line's `upload` only).
    stall: bool,
}

impl Thumbnailer {
    pub fn new(settings: ThumbnailSettings, scratch: PathBuf) -> Self {
        Self {
            settings,
            scratch,
            decodes: Arc::new(Semaphore::new(MAX_DECODES)),
            memory: MemoryBudget::new(settings.max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL)),
            stall: false,
        }
    }

    /// The same, told to stall before every image's thumbnails (see `stall`).
    pub fn stalled(self) -> Self {
        Self {
            stall: true,
            ..self
        }
    }

    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(settings.thumbnails, settings.data_dir.clone())
    }

    /// Makes `file`'s thumbnails in `storage` (the one its row names) and records them in the
    /// row. An upload calls it after its row is written and logs a failure: the file stays
    /// stored either way.
    pub async fn make(
        &self,
        db: &Db,
        storage: &Arc<dyn Storage>,
        file: &FileRow,
    ) -> Result<Rendered, ThumbError> {
        match self.make_once(db, storage, file).await {
            Err(ThumbError::Changed) => {}
            other => return other,
        }
        // The row went or moved while its thumbnails were made. If another file holds the key
        // now (this one deleted, another stored under the freed key), what was just written may
        // be of the old content and stand over that file's own (made, or being made): its
        // thumbnails are made again from its own object. With no image there, what was
        // written goes.
        let (name, key) = (file.storage.clone(), file.storage_key.clone());
        let holder = db
            .read(move |c| FileRow::find_by_key(c, &name, &key))
            .await?;
        let remade = match &holder {
            Some(holder) => self.make_once(db, storage, holder).await,
            None => Err(ThumbError::NotAnImage),
        };
        match remade {
            Ok(_) => {}
            Err(ThumbError::NotAnImage | ThumbError::Disabled) => {
                remove_derived(storage.as_ref(), &file.storage_key).await;
            }
            Err(e) => {
                tracing::warn!(key = %file.storage_key, error = %e, "could not make a file's thumbnails again after another's were written over them");
            }
        }
        Err(ThumbError::Changed)
    }

    async fn make_once(
        &self,
        db: &Db,
        storage: &Arc<dyn Storage>,
        file: &FileRow,
    ) -> Result<Rendered, ThumbError> {
        if !self.settings.enabled {
            return Err(ThumbError::Disabled);
        }
        if !IMAGE_TYPES.contains(&file.content_type.as_str()) {
            return Err(ThumbError::NotAnImage);
        }
        if self.stall {
            // On stderr, where a test waits for it; a closed stderr must not stop the stall.
            let _ = writeln!(
                std::io::stderr(),
                "stalled before the thumbnails of {} (PRIVATE_MEDIA_UPLOAD_STALL)",
                file.id
            );
            std::future::pending::<()>().await;
        }
        let keys: Vec<(ThumbSize, StorageKey)> = ThumbSize::ALL
            .iter()
            .map(|&size| derived_key(&file.storage_key, size).map(|key| (size, key)))
            .collect::<Option<_>>()
            .ok_or(ThumbError::KeyTooLong)?;
        let rendered = {
            let _permit = self
                .decodes
                .acquire()
                .await
                .map_err(|e| ThumbError::Task(e.to_string()))?;
            let source = self.original(storage.as_ref(), &file.storage_key).await?;
            let (max_pixels, memory) = (self.settings.max_pixels, self.memory.clone());
            tokio::task::spawn_blocking(move || render(BufReader::new(source), max_pixels, &memory))
                .await
                .map_err(|e| ThumbError::Task(e.to_string()))??
        };
        for (size, jpeg) in &rendered.thumbnails {
            let Some((_, key)) = keys.iter().find(|(s, _)| s == size) else {
                continue;
            };
            if let Err(e) = put(storage.as_ref(), key, Bytes::from(jpeg.clone())).await {
                // Made again over ones stored before, the sizes would no longer match: none is
                // better than a mixed pair, and a backfill with `--missing` will try again.
                remove_derived(storage.as_ref(), &file.storage_key).await;
                let (id, at) = (
                    file.id.clone(),
                    (file.storage.clone(), file.storage_key.clone()),
                );
                if let Err(db) = db
                    .run(move |c| FileRow::record_thumbnails(c, &id, (&at.0, &at.1), None))
                    .await
                {
                    tracing::warn!(file = %file.id, error = %db, "could not record that a file lost its thumbnails");
                }
                return Err(e);
            }
        }
        let (id, at) = (
            file.id.clone(),
            (file.storage.clone(), file.storage_key.clone()),
        );
        let size = Some((rendered.width, rendered.height));
        if !db
            .run(move |c| FileRow::record_thumbnails(c, &id, (&at.0, &at.1), size))
            .await?
        {
            return Err(ThumbError::Changed);
        }
        tracing::info!(file = %file.id, width = rendered.width, height = rendered.height, "thumbnails made");
        Ok(rendered)
    }

    /// The original as a file to decode from: the storage's own, or a copy of the object.
    async fn original(
        &self,
        storage: &dyn Storage,
        key: &StorageKey,
    ) -> Result<std::fs::File, ThumbError> {
        if let Some(local) = storage.open_local(key)? {
            return Ok(local.file);
        }
        let scratch = self.scratch.clone();
        let mut copy = tokio::task::spawn_blocking(move || tempfile::tempfile_in(scratch))
            .await
            .map_err(|e| ThumbError::Task(e.to_string()))?
            .map_err(StorageError::Io)?;
        let mut stream = storage.open(key, None).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            copy = tokio::task::spawn_blocking(move || copy.write_all(&chunk).map(|()| copy))
                .await
                .map_err(|e| ThumbError::Task(e.to_string()))?
                .map_err(StorageError::Io)?;
        }
        copy.rewind().map_err(StorageError::Io)?;
        Ok(copy)
    }
}

/// Stores `bytes` under exactly `key`, replacing what a run before left there.
async fn put(storage: &dyn Storage, key: &StorageKey, bytes: Bytes) -> Result<(), ThumbError> {
    delete_quietly(storage, key).await?;
    let mut upload = storage.start_upload().await?;
    upload.write(bytes).await?;
    upload.finish().await?;
    let committed = upload.commit(key.clone()).await?;
    if &committed != key {
        delete_quietly(storage, &committed).await?;
        return Err(ThumbError::Misplaced(committed));
    }
    Ok(())
}

async fn delete_quietly(storage: &dyn Storage, key: &StorageKey) -> Result<(), StorageError> {
    match storage.delete(key).await {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

/// Removes the thumbnails of the content under `original` (a delete, a replace). Failures
/// are logged: the row decides what is served, so a leftover is only wasted space.
pub async fn remove_derived(storage: &dyn Storage, original: &StorageKey) {
    for size in ThumbSize::ALL {
        let Some(key) = derived_key(original, size) else {
            continue;
        };
        if let Err(e) = delete_quietly(storage, &key).await {
            tracing::warn!(key = %key, error = %e, "could not remove a thumbnail");
        }
    }
    if let Some(folder) = derived_folder(original)
        && let Err(e) = storage.remove_empty_folder(&folder).await
    {
        tracing::warn!(folder = %folder, error = %e, "could not remove a thumbnails folder");
    }
}
