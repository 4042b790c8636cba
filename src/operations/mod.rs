//! The bulk operations the command line runs (README: "Operations"): `import` registers
//! files already in a filesystem storage, `verify` reads every object back against its row,
//! `move_files` moves files between storages. Each works one item at a time, so its caller
//! reports as it goes, and each can be stopped and run again. Uploads from the command line
//! need nothing here: they are `upload`'s own steps.

pub mod import;
pub mod move_files;
pub mod verify;

use futures_util::StreamExt;

use crate::db::DbError;
use crate::domain::StorageKey;
use crate::storage::{Storage, StorageError};
use crate::upload::{HashError, Hasher, StoreError};

/// How many leading bytes the type sniffer sees (as for an upload).
const SNIFF_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

/// An object as read back in full: streamed, never held whole.
pub struct ReadBack {
    pub size: u64,
    pub sha256: String,
    /// The first bytes, for the type sniffer.
    pub head: Vec<u8>,
}

/// Reads the object at `key` from start to end, counting and hashing it.
pub async fn read_back(
    storage: &dyn Storage,
    key: &StorageKey,
) -> Result<ReadBack, OperationError> {
    let mut stream = storage.open(key, None).await?;
    let mut hasher = Hasher::new();
    let mut size = 0u64;
    let mut head = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if head.len() < SNIFF_BYTES {
            let wanted = SNIFF_BYTES - head.len();
            head.extend_from_slice(&chunk[..wanted.min(chunk.len())]);
        }
        hasher.update(&chunk).await?;
    }
    Ok(ReadBack {
        size,
        sha256: hasher.finish().await?,
        head,
    })
}
