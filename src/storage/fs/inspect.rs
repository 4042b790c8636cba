//! `private-media check`'s look at a filesystem root, which must change nothing in it.

use std::os::fd::AsFd;
use std::path::Path;

use super::{FilesystemStorage, TMP_DIR};
use crate::storage::StorageError;
use crate::storage::beneath::{self, Root};

impl FilesystemStorage {
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
}

#[cfg(test)]
mod tests {
    use super::super::LOCK_FILE;
    use super::*;

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
}
