//! The start-up clean-up of uploads a crash interrupted between "object committed" and "row
//! written".

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::storage::Storage;

/// Whether the object at `key` is the one an interrupted upload meant to put there (same
/// size and SHA-256): anything else there is someone else's and stays.
pub(crate) async fn is_the_uploaded_object(
    storage: &dyn Storage,
    key: &crate::domain::StorageKey,
    size: i64,
    sha256: &str,
) -> bool {
    match storage.metadata(key).await {
        Ok(meta) if i64::try_from(meta.size).ok() == Some(size) => {}
        _ => return false,
    }
    let Ok(mut stream) = storage.open(key, None).await else {
        return false;
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => hasher.update(&chunk),
            Err(_) => return false,
        }
    }
    hex::encode(hasher.finalize()) == sha256
}

/// Removes what uploads cut short by a crash left between "object committed" and "row
/// written": for every reserved key whose upload was abandoned (its instance is gone), the
/// object if it exists, then the reservation. Returns how many went. Failures are logged
/// and left for the next start.
pub async fn reconcile_interrupted(
    db: &crate::db::Db,
    storages: &crate::storage::Storages,
) -> usize {
    use crate::db::models::pending_upload::PendingKey;
    let pending = match db.run(PendingKey::all).await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::warn!(error = %e, "could not list interrupted uploads");
            return 0;
        }
    };
    let mut removed = 0;
    for entry in pending {
        let Some(storage) = storages.get(&entry.storage) else {
            tracing::warn!(storage = %entry.storage, key = %entry.storage_key, "an interrupted upload names a storage that is not configured");
            continue;
        };
        let started = std::time::SystemTime::from(entry.started_at.and_utc());
        if !storage.upload_abandoned(&entry.instance, started) {
            continue;
        }
        let (name, key) = (entry.storage.clone(), entry.storage_key.clone());
        let has_row = db
            .run(move |c| crate::db::models::file::FileRow::find_by_key(c, &name, &key))
            .await
            .map(|row| row.is_some());
        // An object a row holds is never removed, whatever the journal says.
        let has_row = match has_row {
            Ok(has_row) => has_row,
            Err(e) => {
                tracing::warn!(error = %e, "could not check an interrupted upload's key");
                continue;
            }
        };
        let key = &entry.storage_key;
        if !has_row
            && is_the_uploaded_object(storage.as_ref(), key, entry.size, &entry.sha256).await
        {
            match storage.delete(key).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "could not remove an interrupted upload's object");
                    continue;
                }
            }
        }
        let (name, key) = (entry.storage.clone(), entry.storage_key.clone());
        match db.run(move |c| PendingKey::release(c, &name, &key)).await {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(key = %entry.storage_key, error = %e, "could not release an interrupted upload's key")
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed uploads interrupted by a crash");
    }
    removed
}
