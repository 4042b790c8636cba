//! The temp folders of running and stopped instances: an instance holds the lock in its own
//! folder for as long as it runs, so a folder whose lock can be taken is a dead instance's.

use std::io::ErrorKind;
use std::os::fd::{AsFd, BorrowedFd};

use super::{LOCK_FILE, TMP_DIR};
use crate::storage::StorageError;
use crate::storage::beneath::{self, Root};

/// Whether the instance owning the temp folder `folder` still runs: it holds the lock.
pub(super) fn instance_alive(folder: BorrowedFd<'_>) -> Result<bool, std::io::Error> {
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

/// Removes the temp folders of instances that are gone, and anything else in the temp area.
/// Every step works on directory handles opened beneath the root without following a
/// symlink: a `.tmp` or an instance folder swapped for a symlink makes this fail (or removes
/// the symlink itself), never removes anything elsewhere.
pub(super) fn sweep_dead_instances(root: &Root) -> Result<(), StorageError> {
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

#[cfg(test)]
mod tests {
    use super::super::FilesystemStorage;
    use super::*;
    use crate::storage::Storage as _;
    use bytes::Bytes;

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
}
